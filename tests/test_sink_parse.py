"""The sink's quick reads equal the libraries' own: the Subject (email) and MAIL/RCPT addresses (aiosmtpd)."""

from __future__ import annotations

from email import message_from_bytes, policy

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from jcsh.runtime.sink_config import Received, _plain_subject
from jcsh.runtime.sink_smtp import _SinkSMTP

NAMES = st.sampled_from(["Subject", "subject", "SUBJECT", "From", "To", "X-Subject", "Subject-X", "X", "Bad Name", ""])
VALUE = st.one_of(
    st.text("ab :\t", max_size=20),  # plain
    st.lists(st.sampled_from([*"ab =?:\t\r\n\x00\x7fé", "  ", "=?utf-8?q?x?=", "x" * 30]), max_size=12).map("".join),
)
LINES = st.lists(
    st.one_of(st.tuples(NAMES, VALUE).map(lambda nv: f"{nv[0]}:{nv[1]}"), VALUE.map(lambda v: " " + v)),
    max_size=6,
)


def received(content: bytes) -> Received:
    return Received("a@example.test", ["b@example.test"], content, "TLSv1.3", None, "127.0.0.1:1")


@settings(max_examples=500, deadline=None)
@given(lines=LINES, body=st.binary(max_size=20), end=st.sampled_from(["\r\n\r\n", "\n\n", ""]))
@example(lines=["Subject: batch 5"], body=b"x\r\n", end="\r\n\r\n")
@example(lines=["Subject:", " folded", "\tagain", "To: b"], body=b"", end="\r\n\r\n")
@example(lines=["To: b", "Subject: one", "Subject: two"], body=b"", end="\r\n\r\n")
@example(lines=["Subject: =?utf-8?q?caf=C3=A9?="], body=b"", end="\r\n\r\n")
def test_subject_is_what_the_email_package_gives(lines: list[str], body: bytes, end: str) -> None:
    content = "\r\n".join(lines).encode("utf-8") + end.encode() + body
    plain, _ = _plain_subject(content)
    event("read directly" if plain else "parsed")
    assert received(content).subject == message_from_bytes(content, policy=policy.default)["Subject"]


def test_a_batch_message_is_read_directly() -> None:
    content = (
        b"From: jcsh-bench@example.test\r\nTo: sink@example.test\r\nSubject: batch 5\r\n"
        b"Date: Wed, 02 Dec 2026 13:03:31 +0000\r\nMessage-ID: <1.2.3@example.test>\r\n"
        b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n'
        b"MIME-Version: 1.0\r\n\r\nmessage 5\r\n"
    )
    assert _plain_subject(content) == (True, "batch 5")
    assert _plain_subject(content.replace(b"Subject: batch 5\r\n", b"")) == (True, None)
    assert _plain_subject(content.replace(b"batch 5", b"=?utf-8?q?x?="))[0] is False


class _Limits:
    def __init__(self, limit: int) -> None:
        self.local_part_limit = limit


ADDRESS_ARG = st.lists(
    st.sampled_from([*'<>@.: "\\()[],', "a", "b", "ab.c", "example.test", " SIZE=10", "é", "\t"]), max_size=14
).map("".join)


PATHS = st.builds(
    "<{}@{}>{}".format,
    st.text("ab.!#'/=?^_`{|}~-\"é ", min_size=0, max_size=8) | st.text("ab.!#'/=?^_`{|}~-", min_size=1, max_size=8),
    st.text("ab.-[]1 ", min_size=0, max_size=8) | st.text("ab-.", min_size=1, max_size=8),
    st.sampled_from(["", " SIZE=10", "  X", " (c) X", "x", " \tY", " ", "\t", " A B ", ">", " é"]),
)


@settings(max_examples=800, deadline=None)
@given(arg=ADDRESS_ARG | PATHS, limit=st.sampled_from([0, 2, 64]))
@example(arg="<a@example.test> SIZE=280", limit=0)
@example(arg="a@example.test", limit=0)
@example(arg="<abc@example.test>", limit=2)
@example(arg="<>", limit=0)
@example(arg="", limit=0)
@example(arg="<a@", limit=0)
@example(arg="<a.b@c-d.example> SIZE=10 BODY=8BITMIME", limit=0)
def test_mail_and_rcpt_addresses_parse_as_aiosmtpd_parses_them(arg: str, limit: int) -> None:
    from aiosmtpd.smtp import SMTP

    def outcome(parse):  # the parse, or the exception it raised (both must agree)
        try:
            return parse(_Limits(limit), arg)
        except Exception as e:
            return type(e)

    assert outcome(_SinkSMTP._getaddr) == outcome(SMTP._getaddr)
