"""Every command's `--json` document, success and failure, validated against docs/schema/<command>.json.

One row of CASES per document: the schema's name, the command line, what to prepare, the exit
code. A new command (or a changed document) adds a schema file and rows here.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from jcsh.runtime.errors import ErrorKind
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import JCSH, jcsh
from tests.support.dns import DnsResponder

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schema"
BASE = "https://jcsh.invalid/schema/"  # never fetched: every schema is in the registry below


def _registry() -> Registry:
    resources = [
        (BASE + path.name, Resource.from_contents(json.loads(path.read_text(encoding="utf-8"))))
        for path in SCHEMAS.glob("*.json")
    ]
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validate(schema: str, document: Any) -> None:
    """Raise jsonschema.ValidationError when document does not fit docs/schema/<schema>.json."""
    contents = REGISTRY.contents(BASE + schema + ".json")
    Draft202012Validator(contents, registry=REGISTRY).validate(document)


class Env(NamedTuple):
    """What a case may need: a fresh home, a scratch folder, and loopback servers' ports."""

    home: Path
    tmp: Path
    sink_port: int  # plain text, for testmail
    tls_port: int  # STARTTLS, for tls probe
    closed_port: int
    silent_port: int


class Case(NamedTuple):
    schema: str
    args: Callable[[Env], list[str]]
    code: int
    prepare: tuple[tuple[str, ...], ...] = ()  # commands run first (without --json)
    stdin: str = ""


def _a(*words: str) -> Callable[[Env], list[str]]:
    return lambda env: list(words)


IMPORT = '{"path": "/a", "value": null, "children": {"b": {"value": "1", "children": {}}}}'
DAMAGE = ("registry", "set", "/a/b", "1", "--then-damage")  # a step the test carries out itself
BACKUP = ("backup", "{tmp}/b.tar")
CRED = ("--protocol", "smtp", "--endpoint", "127.0.0.1", "--virtual-user", "default")
SMTP_PROTOCOL = ("credential", "protocol", "add", "smtp")
STATIC = ("credential", "add", *CRED, "--oauth2", "static", "--token-stdin")
SERVER = ("configure", "--from", "ops@example.test", "--server", "127.0.0.1")


CASES: dict[str, Case] = {
    # registry
    "registry-get ok": Case("registry-get", _a("registry", "get", "/a/b"), 0, (("registry", "set", "/a/b", "1"),)),
    "registry-get missing": Case("registry-get", _a("registry", "get", "/a/none"), 1),
    "registry-set ok": Case("registry-set", _a("registry", "set", "/a/b", "x"), 0),
    "registry-set bad path": Case("registry-set", _a("registry", "set", "a//b", "x"), 2),
    "registry-ls ok": Case("registry-ls", _a("registry", "ls", "/a"), 0, (("registry", "set", "/a/b/c", "1"),)),
    "registry-ls -r ok": Case("registry-ls", _a("registry", "ls", "-r", "/a"), 0, (("registry", "set", "/a/b", "1"),)),
    "registry-ls missing": Case("registry-ls", _a("registry", "ls", "/none"), 1),
    "registry-rm ok": Case("registry-rm", _a("registry", "rm", "/a/b"), 0, (("registry", "set", "/a/b", "1"),)),
    "registry-rm missing": Case("registry-rm", _a("registry", "rm", "/none"), 1),
    "registry-export ok": Case(
        "registry-export", _a("registry", "export", "/a"), 0, (("registry", "set", "/a/b", "1"),)
    ),
    "registry-export missing": Case("registry-export", _a("registry", "export", "/none"), 1),
    "registry-import ok": Case("registry-import", _a("registry", "import", "-"), 0, stdin=IMPORT),
    "registry-import bad": Case("registry-import", _a("registry", "import", "-"), 2, stdin="{not json"),
    "registry-check ok": Case("registry-check", _a("registry", "check"), 0, (("registry", "set", "/a/b", "1"),)),
    "registry-check damaged": Case("registry-check", _a("registry", "check"), 74, (DAMAGE,)),
    "registry-get damaged": Case("registry-get", _a("registry", "get", "/a/b"), 74, (DAMAGE,)),
    # credential
    "protocol add ok": Case("credential-protocol-add", _a("credential", "protocol", "add", "smtp"), 0),
    "protocol add twice": Case("credential-protocol-add", _a(*SMTP_PROTOCOL), 2, (SMTP_PROTOCOL,)),
    "protocol ls ok": Case("credential-protocol-ls", _a("credential", "protocol", "ls"), 0, (SMTP_PROTOCOL,)),
    "protocol ls bad": Case("credential-protocol-ls", _a("credential", "protocol", "ls", "--bogus"), 2),
    "protocol rm ok": Case("credential-protocol-rm", _a("credential", "protocol", "rm", "smtp"), 0, (SMTP_PROTOCOL,)),
    "protocol rm missing": Case("credential-protocol-rm", _a("credential", "protocol", "rm", "smtp"), 1),
    "credential add ok": Case(
        "credential-add", _a("credential", "add", *CRED, "--password-stdin"), 0, (SMTP_PROTOCOL,), stdin="pw\n"
    ),
    "credential add no protocol": Case(
        "credential-add", _a("credential", "add", *CRED, "--password-stdin"), 2, stdin="pw\n"
    ),
    "credential ls ok": Case("credential-ls", _a("credential", "ls"), 0, (SMTP_PROTOCOL,)),
    "credential ls bad": Case("credential-ls", _a("credential", "ls", "--bogus"), 2),
    "credential rm ok": Case(
        "credential-rm",
        _a("credential", "rm", *CRED),
        0,
        (SMTP_PROTOCOL, ("credential", "add", *CRED, "--password-stdin")),
        stdin="pw\n",
    ),
    "credential rm missing": Case("credential-rm", _a("credential", "rm", *CRED), 1, (SMTP_PROTOCOL,)),
    "credential add oauth2": Case(
        "credential-add",
        _a(
            "credential",
            "add",
            *CRED,
            "--oauth2",
            "client-credentials",
            "--google",
            "--client-id",
            "a",
            "--client-secret-stdin",
        ),
        0,
        (SMTP_PROTOCOL,),
        stdin="s\n",
    ),
    "credential add oauth2 bad": Case(
        "credential-add", _a("credential", "add", *CRED, "--oauth2", "static"), 2, (SMTP_PROTOCOL,)
    ),
    "credential ls oauth2": Case("credential-ls", _a("credential", "ls"), 0, (SMTP_PROTOCOL, STATIC), stdin="tok-1\n"),
    "credential token ok": Case(
        "credential-token",
        _a("credential", "token", "--endpoint", "127.0.0.1"),
        0,
        (SMTP_PROTOCOL, STATIC),
        stdin="tok-1\n",
    ),
    "credential token missing": Case("credential-token", _a("credential", "token", "--endpoint", "127.0.0.1"), 1),
    "credential rekey ok": Case("credential-rekey", _a("credential", "rekey"), 0),
    "credential rekey bad": Case("credential-rekey", _a("credential", "rekey", "now"), 2),
    # mail
    "configure given": Case("configure", _a(*SERVER), 0),
    "configure detected": Case("configure", _a("configure", "--from", "ops@example.test"), 0),
    "configure null mx": Case("configure", _a("configure", "--from", "ops@nomail.test"), 1),
    "configure dns timeout": Case("configure", _a("configure", "--from", "ops@slow.test", "--timeout", "0.3"), 4),
    "configure bad from": Case("configure", _a("configure", "--from", "nobody", "--server", "127.0.0.1"), 2),
    "mail settings ok": Case("mail-settings", _a("mail", "settings"), 0, (SERVER,)),
    "mail settings bad": Case("mail-settings", _a("mail", "settings", "--server", "bad host"), 2),
    "mail doctor ok": Case("mail-doctor", _a("mail", "doctor"), 0, (SERVER,)),
    "mail doctor error": Case("mail-doctor", _a("mail", "doctor"), 1),
    "testmail sent": Case(
        "testmail",
        lambda env: ["testmail", "--to", "a@example.test", "--server", "127.0.0.1"],
        0,
        (SERVER,),
    ),
    "testmail refused connection": Case(
        "testmail",
        lambda env: ["testmail", "--to", "a@example.test", "--server", "127.0.0.2", "--timeout", "2"],
        3,
        (SERVER,),
    ),
    "testmail checked": Case(
        "testmail",
        lambda env: ["testmail", "--to", "a@example.test", "--server", "127.0.0.1", "--quit-after", "rcpt"],
        0,
        (SERVER,),
    ),
    "testmail no server": Case("testmail", _a("testmail", "--to", "a@example.test"), 1),
    # tls
    "tls protocols ok": Case("tls-protocols", _a("tls", "protocols"), 0),
    "tls protocols bad": Case("tls-protocols", _a("tls", "protocols", "--bogus"), 2),
    "tls probe ok": Case("tls-probe", lambda env: ["tls", "probe", f"127.0.0.1:{env.tls_port}", "--timeout", "3"], 0),
    "tls probe refused": Case(
        "tls-probe", lambda env: ["tls", "probe", f"127.0.0.1:{env.closed_port}", "--timeout", "2"], 3
    ),
    "tls probe timeout": Case(
        "tls-probe", lambda env: ["tls", "probe", f"127.0.0.1:{env.silent_port}", "--timeout", "0.5"], 4
    ),
    "tls probe several": Case(
        "tls-probe",
        lambda env: ["tls", "probe", f"127.0.0.1:{env.tls_port}", f"127.0.0.1:{env.closed_port}", "--timeout", "2"],
        3,
    ),
    # scripts
    "-c ok": Case("run", _a("-c", "print('hi')"), 0),
    "-c raises": Case("run", _a("-c", "1/0"), 1),
    "-c timeout": Case("run", _a("--timeout", "0.5", "-c", "while True: pass"), 4),
    "run ok": Case("run", lambda env: ["run", str(env.tmp / "ok.jcs")], 0),
    "run missing": Case("run", lambda env: ["run", str(env.tmp / "missing.jcs")], 2),
    "run java": Case("run", lambda env: ["run", str(env.tmp / "java.jcs")], 1),
    # backup and restore
    "backup ok": Case("backup", lambda env: ["backup", str(env.tmp / "b.tar")], 0, (("registry", "set", "/a/b", "1"),)),
    "backup no folder": Case("backup", lambda env: ["backup", str(env.tmp / "none" / "b.tar")], 2),
    "restore ok": Case(
        "restore",
        lambda env: ["restore", str(env.tmp / "b.tar"), "--home", str(env.tmp / "new-home")],
        0,
        (("registry", "set", "/a/b", "1"), BACKUP),
    ),
    "restore into a full home": Case(
        "restore", lambda env: ["restore", str(env.tmp / "b.tar")], 2, (("registry", "set", "/a/b", "1"), BACKUP)
    ),
    # the rest
    "version ok": Case("version", _a("--version"), 0),
    "version bad": Case("version", _a("--version", "--bogus"), 2),
    "examples ls": Case("examples", _a("examples"), 0),
    "examples copy": Case("examples", lambda env: ["examples", "registry_tree", str(env.tmp)], 0),
    "examples missing": Case("examples", _a("examples", "no-such-example"), 2),
    "completion paths": Case("completion", _a("completion", "--registry-paths"), 0),
    "completion no shell": Case("completion", _a("completion"), 2),
}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[int, int, int, int]]:
    """A plain sink and a STARTTLS one on 127.0.0.1, a closed port and a silent one."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    with (
        Sink(SinkConfig(port=0)) as plain,
        Sink(SinkConfig(port=0, mode="starttls")) as tls,
        socket.socket() as silent,
    ):
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield plain.port, tls.port, closed_port, silent.getsockname()[1]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsResponder]:
    with DnsResponder() as server:
        server.add("example.test", "MX", "10 mx.example.test.")
        server.add("mx.example.test", "A", "127.0.0.1")
        server.null_mx("nomail.test")
        server.never_answer("slow.test")
        yield server


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", list(CASES))
def test_json_document_fits_its_schema(
    name: str, home: Path, tmp_path: Path, servers: tuple[int, int, int, int], dns: DnsResponder, monkeypatch: Any
) -> None:
    case = CASES[name]
    monkeypatch.setenv("JCSH_NAMESERVERS", dns.address)
    env = Env(home, tmp_path, *servers)
    (tmp_path / "ok.jcs").write_text("print('ok')\n")
    (tmp_path / "java.jcs").write_text('String s = "x";\nSystem.out.println(s);\n')
    for step in case.prepare:
        if step == DAMAGE:
            assert jcsh(home, *step[:-1]).code == 0
            (home / "registry.sqlite3").write_bytes(b"not a database " * 1000)  # a damaged store
            continue
        words = [w.format(tmp=tmp_path) for w in step]
        assert jcsh(home, *words, stdin=case.stdin).code == 0, step
    args = case.args(env)
    if args[0] == "testmail":  # the sink stands in for the configured server
        assert jcsh(home, "registry", "set", "/configuration/mail/Port", str(env.sink_port)).code == 0
    ran = jcsh(home, "--json", *args, stdin=case.stdin)
    assert ran.code == case.code, (ran.out, ran.err)
    document = json.loads(ran.out)  # exactly one document on stdout
    validate(case.schema, document)
    if case.code != 0 and "error" in document:
        assert document["error"]["kind"] in set(ErrorKind)


@pytest.mark.timeout(30)
def test_sink_document_fits_its_schema(home: Path) -> None:
    with subprocess.Popen(
        [*JCSH, "--home", str(home), "sink", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as p:
        assert p.stderr is not None and p.stdout is not None
        banner = ""
        while "Ctrl-C stops it." not in banner:
            line = p.stderr.readline()
            assert line, banner
            banner += line
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
    validate("sink", json.loads(out))
    bad = jcsh(home, "--json", "sink", "--port", "70000")
    assert bad.code == 2
    validate("sink", bad.json)


def test_the_error_schema_knows_every_error_kind_and_store_fault() -> None:
    from jcsh.runtime.store import StoreFault

    error = REGISTRY.contents(BASE + "error.json")["$defs"]
    assert sorted(error["kind"]["enum"]) == sorted(str(k) for k in ErrorKind)
    assert sorted(error["error"]["properties"]["cause"]["enum"]) == sorted(str(f) for f in StoreFault)


def test_a_renamed_or_missing_key_is_caught() -> None:
    from jsonschema import ValidationError

    good = {"path": "/a", "value": "1"}
    validate("registry-get", good)
    for broken in ({"path": "/a", "valeu": "1"}, {"path": "/a"}, {"error": {"kind": "usage"}}):
        with pytest.raises(ValidationError):
            validate("registry-get", broken)
    with pytest.raises(ValidationError):
        validate("registry-get", {"error": {"kind": "no-such-kind", "message": "x"}})


def test_every_schema_file_is_used() -> None:
    used = {c.schema for c in CASES.values()} | {"sink", "error"}
    assert {p.stem for p in SCHEMAS.glob("*.json")} == used
