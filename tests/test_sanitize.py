"""The one sanitizer: hostile text from servers, certificates, the registry, credentials and scripts
reaches stdout and stderr escaped, never raw; --json keeps it exact; no renderer goes around it."""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import pty
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jcsh.runtime.controls import escape_controls
from jcsh.runtime.credentials import SMTP, CredentialStore
from jcsh.runtime.errors import UsageError
from jcsh.runtime.registry import Registry
from jcsh.runtime.store import CredentialRow
from jcsh.shell.context import Context
from jcsh.shell.render import human, json_document, one_line, paint, table
from tests.support.cli import JCSH, Ran, jcsh, jcsh_process
from tests.support.mailconf import MAIL, RawServer, configure_mail, trust
from tests.support.pki import TestCA

ROOT = Path(__file__).resolve().parent.parent

# Written out here, not imported: if the implementation's set shrank, these tests would notice.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
# What a hostile server sends: set the clipboard (OSC 52), the window title (OSC 0), clear the
# screen (CSI 2J), an 8-bit CSI, a right-to-left override, zero-width space and no-break, DEL.
HOSTILE = "\x1b]52;c;cHduZWQ=\x07\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\u200b\ufeff\x7f"
SHOWN = r"\x1b]52;c;cHduZWQ=\x07\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\u200b\ufeff\x7f"
# The registry and the credential store refuse C0/C1 controls; what they accept is still hostile.
STORABLE = "\u202ereverse\u200b\ufeff\u2066iso\u2069"
STORABLE_SHOWN = r"\u202ereverse\u200b\ufeff\u2066iso\u2069"


def assert_clean(*texts: str) -> None:
    for text in texts:
        found = RAW.search(text)
        assert found is None, f"raw {found.group()!r} in {text!r}"


# -- the functions ---------------------------------------------------------------------------------


def test_every_unsafe_character_is_escaped_and_nothing_is_removed() -> None:
    assert escape_controls(HOSTILE) == SHOWN
    assert escape_controls("a\tb\nc\rd\x00\x85\u2028\u061c\u2060") == "a\tb\nc\\x0dd\\x00\\x85\\u2028\\u061c\\u2060"
    assert one_line("a\tb\nc") == r"a\x09b\x0ac"  # inside a line: its own breaks are escaped too
    assert escape_controls("plain ascii, é, 日本, emoji 🙂") == "plain ascii, é, 日本, emoji 🙂"
    assert escape_controls("\udc9b") == r"\udc9b"  # a lone surrogate (undecodable bytes) cannot be written raw


def test_the_fast_path_cannot_let_an_unsafe_character_through() -> None:
    # Clean text skips the regex because str.isprintable() rejects every unsafe character.
    for code in range(0x110000):
        c = chr(code)
        if RAW.match(c) or 0xD800 <= code <= 0xDFFF:
            assert not c.isprintable() and escape_controls(c, lines=False) != c, hex(code)


@given(st.text())
def test_any_text_comes_out_clean_and_json_keeps_it_exact(text: str) -> None:
    shown = human(text)
    assert_clean(shown)
    assert not re.search("[\ud800-\udfff]", shown)
    assert len(shown) >= len(text)  # escaping only ever adds
    document = json_document({"value": text})
    assert_clean(document)
    assert not re.search("[\ud800-\udfff]", document)
    assert json.loads(document) == {"value": text}


def test_json_keeps_readable_text_readable() -> None:
    document = json_document({"subject": "Grüße \u202e", "n": 1})
    assert '"Grüße \\u202e"' in document
    assert json.loads(document)["subject"] == "Grüße \u202e"


def test_jcsh_colours_survive_and_a_server_cannot_forge_them() -> None:
    assert human(paint("sent", "green", True)) == "\x1b[32msent\x1b[0m"
    assert human(paint(HOSTILE, "red", True)) == f"\x1b[31m{SHOWN}\x1b[0m"  # content escaped, then painted
    assert human(paint("x", "red", False)) == "x"
    forged = "\x00deadbeefdead:31\x00"  # the shape of a mark without this process's token
    assert human(forged) == r"\x00deadbeefdead:31\x00"
    assert table([("a\nb", None, HOSTILE)]) == r"a\x0ab" + "    " + SHOWN
    assert human(one_line(paint("a\nb", "red", True))) == "\x1b[31ma\\x0ab\x1b[0m"  # a painted cell


def test_context_output_paths_all_sanitize() -> None:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(out=out, err=err)
    ctx.emit({"v": HOSTILE}, HOSTILE)
    ctx.warn(HOSTILE)
    ctx.show(HOSTILE, err=True)
    ctx.script_output("out", "")  # nothing to write is fine
    assert out.getvalue() == SHOWN + "\n"
    assert err.getvalue() == f"jcsh: {SHOWN}\n{SHOWN}"
    ctx.json = True
    ctx.emit({"v": HOSTILE}, HOSTILE)
    assert_clean(out.getvalue())
    assert json.loads(out.getvalue()[len(SHOWN) + 1 :]) == {"v": HOSTILE}


# -- the registry, credentials and the mail configuration ------------------------------------------


def test_registry_and_credential_listings_escape_stored_text(
    home: Path, registry: Registry, credentials: CredentialStore
) -> None:
    registry.set(f"/jobs/{STORABLE}", f"line one\n{STORABLE}\tend\r")
    credentials.add_protocol(SMTP)
    # Such names are refused now (exit 2), but a home written before holds them still.
    with pytest.raises(UsageError, match="U\\+202E"):
        credentials.add_protocol(f"custom{STORABLE}")
    with registry.transaction():  # the store itself takes any text, as an older release's did
        registry.store.add_protocol(f"custom{STORABLE}")
        row = CredentialRow(SMTP, f"mail{STORABLE}.example", f"user{STORABLE}", f"real{STORABLE}", None, None)
        registry.store.put_credential(row)
    runs = [
        jcsh(home, "registry", "ls", "/jobs"),
        jcsh(home, "registry", "ls", "-r", "/jobs"),
        jcsh(home, "credential", "ls"),
        jcsh(home, "credential", "protocol", "ls"),
    ]
    for ran in runs:
        assert ran.code == 0, ran
        assert_clean(ran.out, ran.err)
        assert STORABLE_SHOWN in ran.out
    # ls shows one entry a line: the value's own line breaks and tabs are escaped there.
    assert f"{STORABLE_SHOWN} = line one\\x0a{STORABLE_SHOWN}\\x09end\\x0d" in runs[0].out
    as_json = jcsh(home, "--json", "registry", "ls", "/jobs")
    assert_clean(as_json.out)
    assert as_json.json["children"][0]["value"] == f"line one\n{STORABLE}\tend\r"


def test_registry_get_and_export_are_exact_to_a_pipe(home: Path, registry: Registry) -> None:
    value = f"a\t{STORABLE}\r\nb"
    registry.set("/jobs/x", value)
    got = jcsh(home, "registry", "get", "/jobs/x")
    assert got.out == value + "\n"  # `$(jcsh registry get ...)` gets the value itself
    exported = jcsh(home, "registry", "export", "/jobs")
    assert STORABLE in exported.out and json.loads(exported.out)["children"]["x"]["value"] == value


def _on_a_terminal(home: Path, *args: str) -> str:
    """Run jcsh with stdout on a pseudo-terminal; what the terminal received."""
    leader, follower = pty.openpty()
    try:
        p = subprocess.Popen([*JCSH, "--home", str(home), *args], stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 1 << 16)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        assert p.wait(30) == 0, p.stderr.read() if p.stderr else ""
        if p.stderr:
            p.stderr.close()
    finally:
        os.close(leader)
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")  # the tty's own newline translation


@pytest.mark.timeout(60)
def test_registry_get_and_export_escape_on_a_terminal(home: Path, registry: Registry) -> None:
    registry.set("/jobs/x", f"a\t{STORABLE}\rb")
    registry.close()
    shown = _on_a_terminal(home, "registry", "get", "/jobs/x")
    assert shown == f"a\t{STORABLE_SHOWN}\\x0db\n"
    exported = _on_a_terminal(home, "registry", "export", "/jobs")
    assert_clean(exported)
    assert json.loads(exported)["children"]["x"]["value"] == f"a\t{STORABLE}\rb"  # still the same document


def test_mail_settings_doctor_and_error_lines_escape(home: Path, registry: Registry) -> None:
    configure_mail(registry, 25, server=f"mail{STORABLE}.example")
    registry.set(f"{MAIL}/Transport", f"smtp{STORABLE}")  # a trap the doctor names, quoting it
    settings = jcsh(home, "mail", "settings")
    doctor = jcsh(home, "mail", "doctor")
    error = jcsh(home, "registry", "get", f"/nowhere/{STORABLE}")
    usage = jcsh(home, "registry", "get", "/bad\x1b]0;t\x07path")
    for ran in (settings, doctor, error, usage):
        assert_clean(ran.out, ran.err)
    assert STORABLE_SHOWN in settings.out + settings.err and settings.code == 1  # a bad Transport stops it
    assert STORABLE_SHOWN in doctor.out and doctor.code == 1
    assert STORABLE_SHOWN in error.err and error.code != 0
    assert usage.code == 2 and r"\x1b]0;t\x07" in usage.err
    as_json = jcsh(home, "--json", "registry", "get", f"/nowhere/{STORABLE}")
    assert_clean(as_json.out)
    assert STORABLE in as_json.json["error"]["message"]


@pytest.mark.timeout(30)
def test_dns_answers_are_shown_escaped(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.dns import DnsResponder

    with DnsResponder() as server:
        # MX names with an OSC sequence and a right-to-left override in their labels (as bytes).
        server.add("hostile.test", "MX", "10 mx\\027]0\\;owned\\007.hostile.test.", "20 r\\226\\128\\174.hostile.test.")
        monkeypatch.setenv("JCSH_NAMESERVERS", server.address)
        ran = jcsh(home, "configure", "--from", "ops@hostile.test", "--timeout", "2")
        as_json = jcsh(home, "--json", "configure", "--from", "ops@hostile.test", "--timeout", "2")
    assert ran.code == 1 and "hostile.test" in ran.out, ran  # neither name resolves: status Error
    assert_clean(ran.out, ran.err, as_json.out)
    assert r"mx\027]0" in ran.out  # dnspython's own escape of the byte, shown as it is


# -- hostile servers -------------------------------------------------------------------------------


def hostile_smtp(server_context: ssl.SSLContext | None = None) -> RawServer:
    """A raw SMTP server whose every reply carries escape sequences; STARTTLS when given a context."""

    def script(conn: socket.socket) -> None:
        conn.sendall(f"220 mx.example ESMTP {HOSTILE}\r\n".encode())
        while True:
            line = server.read_line(conn)
            verb = line[:4].upper()
            if not line or verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            if verb in (b"EHLO", b"HELO"):
                tls = b"250-STARTTLS\r\n" if server_context and not isinstance(conn, ssl.SSLSocket) else b""
                conn.sendall(f"250-mx.example {HOSTILE}\r\n".encode() + tls + b"250 SIZE 1000\r\n")
            elif verb == b"STAR" and server_context:
                conn.sendall(b"220 go ahead\r\n")
                conn = server_context.wrap_socket(conn, server_side=True)
            elif verb == b"RCPT":
                conn.sendall(f"550 5.1.1 no such user {HOSTILE}\r\n".encode())
            elif verb in (b"MAIL", b"RSET", b"NOOP"):
                conn.sendall(b"250 ok\r\n")
            else:
                conn.sendall(b"502 not here\r\n")

    server = RawServer(script)
    return server


def _hostile_certificate(pki: TestCA) -> ssl.SSLContext:
    issued = pki.issue(("localhost", "127.0.0.1"), name=f"mx{HOSTILE}.example")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert_path, issued.key_path)
    return context


def _assert_escaped(ran: Ran, *, expect: str = SHOWN) -> None:
    assert_clean(ran.out, ran.err)
    assert expect in ran.out + ran.err, ran


@pytest.mark.timeout(30)
def test_testmail_shows_a_hostile_servers_replies_escaped(home: Path, registry: Registry) -> None:
    with hostile_smtp() as server:
        configure_mail(registry, server.port)
        registry.close()
        ran = jcsh_process(home, "testmail", "--to", "a@example.test", "--transcript", "--timeout", "3", timeout=20)
        as_json = jcsh_process(home, "--json", "testmail", "--to", "a@example.test", "--timeout", "3", timeout=20)
    assert ran.code == 1, ran
    _assert_escaped(ran)
    assert ran.out.count(r"\x1b]52") >= 2  # the banner in the transcript and the refusal
    assert_clean(as_json.out)
    refused = as_json.json["refused"]["a@example.test"]
    assert HOSTILE in refused  # --json keeps the server's words exactly


@pytest.mark.timeout(40)
def test_tls_probe_shows_a_hostile_banner_and_certificate_escaped(
    home: Path, registry: Registry, credentials: CredentialStore, pki: TestCA
) -> None:
    trust(credentials, pki.root_pem)
    registry.close()
    with hostile_smtp(_hostile_certificate(pki)) as server:
        ran = jcsh_process(home, "tls", "probe", f"127.0.0.1:{server.port}", "--timeout", "3", timeout=30)
        as_json = jcsh_process(home, "--json", "tls", "probe", f"127.0.0.1:{server.port}", "--timeout", "3")
    assert ran.code == 0, ran
    _assert_escaped(ran)
    assert re.search(r"certificate .*mx\\x1b\]52", ran.out), ran.out  # the subject, escaped
    assert_clean(as_json.out)
    subject = as_json.json["certificate"]["subject"]  # RFC 4514 adds its own backslash before ";"
    assert "mx\x1b]52" in subject and "\u202eevil\u200b\ufeff\x7f.example" in subject
    assert HOSTILE in as_json.json["smtp"]["banner"]


@pytest.mark.timeout(30)
def test_a_scripts_error_and_output_are_escaped(home: Path, registry: Registry) -> None:
    code = "mail.send('a@example.test', 'subject', 'body')"
    with hostile_smtp() as server:
        configure_mail(registry, server.port)
        registry.close()
        sent = jcsh_process(home, "--timeout", "3", "-c", code, timeout=20)
    assert sent.code == 1, sent
    _assert_escaped(sent)
    raised = jcsh_process(home, "-c", f"raise ValueError({HOSTILE!r})")
    assert raised.code == 1 and raised.err.rstrip().endswith(f"ValueError: {SHOWN}")
    assert_clean(raised.err)
    # A script's own output to a pipe or file is its own business: exact (see docs/decisions.md).
    printed = jcsh_process(home, "-c", f"print({HOSTILE!r})")
    assert printed.out == HOSTILE + "\n"


@pytest.mark.timeout(30)
def test_the_repl_escapes_output_values_and_errors(home: Path) -> None:
    from jcsh.shell.repl import Repl, open_session

    out, err = io.StringIO(), io.StringIO()
    ctx = Context(home_arg=str(home), out=out, err=err)
    session = open_session(ctx)
    try:
        repl = Repl(ctx, session)
        assert repl.execute(f"print({HOSTILE!r})") == 0
        assert repl.execute(f"jcsErr.println({HOSTILE!r})") == 0
        assert repl.execute(f"raise ValueError({HOSTILE!r})") == 1
        assert repl.execute(f"%registry get /nowhere/{STORABLE}") != 0
        assert repl.execute(f"{HOSTILE!r}") == 0  # the echoed value (repr already escapes a str)
    finally:
        session.close()
    assert_clean(out.getvalue(), err.getvalue())
    assert out.getvalue().count(SHOWN) == 2  # print and the echoed repr
    # jcsErr, then the traceback's source line (the literal, as typed) and its message.
    assert err.getvalue().count(SHOWN) == 3 and STORABLE_SHOWN in err.getvalue()


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_the_real_repl_on_a_terminal_never_passes_a_script_sequence_through(home: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    env.update(JCSH_HOME=str(home), TERM="dumb")  # plain prompts: the only escapes left would be the script's
    child = pexpect.spawn(sys.executable, ["-m", "jcsh"], env=env, encoding="utf-8", timeout=20)
    try:
        child.expect("jcsh> ")
        child.sendline(f"print({HOSTILE!r})")
        child.expect("jcsh> ")
        screen = child.before  # the echoed input line and what the statement printed
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "\x1b]52" not in screen and "\x1b]0;" not in screen and "\u202e" not in screen
    assert SHOWN in screen.replace("\r\n", "\n")


@pytest.mark.timeout(30)
def test_the_sink_shows_what_clients_send_escaped(home: Path) -> None:
    import signal
    import smtplib

    proc = subprocess.Popen(
        [*JCSH, "--home", str(home), "sink", "--port", "0", "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        listening = re.search(r"127\.0\.0\.1:(\d+)", first)
        assert listening, first
        port = int(listening.group(1))
        subject = "=?utf-8?b?" + base64.b64encode(HOSTILE.encode()).decode() + "?="
        with smtplib.SMTP("127.0.0.1", port, local_hostname="c\x1b]0;t\x07.example", timeout=5) as client:
            client.sendmail("a@example.test", ["b@example.test"], f"Subject: {subject}\r\n\r\nbody\r\n")
            client.docmd("NOOP \x1b[2J\x7f")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert_clean(first, out, err)
    assert f"Subject: {SHOWN}" in out


# -- nothing goes around it ------------------------------------------------------------------------

# The modules that may write to a stream themselves: the sanitizer's own (context, render), the
# spinner (its frames are jcsh's own text and cursor codes) and the history file.
_WRITERS = {"shell/context.py", "shell/render.py", "shell/spinner.py", "shell/history.py", "shell/streams.py"}


def _direct_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Attribute) and fn.attr in ("write", "writelines"):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(fn)}()")
            elif isinstance(fn, ast.Name) and fn.id == "print":
                found.append(f"{path.name}:{node.lineno}: print()")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ("stdout", "stderr", "buffer")
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            found.append(f"{path.name}:{node.lineno}: sys.{node.attr}")
    return found


def test_no_renderer_writes_around_the_sanitizer() -> None:
    offenders = []
    for path in sorted((ROOT / "shell").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in _WRITERS:
            offenders += _direct_writes(path)
    # repl.py flushes both streams before os._exit (no text), context.py picks the defaults.
    allowed = {"repl.py: sys.stdout", "repl.py: sys.stderr"}
    left = [o for o in offenders if re.sub(r":\d+:", ":", o) not in allowed]
    assert left == [], "write through Context.emit/warn/show/script_output or render.report_error:\n" + "\n".join(left)


def test_the_static_check_would_catch_a_direct_write(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\ndef cmd(ctx):\n    ctx.out.write(x)\n    print(y)\n    sys.stderr.flush()\n")
    assert len(_direct_writes(bad)) == 3
