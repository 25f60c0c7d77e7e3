"""`jcsh testmail` end to end against loopback sinks, including the seed's Gmail and Office 365 tables."""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jcsh.runtime.registry import Registry
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import jcsh, jcsh_process
from tests.support.mailconf import MAIL, PASSWORD, RawServer, write

TO = "rcpt@example.test"
RESULT_KEYS = {
    "status",
    "server",
    "port",
    "security",
    "tls",
    "verified",
    "certificate",
    "authenticated_as",
    "accepted",
    "refused",
    "message_id",
    "final_reply",
    "warnings",
    "transcript",
    "elapsed_ms",
    "step",
    "tls_failure",
    "explanation",
    "error",
    "quit_after",
    "recipients",
}


def tls_sink(pki, **kwargs) -> Sink:
    leaf = pki.issue()
    return Sink(SinkConfig(port=0, mode="starttls", cert_path=leaf.chain_path, key_path=leaf.key_path, **kwargs))


def setup(home: Path, *pairs: tuple[str, str]) -> None:
    """Registry entries set the way an admin would: `jcsh registry set KEY VALUE`."""
    for key, value in pairs:
        ran = jcsh(home, "registry", "set", key, value)
        assert ran.code == 0, ran.err


def trust_root(home: Path, pki) -> None:
    assert jcsh(home, "credential", "protocol", "add", "X509_TrustedCertificate").code == 0
    ran = jcsh(
        home,
        "credential",
        "add",
        "--protocol",
        "X509_TrustedCertificate",
        "--endpoint",
        "test-root",
        "--virtual-user",
        "default",
        "--certificate",
        str(pki.root_path),
    )
    assert ran.code == 0, ran.err


def add_login(home: Path, endpoint: str, user: str) -> None:
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 0
    ran = jcsh(
        home,
        "credential",
        "add",
        "--protocol",
        "smtp",
        "--endpoint",
        endpoint,
        "--virtual-user",
        "default",
        "--real-user",
        user,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert ran.code == 0, ran.err


def basic(home: Path, port: int, *extra: tuple[str, str]) -> None:
    setup(
        home,
        (f"{MAIL}/Server", "127.0.0.1"),
        (f"{MAIL}/Transport", "smtp"),
        (f"{MAIL}/Port", str(port)),
        (f"{MAIL}/From", "jcsh@example.test"),
        *extra,
    )


STARTTLS_REQUIRED = (f"{MAIL}/JavaMail/mail.smtp.starttls.required", "true")


@pytest.mark.timeout(20)
def test_summary_over_starttls_with_default_subject_and_body(home, pki) -> None:
    trust_root(home, pki)
    with tls_sink(pki) as sink:
        basic(home, sink.port, STARTTLS_REQUIRED)
        ran = jcsh(home, "testmail", "--to", TO)
        [got] = sink.wait_for(1)
    assert ran.code == 0, ran.err
    for expected in (
        "status:     sent",
        f"server:     127.0.0.1:{sink.port}",
        "security:   STARTTLSRequired",
        "tls:        TLSv1",
        "trust:      verified: CN=localhost",
        "login:      none",
        f"recipient:  {TO}: accepted",
        f"reply:      250 OK: queued as {got.queue_id}",
    ):
        assert expected in ran.out, (expected, ran.out)
    host = socket.gethostname()
    assert "jcsh test mail" in got.subject and host in got.subject
    body = got.message().get_content()
    assert "jcsh test mail" in body and host in body
    assert "-> " not in ran.out  # no transcript unless asked


@pytest.mark.timeout(20)
def test_json_shape_and_transcript(home, pki) -> None:
    trust_root(home, pki)
    add_login(home, "127.0.0.1", "bob")
    with tls_sink(pki, require_starttls=True, auth={"bob": PASSWORD}) as sink:
        basic(home, sink.port, STARTTLS_REQUIRED)
        plain = jcsh(home, "--json", "testmail", "--to", TO, "--cc", "cc@example.test", "--bcc", "b@example.test")
        traced = jcsh(home, "testmail", "--to", TO, "--transcript", "--subject", "S", "--body", "B")
        sink.wait_for(2)
    doc = plain.json
    assert plain.code == 0 and set(doc) == RESULT_KEYS
    assert doc["status"] == "sent" and doc["transcript"] is None and doc["authenticated_as"] == "bob"
    assert doc["accepted"] == [TO, "cc@example.test", "b@example.test"]
    assert doc["tls"]["version"].startswith("TLSv1") and doc["verified"] is True
    assert traced.code == 0
    assert "-> STARTTLS" in traced.out and "-> AUTH LOGIN" in traced.out and "<- 221" in traced.out
    for ran in (plain, traced):
        assert PASSWORD not in ran.out + ran.err


@pytest.mark.timeout(20)
def test_untrusted_server_exits_3(home, pki, other_ca) -> None:
    trust_root(home, pki)
    leaf = other_ca.issue()
    with Sink(SinkConfig(port=0, mode="starttls", cert_path=leaf.chain_path, key_path=leaf.key_path)) as sink:
        basic(home, sink.port, STARTTLS_REQUIRED)
        human = jcsh(home, "testmail", "--to", TO)
        data = jcsh(home, "--json", "testmail", "--to", TO)
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in human.out.splitlines()}
    assert human.code == 3 and lines["status"] == "failed" and lines["tls"] == "certificate not trusted"
    assert "issued by CN=jcsh Untrusted Root CA" in lines["certificate"]
    assert "jcsh: the certificate of 127.0.0.1" in human.err and "untrusted issuer" in human.err
    assert data.code == 3 and data.json["error"]["kind"] == "trust"


def test_usage_errors_exit_2(home) -> None:
    basic(home, 1)
    assert jcsh(home, "testmail").code == 2  # --to is required
    bad = jcsh(home, "--json", "testmail", "--to", "not an address")
    assert bad.code == 2 and bad.json["error"]["kind"] == "usage"
    injected = jcsh(home, "testmail", "--to", TO, "--subject", "x\nBcc: evil@example.test")
    assert injected.code == 2 and "line break" in injected.err
    assert jcsh(home, "testmail", "--to", TO, "--html", str(home / "missing.html")).code == 2
    for limit in ("0", "-1", "soon"):  # each step's limit: a number of seconds above 0
        assert jcsh(home, "testmail", "--to", TO, "--timeout", limit).code == 2


def test_no_server_configured(home) -> None:
    ran = jcsh(home, "testmail", "--to", TO)
    assert ran.code == 1 and "jcsh configure" in ran.err


@pytest.mark.timeout(20)
def test_html_and_attachments(home, pki, tmp_path) -> None:
    html = write(tmp_path / "body.html", b"<p>hello <b>admin</b></p>")
    pdf = write(tmp_path / "files" / "report.pdf", b"%PDF-1.4")
    outside = write(tmp_path / "elsewhere" / "x.txt", b"x")
    with Sink(SinkConfig(port=0)) as sink:
        basic(home, sink.port, (f"{MAIL}/AccessiblePath", str(tmp_path / "files")))
        ran = jcsh(home, "testmail", "--to", TO, "--html", str(html), "--attach", str(pdf))
        refused = jcsh(home, "testmail", "--to", TO, "--attach", str(outside))
        [got] = sink.wait_for(1)
    assert ran.code == 0, ran.err
    msg = got.message()
    assert [p.get_filename() for p in msg.iter_attachments()] == ["report.pdf"]
    assert msg.get_body(("html",)).get_content().strip() == "<p>hello <b>admin</b></p>"
    assert refused.code == 1 and "outside AccessiblePath" in refused.err


@pytest.mark.timeout(20)
def test_timeout_option_bounds_a_silent_server(home) -> None:
    with RawServer(lambda conn: server.stopped.wait(10)) as server:
        basic(home, server.port)
        ran = jcsh(home, "testmail", "--to", TO, "--timeout", "0.3")
    assert ran.code == 4 and "timed out" in ran.err


# -- the seed's configuration examples, against local servers standing in for them ------------------


@pytest.mark.timeout(20)
def test_gmail_table(home, pki) -> None:
    # The Gmail rows with the server name "localhost" for smtp.gmail.com, in its per-server subtree.
    scope = f"{MAIL}/localhost"
    trust_root(home, pki)  # the stand-in's root; Gmail's comes with the system CAs
    add_login(home, "localhost", "jcsh.tester")  # Real User without the @gmail.com part
    with tls_sink(pki, require_starttls=True, auth_require_tls=True, auth={"jcsh.tester": PASSWORD}) as sink:
        setup(
            home,
            (f"{scope}/JavaMail/mail.smtp.starttls.required", "true"),
            (f"{scope}/JavaMail/mail.smtp.starttls.enabled", "true"),
            (f"{scope}/Server", "localhost"),
            (f"{scope}/Port", str(sink.port)),  # 587 in real life
            (f"{MAIL}/Transport", "smtp"),
            (f"{MAIL}/From", "jcsh.tester@example.test"),
        )
        ran = jcsh(home, "--json", "testmail", "--to", TO)
        [got] = sink.wait_for(1)
    doc = ran.json
    assert ran.code == 0, ran.out
    assert (doc["server"], doc["security"], doc["verified"], doc["authenticated_as"]) == (
        "localhost",
        "STARTTLSRequired",
        True,
        "jcsh.tester",
    )
    assert got.authenticated_as == "jcsh.tester" and got.tls_version


@pytest.mark.timeout(20)
def test_office365_direct_send_table(home, pki) -> None:
    # Direct send: encryption without authentication, keys directly under /configuration/mail.
    trust_root(home, pki)
    with tls_sink(pki, require_starttls=True) as sink:
        setup(
            home,
            (f"{MAIL}/JavaMail/mail.smtp.starttls.required", "true"),
            (f"{MAIL}/JavaMail/mail.smtp.starttls.enabled", "true"),
            (f"{MAIL}/JavaMail/mail.smtp.port", str(sink.port)),  # 25 in real life
            (f"{MAIL}/Server", "localhost"),
            (f"{MAIL}/Transport", "smtp"),
            (f"{MAIL}/From", "jobs@example.test"),
        )
        ran = jcsh(home, "--json", "testmail", "--to", "colleague@example.test")
        [got] = sink.wait_for(1)
    doc = ran.json
    assert ran.code == 0, ran.out
    assert (doc["security"], doc["verified"], doc["authenticated_as"]) == ("STARTTLSRequired", True, None)
    assert got.tls_version and got.authenticated_as is None and got.rcpt_tos == ["colleague@example.test"]


@pytest.mark.timeout(30)
def test_server_option_selects_a_scope(home, pki) -> None:
    trust_root(home, pki)
    with tls_sink(pki) as sink:
        setup(
            home,
            (f"{MAIL}/Server", "smtp.example.test"),
            (f"{MAIL}/Transport", "smtp"),
            (f"{MAIL}/From", "jcsh@example.test"),
            (f"{MAIL}/localhost/Port", str(sink.port)),
            (f"{MAIL}/localhost/ConnectionSecurity", "STARTTLSRequired"),
        )
        ran = jcsh(home, "--json", "testmail", "--to", TO, "--server", "localhost")
        sink.wait_for(1)
    assert ran.code == 0, ran.out
    assert ran.json["port"] == sink.port and ran.json["security"] == "STARTTLSRequired"


@pytest.mark.timeout(30)
def test_whole_process(home, pki) -> None:
    trust_root(home, pki)
    with tls_sink(pki) as sink:
        basic(home, sink.port, STARTTLS_REQUIRED)
        ran = jcsh_process(home, "testmail", "--to", TO, "--transcript")
        sink.wait_for(1)
    assert ran.code == 0, ran.err
    assert "-> STARTTLS" in ran.out and "status:     sent" in ran.out


@pytest.mark.parametrize(
    ("setup", "args", "code", "kind"),
    [
        ({}, ("--to", "a@example.test"), 1, "config"),  # no server configured
        ({"Server": "127.0.0.1", "Port": "25"}, ("--to", "not an address"), 2, "usage"),
        ({"Server": "127.0.0.1", "JavaMail/mail.smtp.ssl.protocols": "TLSv9"}, ("--to", "a@example.test"), 1, "config"),
    ],
)
def test_json_result_has_the_same_shape_when_it_fails_before_connecting(
    home: Path, registry: Registry, setup: dict[str, str], args: tuple[str, ...], code: int, kind: str
) -> None:
    for key, value in setup.items():
        registry.set(f"/configuration/mail/{key}", value)
    ran = jcsh(home, "--json", "testmail", *args)
    doc = json.loads(ran.out)
    assert ran.code == code and doc["status"] == "failed" and doc["error"]["kind"] == kind
    assert {"server", "port", "security", "accepted", "refused", "warnings", "tls", "verified"} <= set(doc)


# Runs jcsh's console entry point in a process whose teardown is visible: an object that writes
# when it is finalized, and (with "atexit") an exit handler that must still run.
_TEARDOWN_PROBE = """
import atexit, os, sys
class Finalized:
    def __del__(self):
        os.write(2, b"teardown ran\\n")
keep = Finalized()
if sys.argv[1] == "atexit":
    atexit.register(lambda: os.write(2, b"atexit ran\\n"))
sys.argv = ["jcsh", *sys.argv[2:]]
from jcsh.shell.entry import main
sys.exit(main())
"""


def _entry(home: Path, mode: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _TEARDOWN_PROBE, mode, "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(60)
def test_testmail_exits_without_the_interpreter_teardown_unless_it_has_work(home, pki) -> None:
    trust_root(home, pki)
    with tls_sink(pki) as sink:
        basic(home, sink.port, STARTTLS_REQUIRED)
        sent = _entry(home, "plain", "testmail", "--to", TO)
        with_handler = _entry(home, "atexit", "testmail", "--to", TO)
        sink.wait_for(2)
    # Skipped teardown, every byte of the summary still written, the exit code kept.
    assert sent.returncode == 0 and "status:     sent" in sent.stdout, sent.stderr
    assert "teardown ran" not in sent.stderr
    # An exit handler is waiting: the interpreter ends as usual, and runs it.
    assert with_handler.returncode == 0 and "status:     sent" in with_handler.stdout
    assert "atexit ran" in with_handler.stderr and "teardown ran" in with_handler.stderr
    refused = _entry(home, "plain", "testmail", "--to", "not an address")
    assert refused.returncode == 2 and "not a valid email address" in refused.stderr
    assert "teardown ran" not in refused.stderr
    # Commands outside the list keep the interpreter's own exit.
    listed = _entry(home, "plain", "registry", "get", f"{MAIL}/Server")
    assert listed.returncode == 0 and listed.stdout == "127.0.0.1\n" and "teardown ran" in listed.stderr


# The console entry with an exit handler (so the interpreter ends as usual and runs it), which
# reports the collector's state as the command left it.
_COLLECTOR_PROBE = """
import atexit, gc, os, sys
atexit.register(lambda: os.write(2, f"collector {gc.isenabled()} {gc.get_threshold()[0]}\\n".encode()))
sys.argv = ["jcsh", *sys.argv[1:]]
from jcsh.shell.entry import main
sys.exit(main())
"""


@pytest.mark.timeout(60)
def test_one_shot_commands_collect_less_often_and_scripts_keep_the_default(home: Path) -> None:
    def collector(*args: str) -> str:
        ran = subprocess.run(
            [sys.executable, "-c", _COLLECTOR_PROBE, "--home", str(home), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return ran.stderr.splitlines()[-1]

    # Still on (memory stays bounded), from 50,000 new objects instead of 700.
    assert collector("testmail", "--to", "not an address") == "collector True 50000"
    assert collector("tls", "probe", "127.0.0.1:1", "--timeout", "2") == "collector True 50000"
    default = gc.get_threshold()[0]
    assert collector("registry", "get", "/") == f"collector True {default}"
    assert collector("-c", "1") == f"collector True {default}"
