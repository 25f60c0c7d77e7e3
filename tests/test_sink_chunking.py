"""The sink's CHUNKING (BDAT, RFC 3030) and its grouped replies to pipelined commands (RFC 2920)."""

from __future__ import annotations

import socket

import pytest

from jcsh.runtime.mail.message import MailRequest
from jcsh.runtime.mail.send import MailSession
from jcsh.runtime.mail.settings import load_settings
from jcsh.runtime.sink import STALL, Sink, SinkConfig
from tests.support.mailconf import configure_mail

TO, BAD = "rcpt@example.test", "bad@example.test"
MESSAGE = b"From: a@example.test\r\nTo: rcpt@example.test\r\nSubject: chunked\r\n\r\n.dot first\r\nbody\r\n"


class Client:
    """A raw SMTP client on a plain socket: what is sent is exactly what the test writes."""

    def __init__(self, sink: Sink) -> None:
        self.sock = socket.create_connection((sink.host, sink.port), timeout=5)
        self.buf = b""
        assert self.reply().startswith(b"220")
        self.sock.sendall(b"EHLO client.example.test\r\n")
        self.ehlo = self.reply()

    def recv(self) -> bytes:
        """Whatever the next recv gives (at least one byte), kept for reply()."""
        data = self.sock.recv(65536)
        self.buf += data
        return data

    def reply(self) -> bytes:
        """One whole reply (every line)."""
        while True:
            lines = self.buf.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if line[3:4] == b" ":
                    self.buf = b"\r\n".join(lines[i + 1 :])
                    return b"\r\n".join(lines[: i + 1])
            if not self.recv():
                raise EOFError(self.buf)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.timeout(15)
def test_chunking_is_offered_only_when_asked() -> None:
    with Sink(SinkConfig(port=0)) as plain, Sink(SinkConfig(port=0, chunking=True)) as chunking:
        without, with_ = Client(plain), Client(chunking)
        without.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\nBDAT 3 LAST\r\n")
        replies = [without.reply(), without.reply(), without.reply()]
        without.close()
        with_.close()
    assert b"CHUNKING" not in without.ehlo and b"250-CHUNKING" in with_.ehlo
    assert replies[2].startswith(b'500 Error: command "BDAT" not recognized')


@pytest.mark.timeout(15)
def test_bdat_chunks_make_one_message_and_the_session_goes_on() -> None:
    with Sink(SinkConfig(port=0, chunking=True)) as sink:
        client = Client(sink)
        head, tail = MESSAGE[:20], MESSAGE[20:]
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\n")
        client.send(b"BDAT %d\r\n%s" % (len(head), head))
        client.send(b"BDAT %d LAST\r\n%s" % (len(tail), tail))
        replies = [client.reply() for _ in range(4)]
        client.send(b"BDAT 0 LAST\r\n")  # no transaction: refused, and the next command is read where it starts
        refused = client.reply()
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\nBDAT 0 LAST\r\n")
        empty = [client.reply() for _ in range(3)]
        client.close()
        first, second = sink.wait_for(2)
    assert [r[:3] for r in replies] == [b"250"] * 4 and replies[2] == b"250 2.0.0 20 octets"
    assert replies[3].startswith(b"250 OK: queued as ")
    assert first.content == MESSAGE and first.rcpt_tos == [TO] and first.subject == "chunked"  # no dot-stuffing
    assert refused.startswith(b"503 ") and [r[:3] for r in empty] == [b"250"] * 3 and second.content == b""


@pytest.mark.timeout(15)
def test_bdat_without_a_recipient_reads_its_chunk_and_refuses() -> None:
    with Sink(SinkConfig(port=0, chunking=True)) as sink:
        client = Client(sink)
        client.send(b"MAIL FROM:<a@example.test>\r\nBDAT 12 LAST\r\nNOOP\r\nNOOP\r\nNOOP\r\n")
        replies = [client.reply() for _ in range(3)]
        client.close()
    assert replies[0].startswith(b"250") and replies[1] == b"503 5.5.1 Error: need RCPT command"
    assert replies[2].startswith(b"250")  # the NOOP after the 12-octet chunk, read as a command
    assert sink.messages == []


@pytest.mark.timeout(15)
@pytest.mark.parametrize("command", [b"BDAT", b"BDAT x LAST", b"BDAT 3 FIRST", b"BDAT 3 LAST now"])
def test_bdat_syntax_error_closes_the_connection(command: bytes) -> None:
    with Sink(SinkConfig(port=0, chunking=True)) as sink:
        client = Client(sink)
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\n" + command + b"\r\nabc")
        replies = [client.reply() for _ in range(3)]
        assert client.sock.recv(100) == b""  # closed: where the chunk ends is unknown
        client.close()
    assert replies[2].startswith(b"501 5.5.4 Syntax: BDAT size [LAST]") and sink.messages == []


@pytest.mark.timeout(15)
def test_bdat_over_the_size_limit_is_refused() -> None:
    with Sink(SinkConfig(port=0, chunking=True, size_limit=10)) as sink:
        client = Client(sink)
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\nBDAT 8\r\n12345678")
        client.send(b"BDAT 8 LAST\r\n12345678RSET\r\n")
        replies = [client.reply() for _ in range(5)]
        client.close()
    assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"552", b"250"] and sink.messages == []


@pytest.mark.timeout(15)
def test_bdat_goes_through_the_data_fault() -> None:
    with Sink(SinkConfig(port=0, chunking=True, fail={"data": 554})) as sink:
        client = Client(sink)
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\nBDAT 3 LAST\r\nabc")
        replies = [client.reply() for _ in range(3)]
        client.close()
    assert replies[2] == b"554 jcsh sink: failing data as asked" and sink.messages == []


@pytest.mark.timeout(15)
def test_replies_to_a_pipelined_group_come_in_one_piece() -> None:
    with Sink(SinkConfig(port=0)) as sink:
        client = Client(sink)
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\nDATA\r\n")
        first = client.recv()  # the server wrote the three replies at once: one recv gets them all
        client.buf = b""
        client.send(b"Subject: x\r\n\r\nbody\r\n.\r\nNOOP\r\n")
        final, noop = client.reply(), client.reply()
        client.close()
    assert (
        first.count(b"\r\n") == 3
        and first.startswith(b"250 ")
        and first.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    )
    assert final.startswith(b"250 OK: queued as ") and noop.startswith(b"250 ")


@pytest.mark.timeout(15)
def test_a_reply_held_for_the_group_is_sent_before_a_stall() -> None:
    with Sink(SinkConfig(port=0, fail={"rcpt": STALL})) as sink:
        client = Client(sink)
        client.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<rcpt@example.test>\r\n")
        mail = client.reply()
        client.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.reply()
        client.close()
    assert mail.startswith(b"250 ")


@pytest.mark.timeout(15)
def test_jcsh_sends_through_bdat_when_the_sink_offers_it(registry, credentials) -> None:
    with Sink(SinkConfig(port=0, chunking=True, fail={f"rcpt:{BAD}": 550})) as sink:
        configure_mail(registry, sink.port)
        with MailSession(load_settings(registry, credentials), credentials, transcript=True) as session:
            sent = session.send(MailRequest(to=[TO], subject="chunked", body=".dot first"))
            refused = session.send(MailRequest(to=[BAD]))
            again = session.send(MailRequest(to=[TO]))
        first, second = sink.wait_for(2)
    lines = sent.transcript or []
    mail = next(i for i, line in enumerate(lines) if line.startswith("-> MAIL"))
    assert lines[mail + 1].startswith("-> RCPT") and lines[mail + 2].startswith("-> BDAT ")
    assert lines[mail + 2].endswith(" LAST") and lines[mail + 3].startswith("-> [message chunk: ")
    assert sent.status == again.status == "sent" and refused.status == "failed"
    assert refused.refused[BAD].startswith("550 ") and "503" not in (refused.error or {}).get("message", "")
    assert first.subject == "chunked" and first.message().get_content() == ".dot first\r\n"
    assert second.message()["Message-ID"] == again.message_id
