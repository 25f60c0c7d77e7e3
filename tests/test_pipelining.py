"""PIPELINING (RFC 2920) and CHUNKING (RFC 3030): commands grouped as allowed, every reply checked in order."""

from __future__ import annotations

import pytest

from jcsh.runtime.mail.message import MailRequest
from jcsh.runtime.mail.send import MailSession, send_mail
from jcsh.runtime.mail.settings import load_settings
from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.smtp.wire import Wire
from tests.support.mailconf import configure_mail
from tests.support.pipelined import Pipelined

TO, BAD, CC = "rcpt@example.test", "bad@example.test", "cc@example.test"
FAST = {"mail.smtp.connectiontimeout": "2000", "mail.smtp.timeout": "2000"}
MAIL = "MAIL FROM:<jcsh@example.test> SIZE="


def _send(registry, credentials, server, request: MailRequest, partial: bool = False, transcript: bool = False):
    configure_mail(registry, server.port, SendPartial=str(partial).lower(), **FAST)
    return send_mail(load_settings(registry, credentials), credentials, request, transcript=transcript)


def _shape(group: list[str]) -> list[str]:
    """MAIL/RCPT/DATA/BDAT as verbs (RCPT with its address): what a group looks like."""
    return [c if c.startswith(("RCPT", "RSET", "QUIT")) else c.split()[0] for c in group]


def _transaction(server: Pipelined) -> list[list[str]]:
    return [_shape(g) for g in server.groups if not g[0].startswith(("EHLO", "QUIT"))]


# -- raw server: how the commands arrive -----------------------------------------------------------


@pytest.mark.timeout(15)
def test_one_recipient_sends_mail_rcpt_and_data_in_one_write(registry, credentials) -> None:
    with Pipelined() as server:
        result = _send(registry, credentials, server, MailRequest(to=[TO], body=".starts with a dot"))
    assert (result.status, result.final_reply) == ("sent", "250 2.0.0 queued as PIPE1")
    assert _transaction(server)[0] == ["MAIL", f"RCPT TO:<{TO}>", "DATA"]
    assert b"\r\n.starts with a dot" in server.messages[0]  # dot-stuffed on the wire, unstuffed here


@pytest.mark.timeout(15)
def test_chunking_sends_the_whole_message_in_the_first_write(registry, credentials) -> None:
    with Pipelined(chunking=True) as server:
        result = _send(registry, credentials, server, MailRequest(to=[TO], body=".dot\r\n.\r\nend"), transcript=True)
    [group] = _transaction(server)
    assert group == ["MAIL", f"RCPT TO:<{TO}>", "BDAT"]
    assert server.groups[1][2].endswith(" LAST")
    assert result.status == "sent" and result.final_reply == "250 2.0.0 queued as PIPE1"
    assert b"\r\n.dot\r\n.\r\nend" in server.messages[0]  # no dot-stuffing with BDAT
    assert server.chunks == [len(server.messages[0])]
    lines = result.transcript or []
    assert any(line.startswith("-> [message chunk: ") for line in lines) and "-> ." not in lines


@pytest.mark.timeout(15)
@pytest.mark.parametrize("chunking", [False, True])
def test_send_partial_false_waits_for_the_rcpt_replies_before_the_message(registry, credentials, chunking) -> None:
    with Pipelined(chunking=chunking, rcpt={BAD: b"550 5.1.1 no such user"}) as server:
        result = _send(registry, credentials, server, MailRequest(to=[TO, BAD]), partial=False)
    groups = _transaction(server)
    assert groups[0] == ["MAIL", f"RCPT TO:<{TO}>", f"RCPT TO:<{BAD}>"]
    assert not any(c.startswith(("DATA", "BDAT")) for g in groups for c in g) and server.messages == []
    assert (result.status, result.exit_code) == ("failed", 1)
    assert result.refused == {BAD: "550 5.1.1 no such user"} and "SendPartial is false" in result.error["message"]


@pytest.mark.timeout(15)
@pytest.mark.parametrize("chunking", [False, True])
def test_send_partial_true_sends_everything_at_once(registry, credentials, chunking) -> None:
    with Pipelined(chunking=chunking, rcpt={BAD: b"550 5.1.1 no such user"}) as server:
        result = _send(registry, credentials, server, MailRequest(to=[TO, BAD], cc=[CC]), partial=True)
    assert _transaction(server)[0][:4] == ["MAIL", f"RCPT TO:<{TO}>", f"RCPT TO:<{BAD}>", f"RCPT TO:<{CC}>"]
    assert _transaction(server)[0][4] == ("BDAT" if chunking else "DATA")
    assert (result.status, result.exit_code, result.accepted) == ("partial", 1, [TO, CC])
    assert result.refused == {BAD: "550 5.1.1 no such user"} and len(server.messages) == 1


@pytest.mark.timeout(15)
@pytest.mark.parametrize("chunking", [False, True])
def test_every_recipient_refused_the_data_reply_is_not_the_verdict(registry, credentials, chunking) -> None:
    with Pipelined(chunking=chunking, rcpt={BAD: b"550 5.1.1 no such user"}) as server:
        result = _send(registry, credentials, server, MailRequest(to=[BAD]))
    assert (result.status, result.exit_code) == ("failed", 1) and server.messages == []
    assert result.refused == {BAD: "550 5.1.1 no such user"}
    assert "nothing was sent" in result.error["message"]
    assert "554" not in result.error["message"] and "503" not in result.error["message"]
    assert result.final_reply is None


@pytest.mark.timeout(15)
@pytest.mark.parametrize("chunking", [False, True])
def test_refused_mail_from_reads_the_owed_replies_and_the_session_goes_on(registry, credentials, chunking) -> None:
    with Pipelined(chunking=chunking, mail=b"550 5.7.1 sender refused") as server:
        configure_mail(registry, server.port, **FAST)
        with MailSession(load_settings(registry, credentials), credentials, transcript=True) as session:
            first = session.send(MailRequest(to=[TO]))
            server.mail_reply = b"250 2.1.0 ok"
            second = session.send(MailRequest(to=[TO]))
    assert (first.status, first.exit_code, first.step) == ("failed", 1, "MAIL FROM")
    assert "550 5.7.1 sender refused" in first.error["message"] and "503" not in first.error["message"]
    assert "-> RSET" in (first.transcript or [])
    assert second.status == "sent" and len(server.messages) == 1
    assert not any(line.startswith("-- connecting") for line in second.transcript or [])


@pytest.mark.timeout(15)
@pytest.mark.parametrize("chunking", [False, True])
def test_421_in_the_middle_of_a_group(registry, credentials, chunking) -> None:
    with Pipelined(chunking=chunking, rcpt={BAD: b"421 4.3.2 shutting down"}) as server:
        result = _send(registry, credentials, server, MailRequest(to=[TO, BAD, CC]), partial=True)
    assert _transaction(server)[0][:4] == ["MAIL", f"RCPT TO:<{TO}>", f"RCPT TO:<{BAD}>", f"RCPT TO:<{CC}>"]
    assert (result.status, result.exit_code) == ("failed", 75) and server.messages == []
    assert result.refused == {BAD: "421 4.3.2 shutting down", CC: "not tried: the server closed the connection"}
    assert "the server closed the connection, so nothing was sent" in result.error["message"]


@pytest.mark.timeout(20)
def test_bdat_message_an_exact_multiple_of_the_chunk_size(registry, credentials, monkeypatch) -> None:
    import jcsh.runtime.mail.send as send_module

    monkeypatch.setattr(send_module, "BDAT_CHUNK", 1)  # every size is a multiple of 1: one byte a chunk
    with Pipelined(chunking=True) as server:
        result = _send(registry, credentials, server, MailRequest(to=[TO], body="x"))
    [message] = server.messages
    assert result.status == "sent" and server.chunks == [1] * len(message)  # never an empty BDAT 0 LAST
    bdats = [c for g in server.groups for c in g if c.startswith("BDAT")]
    assert bdats[-1] == "BDAT 1 LAST" and bdats[:-1] == ["BDAT 1"] * (len(message) - 1)
    assert result.final_reply == "250 2.0.0 queued as PIPE1"


def test_bdat_split() -> None:
    assert Wire.bdat(b"abcdefgh", 4) == ["BDAT 4", b"abcd", "BDAT 4 LAST", b"efgh"]
    assert Wire.bdat(b"abcdefghi", 4)[-2:] == ["BDAT 1 LAST", b"i"]
    assert Wire.bdat(b"", 4) == ["BDAT 0 LAST", b""]


@pytest.mark.timeout(20)
def test_a_refused_chunk_is_the_verdict(registry, credentials, monkeypatch) -> None:
    import jcsh.runtime.mail.send as send_module

    class Refusing(Pipelined):
        def _answer(self, conn, command, data):  # the second chunk is refused
            if command.startswith("BDAT") and len(self.chunks) == 1:
                self.chunks.append(len(data))
                conn.sendall(b"552 5.3.4 chunk too big\r\n")
                return True
            return super()._answer(conn, command, data)

    monkeypatch.setattr(send_module, "BDAT_CHUNK", 64)
    with Refusing(chunking=True) as server:
        result = _send(registry, credentials, server, MailRequest(to=[TO], body="y" * 200))
    assert (result.status, result.exit_code) == ("failed", 1) and "552 5.3.4 chunk too big" in result.error["message"]


@pytest.mark.timeout(15)
def test_no_pipelining_offered_gets_one_command_at_a_time(registry, credentials) -> None:
    with Sink(SinkConfig(port=0, pipelining=False)) as sink:
        configure_mail(registry, sink.port)
        result = send_mail(load_settings(registry, credentials), credentials, MailRequest(to=[TO]), transcript=True)
        sink.wait_for(1)
    lines = [line for line in result.transcript or [] if not line.startswith("--")]
    mail = next(i for i, line in enumerate(lines) if line.startswith("-> MAIL"))
    assert lines[mail + 1].startswith("<- 250") and lines[mail + 2] == f"-> RCPT TO:<{TO}>"


# -- aiosmtpd (the sink offers PIPELINING) ----------------------------------------------------------


@pytest.mark.timeout(15)
def test_aiosmtpd_pipelined_batch_with_a_refused_recipient(registry, credentials) -> None:
    with Sink(SinkConfig(port=0, fail={f"rcpt:{BAD}": 550})) as sink:
        configure_mail(registry, sink.port)
        with MailSession(load_settings(registry, credentials), credentials, transcript=True) as session:
            first = session.send(MailRequest(to=[TO]))
            refused = session.send(MailRequest(to=[BAD]))
            third = session.send(MailRequest(to=[TO, CC]))
        got = sink.wait_for(2)
    lines = first.transcript or []
    mail = next(i for i, line in enumerate(lines) if line.startswith("-> MAIL"))
    assert lines[mail + 1 : mail + 3] == [f"-> RCPT TO:<{TO}>", "-> DATA"]  # one write, then the replies
    assert first.status == third.status == "sent" and [m.rcpt_tos for m in got] == [[TO], [TO, CC]]
    assert refused.status == "failed" and refused.refused[BAD].startswith("550 ")
    assert "503" not in refused.error["message"]


@pytest.mark.timeout(15)
def test_aiosmtpd_421_in_the_middle_of_a_group(registry, credentials) -> None:
    with Sink(SinkConfig(port=0, fail={f"rcpt:{BAD}": 421})) as sink:
        configure_mail(registry, sink.port, SendPartial="true", **FAST)
        with MailSession(load_settings(registry, credentials), credentials) as session:
            cut = session.send(MailRequest(to=[TO, BAD, CC]))
            after = session.send(MailRequest(to=[TO]))  # a fresh connection carries the next one
        [got] = sink.wait_for(1)
    assert (cut.status, cut.exit_code) == ("failed", 75)
    assert cut.refused == {
        BAD: f"421 jcsh sink: failing rcpt:{BAD} as asked",
        CC: "not tried: the server closed the connection",
    }
    assert after.status == "sent" and got.rcpt_tos == [TO] and got.message()["Message-ID"] == after.message_id
