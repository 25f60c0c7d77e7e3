"""The plain composer writes the bytes the email package writes (policy SMTP), and leaves it the rest."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, assume, event, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from jcsh.runtime.errors import UsageError
from jcsh.runtime.mail.message import BuiltMessage, MailRequest, build_message, parse_address
from jcsh.runtime.mail.settings import load_settings
from tests.support.mailconf import configure_mail

ATEXT = "abcxyzABZ0189!#$%&'*+/=?^_`{|}~-"
TRICKY = ' ."()<>,;:@[]\\\t=éß✓'
LOCAL = st.text(ATEXT + ".", min_size=1, max_size=20)
DOMAIN = st.one_of(
    st.lists(st.text("abz09-", min_size=1, max_size=15), min_size=1, max_size=4).map(".".join),
    st.sampled_from(["[127.0.0.1]", "bücher.example", "example.test"]),
)
NAME = st.one_of(st.just(""), st.text(ATEXT + " " + TRICKY, max_size=30))
HEADER_TEXT = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
    st.text(ATEXT + TRICKY + " ", max_size=80),
)
TEXT_NAMES = ["X-Ticket", "Keywords", "Comments", "X-A-Rather-Long-Header-Name"]
ADDRESS_NAMES = ["Reply-To", "Sender", "Resent-To"]  # the email package parses these (and fails on junk)
BODY = st.lists(st.sampled_from([*"ab .xyz09\r\n\t\x0b\x0c\x1c\u2028é", "\r\n", "a" * 40]), max_size=60).map("".join)


@st.composite
def mailboxes(draw: st.DrawFn) -> str:
    """A mailbox as a script writes it: addr-spec, or a display name (quoted or not) and <addr-spec>."""
    address = f"{draw(LOCAL)}@{draw(DOMAIN)}"
    name = draw(NAME)
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>' if draw(st.booleans()) else f"{name} <{address}>"


def _settings(tmp_path_factory: pytest.TempPathFactory):
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import open_registry

    home = tmp_path_factory.mktemp("home")
    registry = open_registry(home)
    configure_mail(registry, 2525)
    return load_settings(registry, CredentialStore(registry, home))


@pytest.fixture(scope="module")
def mail_settings(tmp_path_factory: pytest.TempPathFactory):
    return _settings(tmp_path_factory)


def email_package_bytes(request: MailRequest, built: BuiltMessage) -> bytes:
    """What build_message's email-package path writes for the request, with the built Date and Message-ID."""
    raw = built.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8").split("\r\n")
    date = next(line[6:] for line in head if line.startswith("Date: "))
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = parse_address(request.from_ or "jcsh@example.test")[0]
    if request.to:
        msg["To"] = [parse_address(t)[0] for t in request.to]
    if request.cc:
        msg["Cc"] = [parse_address(t)[0] for t in request.cc]
    msg["Subject"] = request.subject or ""
    msg["Date"] = date
    msg["Message-ID"] = built.message_id
    for name, value in (request.headers or {}).items():
        msg[name] = value
    msg.set_content(request.body or "")
    return msg.as_bytes(policy=policy.SMTPUTF8 if built.smtputf8 else policy.SMTP)


def _build(mail_settings, request: MailRequest) -> BuiltMessage:
    try:
        return build_message(mail_settings, request)
    except UsageError:
        assume(False)
        raise


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sender=mailboxes(),
    to=st.lists(mailboxes(), min_size=1, max_size=3),
    cc=st.lists(mailboxes(), max_size=2),
    subject=st.one_of(st.none(), HEADER_TEXT),
    extra=st.dictionaries(st.sampled_from(TEXT_NAMES), HEADER_TEXT, max_size=2)
    | st.dictionaries(st.sampled_from(ADDRESS_NAMES), st.sampled_from(["x@example.test", "A <a@b.test>"]), max_size=1),
    body=st.one_of(st.none(), BODY),
)
@example(sender="a@example.test", to=["b@example.test"], cc=[], subject="", extra={}, body="")
@example(sender="a@example.test", to=["b@example.test"], cc=[], subject="x" * 69, extra={}, body="y" * 78)
@example(sender="a@example.test", to=["b@example.test"], cc=[], subject="x" * 70, extra={}, body="y" * 79)
@example(sender="a@example.test", to=["b@example.test"], cc=[], subject="=?utf-8?q?x?=", extra={}, body=".\n.\r")
@example(sender="Ann Lee <a@b.test>", to=["b@example.test"], cc=[], subject="  ", extra={"X-Ticket": ""}, body=None)
def test_every_message_is_what_the_email_package_writes(
    mail_settings,
    sender: str,
    to: list[str],
    cc: list[str],
    subject: str | None,
    extra: dict[str, str],
    body: str | None,
) -> None:
    request = MailRequest(to=to, cc=cc, from_=sender, subject=subject, body=body, headers=extra)
    built = _build(mail_settings, request)
    event("plain composer" if isinstance(built.message, bytes) else "email package")
    assert built.as_bytes() == email_package_bytes(request, built)


PLAIN = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="="), min_size=1, max_size=20)


@hsettings(max_examples=100, deadline=None)
@given(
    local=st.text("abcxyz09._-", min_size=1, max_size=10).filter(lambda s: "." not in (s[0], s[-1]) and ".." not in s),
    words=st.lists(PLAIN, max_size=3),  # "Subject: " and at most 3 x 20 + 2 characters: no folding
    body=st.lists(st.text("abc XYZ.09,!", max_size=78), max_size=20).map("\n".join),
)
def test_plain_messages_take_the_plain_composer(mail_settings, local: str, words: list[str], body: str) -> None:
    """Batch-like messages (ASCII, short lines) never build an EmailMessage, and still equal its bytes."""
    request = MailRequest(
        to=[f"{local}@example.test"], from_="Ops Team <ops@example.test>", subject=" ".join(words), body=body
    )
    built = build_message(mail_settings, request)
    assert isinstance(built.message, bytes)
    assert built.as_bytes() == email_package_bytes(request, built)


@pytest.mark.parametrize(
    "request_",
    [
        MailRequest(to=["a@example.test"], subject="Größe"),  # encoded word
        MailRequest(to=["a@example.test"], body="é"),  # 8bit body
        MailRequest(to=["a@example.test"], body="x" * 79),  # quoted-printable body
        MailRequest(to=["a@example.test"], subject="x" * 70),  # folded
        MailRequest(to=["a@example.test"], html="<p>x</p>"),  # multipart
        MailRequest(to=['"a.b" <a@example.test>']),  # quoted display name
        MailRequest(to=["a@example.test"], headers={"Reply-To": "b@example.test"}),  # an address header
    ],
)
def test_the_rest_is_left_to_the_email_package(mail_settings, request_: MailRequest) -> None:
    built = build_message(mail_settings, request_)
    assert isinstance(built.message, EmailMessage)
