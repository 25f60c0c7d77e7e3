"""runtime/smtp/wire.py against raw servers: pipelined replies, AUTH challenges, deadlines, out-of-turn data."""

from __future__ import annotations

import socket
import time
from base64 import b64decode, b64encode

import pytest

from jcsh.runtime.credentials import Secret
from jcsh.runtime.mail.message import MailRequest
from jcsh.runtime.mail.sasl import SaslExchange
from jcsh.runtime.mail.send import send_mail
from jcsh.runtime.mail.settings import load_settings
from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.smtp.dial import connect
from jcsh.runtime.smtp.transcript import Transcript
from jcsh.runtime.smtp.wire import (
    Deadline,
    ProtocolError,
    Reply,
    ServerClosed,
    StepTimeout,
    Timeouts,
    Wire,
    features,
    shown,
)
from jcsh.runtime.tls.probe import probe
from tests.support.mailconf import RawServer, add_login, configure_mail, trust

FAST = Timeouts(connect=1.0, read=1.0, write=1.0)


def _open(server: RawServer, timeouts: Timeouts = FAST, transcript: Transcript | None = None) -> Wire:
    return connect("127.0.0.1", server.port, timeouts, timeouts.deadline("connect"), transcript=transcript)


@pytest.mark.timeout(10)
def test_pipelined_commands_go_in_one_write_and_replies_come_back_in_order() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 raw\r\n")
        got = b""
        while got.count(b"\r\n") < 3:  # all three before a single reply: one write, or close to it
            got += conn.recv(4096)
        server.received.extend(got)
        conn.sendall(b"250 sender ok\r\n250-recipient\r\n250 ok\r\n354 go ahead\r\n")
        conn.recv(4096)

    with RawServer(script) as server:
        wire = _open(server)
        try:
            assert wire.read_reply(wire.deadline("the greeting"), greeting=True) == Reply(220, ("raw",))
            deadline = wire.deadline("MAIL FROM, RCPT TO, DATA")
            wire.send_lines(["MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>", "DATA"], deadline)
            replies = wire.read_replies(3, deadline)
        finally:
            wire.close()
    assert [str(r) for r in replies] == ["250 sender ok", "250 recipient ok", "354 go ahead"]
    assert bytes(server.received) == b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"


@pytest.mark.timeout(10)
def test_auth_drives_a_sasl_exchange_through_its_challenges_and_redacts_them() -> None:
    # XOAUTH2's failure flow: a 334 with the error details, an empty answer, then the 5xx.
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 raw\r\n")
        server.read_line(conn)  # AUTH XOAUTH2 <initial response>
        conn.sendall(b"334 " + b64encode(b'{"status":"401","scope":"https://mail.google.com/"}') + b"\r\n")
        server.read_line(conn)  # the empty answer
        conn.sendall(b"535 5.7.8 no\r\n")

    transcript = Transcript(True)
    exchange = SaslExchange("XOAUTH2", "bob@example.test", Secret("the-token"))
    with RawServer(script) as server:
        wire = _open(server, transcript=transcript)
        try:
            wire.read_reply(wire.deadline("the greeting"), greeting=True)
            reply = wire.authenticate(exchange, wire.deadline("AUTH"))
        finally:
            wire.close()
    assert reply.code == 535 and exchange.failure is not None and exchange.failure.status == "401"
    sent = bytes(server.received).split(b"\r\n")
    assert b64decode(sent[0].split()[2]) == b"user=bob@example.test\x01auth=Bearer the-token\x01\x01"
    assert sent[1] == b""
    assert "-> AUTH XOAUTH2 <redacted>" in transcript.lines and "-> <redacted>" in transcript.lines
    assert not any("the-token" in line or "dXNlcj" in line for line in transcript.lines)


class _Endless:
    """A mechanism that would answer challenges forever (none of sasl.py's does)."""

    def command(self) -> str:
        return "AUTH X-ENDLESS"

    def answer(self, challenge: str) -> str:
        return ""


@pytest.mark.timeout(10)
def test_a_server_that_keeps_challenging_is_a_protocol_error() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 raw\r\n")
        while server.read_line(conn):
            conn.sendall(b"334 VXNlcm5hbWU6\r\n")

    with RawServer(script) as server:
        wire = _open(server)
        try:
            wire.read_reply(wire.deadline("the greeting"), greeting=True)
            with pytest.raises(ProtocolError, match="more than 8 AUTH challenges"):
                wire.authenticate(_Endless(), wire.deadline("AUTH"))
        finally:
            wire.close()


@pytest.mark.timeout(10)
def test_a_drip_is_cut_off_at_the_step_deadline_not_per_byte() -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 raw\r\n")
        server.read_line(conn)
        conn.sendall(b"250-raw\r\n250 ")
        while not server.stopped.wait(0.05):
            conn.sendall(b"x")

    with RawServer(script) as server:
        wire = _open(server, Timeouts(connect=1.0, read=0.5, write=0.5))
        try:
            wire.read_reply(wire.deadline("the greeting"), greeting=True)
            started = time.monotonic()
            with pytest.raises(StepTimeout) as info:
                wire.command("EHLO here")
            took = time.monotonic() - started
        finally:
            wire.close()
    assert 0.45 < took < 1.0 and info.value.step == "EHLO" and info.value.exit_code == 4
    assert "timed out during EHLO with 127.0.0.1:" in info.value.message and "after 0.5 s" in info.value.message


@pytest.mark.timeout(10)
def test_an_outer_deadline_names_the_script_limit() -> None:
    with RawServer(lambda conn: server.stopped.wait(5)) as server:
        timeouts = FAST._replace(read=30.0, write=30.0, cap=time.monotonic() + 0.3)
        wire = _open(server, timeouts)
        try:
            with pytest.raises(StepTimeout) as info:
                wire.read_reply(wire.deadline("the greeting"), greeting=True)
        finally:
            wire.close()
    assert info.value.by_cap and "the script's time limit ran out during the greeting" in info.value.message


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("after_greeting", "error", "says"),
    [
        (b"250 extra\r\n", ProtocolError, "answered before it was asked (before EHLO; protocol error): '250 extra'"),
        (b"421 4.4.2 shutting down\r\n", ServerClosed, "closed the connection before EHLO (421 4.4.2 shutting down)"),
    ],
)
def test_data_waiting_before_a_command_is_out_of_turn(after_greeting: bytes, error: type, says: str) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 raw\r\n" + after_greeting)
        server.stopped.wait(5)

    with RawServer(script) as server:
        wire = _open(server)
        try:
            wire.read_reply(wire.deadline("the greeting"), greeting=True)
            time.sleep(0.1)  # the extra bytes have arrived
            with pytest.raises(error) as info:
                wire.command("EHLO here")
        finally:
            wire.close()
    assert says in str(info.value)
    assert server.received == bytearray()  # the command was never sent


def test_shown_escapes_every_unprintable_character_and_cuts() -> None:
    assert shown(b"220 \x1b]0;t\x07 \xe2\x80\xae \\ ok", 80) == "'220 \\x1b]0;t\\x07 \\u202e \\\\ ok'"
    assert shown("x" * 50, 40) == "'" + "x" * 40 + "'..."
    assert shown(b"\xc2\x9b\xff", 10) == "'\\x9b\ufffd'"  # U+FFFD (undecodable) is printable


def test_ehlo_features_as_smtplib_reads_them() -> None:
    ehlo = Reply(250, ("mx.example.test", "SIZE 1000", "AUTH PLAIN LOGIN", "AUTH=XOAUTH2", "STARTTLS", ""))
    assert features(ehlo) == {"size": "1000", "auth": "PLAIN LOGIN XOAUTH2", "starttls": ""}


@pytest.mark.timeout(10)
def test_deadline_of_a_step_renamed_on_the_way() -> None:
    deadline = Deadline("connect", 0.05)
    deadline.step = "the greeting"
    time.sleep(0.06)
    assert deadline.left() < 0 and "during the greeting" in deadline.expired("h:25").message


# -- through the session ---------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_refused_login_after_verified_starttls_keeps_tls_and_trust(registry, credentials, pki) -> None:
    from jcsh.shell.commands.testmail import summary

    trust(credentials, pki.root_pem)
    add_login(credentials, "127.0.0.1", password="wrong")
    leaf = pki.issue()
    config = SinkConfig(port=0, mode="starttls", cert_path=leaf.chain_path, key_path=leaf.key_path, auth={"bob": "pw"})
    with Sink(config) as sink:
        configure_mail(registry, sink.port, **{"mail.smtp.starttls.required": "true"})
        result = send_mail(load_settings(registry, credentials), credentials, MailRequest(to=["a@example.test"]))
    assert (result.status, result.exit_code, result.step) == ("failed", 1, "AUTH")
    assert (
        result.tls is not None
        and result.verified is True
        and result.certificate["subject"] == "CN=localhost,O=jcsh tests"
    )
    text = summary(result)
    assert "trust:      verified: CN=localhost" in text and "handshake failed" not in text


@pytest.mark.timeout(10)
def test_plain_text_sent_with_the_220_to_starttls_is_never_read_as_a_reply(registry, credentials) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"220 raw\r\n")
        server.read_line(conn)
        conn.sendall(b"250-raw\r\n250 STARTTLS\r\n")
        server.read_line(conn)
        conn.sendall(b"220 go ahead\r\n250 2.0.0 injected\r\n")  # one segment: before any ClientHello
        server.stopped.wait(5)

    with RawServer(script) as server:
        configure_mail(registry, server.port, **{"mail.smtp.starttls.required": "true", "mail.smtp.timeout": "1000"})
        result = send_mail(load_settings(registry, credentials), credentials, MailRequest(to=["a@example.test"]))
    assert (result.exit_code, result.error["kind"], result.step) == (3, "tls", "the TLS handshake"), result.error
    assert (
        "agreed to STARTTLS (220 go ahead) and then spoke plain text: '250 2.0.0 injected\\r\\n'"
        in result.error["message"]
    )
    assert result.tls_failure == "agreed to STARTTLS (220 go ahead), then spoke plain text"


@pytest.mark.timeout(10)
def test_implicit_probe_of_a_dripped_handshake_ends_at_its_timeout() -> None:
    def script(conn: socket.socket) -> None:
        conn.recv(65536)  # the ClientHello
        conn.sendall(b"\x16\x03\x03\x40\x00")
        while not server.stopped.wait(0.05):
            conn.sendall(b"\x00")

    with RawServer(script) as server:
        started = time.monotonic()
        with pytest.raises(Exception) as info:
            probe("127.0.0.1", server.port, mode="implicit", timeout=0.5)
        took = time.monotonic() - started
    assert getattr(info.value, "exit_code", None) == 4 and "timed out during" in str(info.value)
    assert took < 0.5 + 2
