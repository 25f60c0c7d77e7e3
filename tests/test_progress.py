"""Network commands on the command line: a spinner on a terminal only, and `-v` lines as they happen."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import JCSH, jcsh, jcsh_process
from tests.support.mailconf import PASSWORD, RawServer, add_login, configure_mail

_SPINNER = r"probe… \d+\.\ds +\(Ctrl-C cancels\)"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts connections and never greets."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield s.getsockname()[1]


@pytest.mark.timeout(20)
def test_a_probe_on_a_terminal_shows_a_spinner_with_elapsed_seconds(terminal, silent_port: int) -> None:
    t = terminal("tls", "probe", f"127.0.0.1:{silent_port}", "--timeout", "1.5")
    t.expect(_SPINNER)
    t.expect("sent no SMTP greeting within 1.5 s")
    assert t.finish() == 4  # the command has ended; Ctrl-D goes nowhere


@pytest.mark.timeout(20)
def test_no_spinner_with_json_even_on_a_terminal(terminal, silent_port: int) -> None:
    t = terminal("--json", "tls", "probe", f"127.0.0.1:{silent_port}", "--timeout", "1")
    t.expect('"kind": "timeout"')
    t.expect(r"\n\}")  # the end of the document: anything a spinner drew came before it
    assert "probe…" not in t.text and "Ctrl-C cancels" not in t.text


@pytest.mark.timeout(20)
def test_no_spinner_when_stderr_is_piped(home: Path, silent_port: int) -> None:
    ran = jcsh_process(home, "tls", "probe", f"127.0.0.1:{silent_port}", "--timeout", "1")
    assert ran.code == 4
    assert ran.err.startswith(f"jcsh: 127.0.0.1:{silent_port} ") and "no SMTP greeting" in ran.err
    assert ran.err.count("\n") == 1 and "\r" not in ran.err and "probe…" not in ran.err


@pytest.mark.timeout(20)
def test_verbose_testmail_prints_the_dialogue_as_it_happens_never_the_password(home: Path) -> None:
    def greet_then_stall(conn: socket.socket) -> None:
        conn.sendall(b"220 slow.example.test ESMTP\r\n")
        server.read_line(conn)  # EHLO
        time.sleep(3)  # longer than the client's timeout

    with RawServer(greet_then_stall) as server:
        setup = jcsh(home, "configure", "--from", "ops@example.test", "--server", "127.0.0.1")
        assert setup.code == 0
        assert jcsh(home, "registry", "set", "/configuration/mail/Port", str(server.port)).code == 0
        with subprocess.Popen(
            [*JCSH, "--home", str(home), "testmail", "--to", "a@example.test", "-v", "--timeout", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as p:
            assert p.stderr is not None
            seen = ""
            while "<- 220 slow.example.test ESMTP" not in seen:
                line = p.stderr.readline()
                assert line, seen
                seen += line
            assert p.poll() is None  # shown while the command still waits on the server
            _, rest = p.communicate(timeout=10)
    assert p.returncode == 4  # the stalled reply is a timeout
    assert "timed out during EHLO" in rest


@pytest.mark.timeout(20)
def test_verbose_login_is_redacted_and_json_stays_one_document(home: Path, registry, credentials) -> None:
    with Sink(SinkConfig(port=0, auth={"bob": PASSWORD})) as sink:
        configure_mail(registry, sink.port, **{"mail.smtp.auth": "true"})
        add_login(credentials, "127.0.0.1", allow_plaintext=True)  # a sink without TLS
        ran = jcsh(home, "--json", "testmail", "--to", "a@example.test", "-v")
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["status"] == "sent"  # stdout: the document only
    assert "-> AUTH LOGIN" in ran.err and "-> <redacted>" in ran.err  # JavaMail's order: LOGIN first
    assert "<- 235 " in ran.err and "<- 221 " in ran.err
    assert PASSWORD not in ran.err + ran.out


@pytest.mark.timeout(20)
def test_verbose_probe_prints_each_connection_as_it_ends(home: Path) -> None:
    with Sink(SinkConfig(port=0, mode="starttls")) as sink:
        ran = jcsh(home, "tls", "probe", f"127.0.0.1:{sink.port}", "-v", "--timeout", "3")
        quiet = jcsh(home, "tls", "probe", f"127.0.0.1:{sink.port}", "--timeout", "3")
    assert ran.code == 0, ran.err
    lines = ran.err.splitlines()
    assert lines[0].startswith(f"probing 127.0.0.1:{sink.port} (starttls): ")
    assert any(line.startswith("TLSv1.3: accepted TLSv1.3 ") for line in lines)
    assert any(line.startswith("trust: ") for line in lines)
    assert quiet.err == "" and quiet.out.splitlines()[1:] == ran.out.splitlines()[1:]


def test_verbose_with_a_bad_option_is_a_usage_error(home: Path) -> None:
    ran = jcsh(home, "testmail", "-v", "--to")
    assert ran.code == 2 and "--to" in ran.err
