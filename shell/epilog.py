"""The end of every `--help`: `Examples:`, `Exit codes:` (from runtime.errors) and `Environment:`."""

from __future__ import annotations

from jcsh.runtime.errors import EXIT_MEANING, ExitStatus

__all__ = ["epilog", "EXAMPLES", "EXITS", "ENVIRONMENT"]

# Command name ("" = jcsh itself) -> (command line, what it does). Every command has some: a test
# checks it, so a new command comes with its examples.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "": (
        ("jcsh", "the interactive shell (stdin not a terminal: runs it as a script)"),
        ("jcsh -c 'print(tls.protocols())'", "run one statement in the sandbox"),
        ("jcsh --timeout 5 run examples/registry_tree.jcs /configuration", "a saved script, 5 s at most"),
        ("jcsh --version --json", "version, Python, OpenSSL, sandbox layers"),
        ("jcsh COMMAND --help", "a command's options, examples and exit codes"),
    ),
    "registry": (
        ("jcsh registry set /configuration/mail/Server smtp.example.test", "missing parents are created"),
        ("jcsh registry get /configuration/mail/Server", "exit 1 when absent"),
        ("jcsh registry ls -r /configuration", "the whole subtree, indented"),
        ("jcsh registry rm -r /configuration/mail/smtp.example.test", "an entry with children needs -r"),
        ("jcsh registry export /configuration > backup.json", "canonical JSON, keys sorted"),
        ("jcsh registry import --replace backup.json", "the subtree becomes exactly the file"),
        ("jcsh registry check", "SQLite's integrity check and the key: ok (0) or what is damaged (74)"),
    ),
    "credential": (
        ("jcsh credential protocol add smtp", "a protocol credentials can belong to"),
        (
            (
                "printf '%s\\n' \"$PW\" | jcsh credential add --protocol smtp --endpoint smtp.example.test "
                "--virtual-user default --real-user ops@example.test --password-stdin"
            ),
            "a login; the password never on argv",
        ),
        (
            (
                "printf '%s\\n' \"$SECRET\" | jcsh credential add --protocol smtp --endpoint smtp.office365.com "
                "--virtual-user default --real-user jobs@contoso.example --oauth2 client-credentials "
                "--entra-tenant TENANT --client-id ID --client-secret-stdin"
            ),
            "Exchange Online: OAuth 2.0 client credentials (URL and scope filled in)",
        ),
        (
            (
                "jcsh credential add --protocol smtp --endpoint smtp.office365.com --virtual-user default "
                "--real-user jobs@contoso.example --oauth2 client-credentials --entra-tenant TENANT --client-id ID "
                "--client-certificate app.pem --client-key app.key"
            ),
            "the same, proved by a certificate (a signed client assertion)",
        ),
        (
            (
                'printf \'%s\\n%s\\n\' "$REFRESH" "$SECRET" | jcsh credential add --protocol smtp '
                "--endpoint smtp.gmail.com --virtual-user default --real-user jobs@example.com "
                "--oauth2 refresh-token --google --client-id ID --refresh-token-stdin"
            ),
            "Gmail: a refresh token (line 1) and the client secret (line 2)",
        ),
        (
            (
                "printf '%s\\n' \"$TOKEN\" | jcsh credential add --protocol smtp --endpoint smtp.example.test "
                "--virtual-user default --real-user ops@example.test --oauth2 static --token-stdin"
            ),
            "an access token obtained elsewhere: used until it expires",
        ),
        (
            (
                "printf '%s\\n' \"$PW\" | jcsh credential add --protocol smtp --endpoint 127.0.0.1 "
                "--virtual-user default --real-user test --password-stdin --allow-plaintext"
            ),
            "a test server without TLS: the password may cross in plain text",
        ),
        ("jcsh credential token --endpoint smtp.office365.com --json", "the token's expiry, scope, audience, roles"),
        ("jcsh credential ls", "never shows a secret"),
        ("jcsh credential rekey", "re-encrypt every secret under a new key"),
    ),
    "configure": (
        ('jcsh configure --from "Ops <ops@example.test>"', "server detected from the domain's MX"),
        ("jcsh configure --from ops@example.test --server smtp.example.test", "a known server"),
        ("jcsh configure --from ops@example.test --timeout 2 --json", "2 s per DNS lookup; one JSON document"),
    ),
    "mail settings": (
        ("jcsh mail settings", "SETTING  VALUE  ORIGIN (registry path or default)"),
        ("jcsh mail settings --server smtp.example.test --json", "as they would be for that server"),
    ),
    "mail doctor": (
        ("jcsh mail doctor", "errors, warnings and notes with their fix; exit 1 on any error"),
        ("jcsh mail doctor --dns", "also From's SPF and DMARC, looked up in DNS"),
        ("jcsh mail doctor --json", "the findings as one JSON document"),
    ),
    "testmail": (
        ("jcsh testmail --to ops@example.test", "status, security, TLS, trust, login, the server's reply"),
        ("jcsh testmail --to a@example.test --cc b@example.test --attach out/report.pdf", "copies, a file"),
        ("jcsh testmail --to a@example.test --timeout 5 --transcript", "the SMTP dialogue, AUTH redacted"),
        ("jcsh testmail --to a@example.test -v", "the dialogue on stderr as it happens"),
        ("jcsh testmail --to a@example.test --json", "one JSON result"),
    ),
    "tls protocols": (
        ("jcsh tls protocols", "TLSv1.3 TLSv1.2 ... (the product's snippet, same line)"),
        ("jcsh tls protocols --json", "+ versions enabled by default, OpenSSL, why a version is missing"),
    ),
    "tls probe": (
        ("jcsh tls probe smtp.example.test", "port 25, STARTTLS, every version, certificate, trust"),
        ("jcsh tls probe smtp.example.test:465", "implicit TLS (the default on 465)"),
        ("jcsh tls probe [::1]:2525 --protocols 'TLSv1.2 TLSv1.3' --timeout 5", "some versions, 5 s"),
        ("jcsh tls probe --json", "the configured server, under the configured trust"),
        ("jcsh tls probe mx1.example.test mx2.example.test:587", "several targets at once, one section each"),
        ("jcsh tls probe --mx example.test", "every MX host: DANE per host, MTA-STS, TLS-RPT"),
        ("jcsh tls probe --mx example.test --port 587 --json", "one document: domain, hosts, mta_sts, tls_rpt"),
        ("jcsh tls probe smtp.example.test --ciphers", "the suites each accepted version accepts"),
        ("jcsh tls probe smtp.example.test --truststore cacerts", "would a JVM with this store trust it?"),
        (
            "jcsh tls probe smtp.example.test --truststore t.p12 --truststore-password-stdin < pw",
            "a store with its own password",
        ),
        ("jcsh tls probe smtp.example.test -v", "each connection's outcome on stderr as it ends"),
    ),
    "sink": (
        ("jcsh sink", "plain SMTP on 127.0.0.1:2525"),
        ("jcsh sink --port 0 --starttls", "any free port, STARTTLS with a generated certificate"),
        ("jcsh sink --require-starttls --auth alice:test-pw --require-auth", "submission-like"),
        ("jcsh sink --fail rcpt=452 --fail data=drop", "faults at chosen stages"),
        ("jcsh sink --starttls --chunking", "BDAT as well as DATA, like Postfix"),
    ),
    "run": (
        ("jcsh run examples/send_testmail.jcs ops@example.test", "ARGs reach the script as jcsArgs"),
        ("jcsh run - arg1 < script.jcs", "- reads the script from stdin"),
        ("jcsh --timeout 5 --json run script.jcs", "at most 5 s; one JSON document"),
    ),
    "examples": (
        ("jcsh examples", "the example scripts, one line each"),
        ("jcsh examples send_testmail", "copy send_testmail.jcs into the current folder"),
        ("jcsh examples tls_protocols scripts/", "into scripts/"),
    ),
    "backup": (
        ("jcsh backup ~/jcsh.backup", "one file, mode 0600: the store (changes in the WAL too) and the key"),
        ("jcsh backup - | gzip > jcsh.backup.gz", "to stdout (never to a terminal)"),
    ),
    "restore": (
        ("jcsh restore ~/jcsh.backup --home /srv/jcsh", "into an empty home; checked before it commits"),
        ("jcsh restore jcsh.backup --force", "replace the registry and key this home holds"),
        ("jcsh restore - < jcsh.backup", "from stdin; gzip, bzip2 and xz are read as they are"),
    ),
    "completion": (
        ('eval "$(jcsh completion bash)"', "bash: complete jcsh in this shell"),
        ("jcsh completion zsh > ~/.zfunc/_jcsh", "zsh: a completion function on $fpath"),
        ("jcsh completion fish > ~/.config/fish/completions/jcsh.fish", "fish"),
    ),
}

_E = ExitStatus
_STORE_COMMAND = (_E.OK, _E.FAILED, _E.USAGE, _E.STORE)
# The exit codes each command gives; a command not listed here may give any of them.
EXITS: dict[str, tuple[ExitStatus, ...]] = {
    "registry": _STORE_COMMAND,
    "credential": _STORE_COMMAND,
    "configure": _STORE_COMMAND,
    "mail settings": _STORE_COMMAND,
    "mail doctor": _STORE_COMMAND,
    "testmail": (_E.OK, _E.FAILED, _E.USAGE, _E.CONNECT, _E.LIMIT, _E.STORE, _E.TEMPORARY, _E.INTERRUPTED),
    "tls protocols": (_E.OK, _E.USAGE),
    "tls probe": (_E.OK, _E.FAILED, _E.USAGE, _E.CONNECT, _E.LIMIT, _E.STORE, _E.TEMPORARY, _E.INTERRUPTED),
    "sink": (_E.OK, _E.FAILED, _E.USAGE, _E.INTERRUPTED),
    "examples": (_E.OK, _E.FAILED, _E.USAGE),
    "completion": (_E.OK, _E.USAGE),
    "backup": (_E.OK, _E.FAILED, _E.USAGE, _E.STORE),
    "restore": (_E.OK, _E.FAILED, _E.USAGE, _E.STORE),
}

_HOME = ("JCSH_HOME", "the home folder when --home is not given (default: the platform's data folder)")
_NO_COLOR = ("NO_COLOR", "set to anything: no colour, as --no-color")
_NAMESERVERS = ("JCSH_NAMESERVERS", "DNS servers for MX and host lookups: host[:port][,host[:port]...]")
_STORE_TIMEOUT = ("JCSH_STORE_TIMEOUT", "seconds to wait for a store another process holds (default 30)")
# The variables each command reads; a command not listed here reads JCSH_HOME and NO_COLOR.
ENVIRONMENT: dict[str, tuple[tuple[str, str], ...]] = {
    "": (_HOME, _NAMESERVERS, _NO_COLOR, _STORE_TIMEOUT),
    "registry": (_HOME, _NO_COLOR, _STORE_TIMEOUT),
    "credential": (_HOME, _NO_COLOR, _STORE_TIMEOUT),
    "backup": (_HOME, _NO_COLOR, _STORE_TIMEOUT),
    "restore": (_HOME, _NO_COLOR, _STORE_TIMEOUT),
    "configure": (_HOME, _NAMESERVERS, _NO_COLOR),
    "mail doctor": (_HOME, _NAMESERVERS, _NO_COLOR),
    "tls probe": (_HOME, _NAMESERVERS, _NO_COLOR),
    "run": (_HOME, _NAMESERVERS, _NO_COLOR),
    "examples": (_HOME,),
    "completion": (_HOME,),
}


def _section(title: str, rows: list[tuple[str, str]], columns: int) -> str:
    import textwrap  # only when a --help is printed

    width = max(len(left) for left, _ in rows)
    lines = [f"{title}:"]
    for left, right in rows:
        wrapped = textwrap.wrap(right, max(columns - width - 4, 30)) or [""]
        lines.append(f"  {left:{width}}  {wrapped[0]}")
        lines += [f"  {'':{width}}  {more}" for more in wrapped[1:]]
    return "\n".join(lines)


def epilog(name: str, magic: str | None = None, columns: int = 80) -> str:
    """The three sections for command `name` ("" = jcsh); in the REPL `magic` ("%tls") replaces `jcsh NAME`.

    Built when a --help is printed, never on an ordinary start.
    """
    word = name.split()[0] if name else ""
    examples = EXAMPLES.get(name) or EXAMPLES.get(word) or ()
    if not examples and word:  # a group (`jcsh tls`): its commands' examples
        examples = tuple(e for n, rows in EXAMPLES.items() if n.split(" ")[0] == word for e in rows[:1])
    shown = []
    for line, what in examples:
        if magic and line.startswith(f"jcsh {name}"):
            line = magic + line[len(f"jcsh {name}") :]
        shown.append((line, what))
    codes = EXITS.get(name) or EXITS.get(word) or tuple(ExitStatus)
    environment = ENVIRONMENT.get(name) or ENVIRONMENT.get(word) or (_HOME, _NO_COLOR)
    parts = [
        "Examples:\n" + "\n".join(f"  {line}\n      {what}" for line, what in shown),
        _section("Exit codes", [(str(int(code)), EXIT_MEANING[code]) for code in codes], columns),
        _section("Environment", list(environment), columns),
    ]
    return "\n\n".join(parts)
