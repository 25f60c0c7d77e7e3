"""runtime/mail/plain.py writes what email.utils and the header registry give, for what it takes."""

from __future__ import annotations

import datetime
import os
import re
import time
from email import policy, utils
from email.headerregistry import Address
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from jcsh.runtime.mail import message
from jcsh.runtime.mail.plain import PlainAddress, format_datetime, localtime, make_msgid, plain_address

_ZONES = st.builds(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes)), st.integers(-23 * 60 - 59, 23 * 60 + 59)
)


@settings(max_examples=400, deadline=None)
@given(st.datetimes(timezones=st.none() | st.just(datetime.UTC) | _ZONES))
def test_format_datetime_is_email_utils(dt: datetime.datetime) -> None:
    assert format_datetime(dt) == utils.format_datetime(dt)


def test_localtime_is_email_utils_localtime() -> None:
    mine, theirs = localtime(), utils.localtime()
    assert mine.tzinfo is not None and mine.utcoffset() == theirs.utcoffset()
    assert abs((theirs - mine).total_seconds()) < 5
    assert format_datetime(mine)[-5:] == utils.format_datetime(theirs)[-5:]


def test_make_msgid_has_email_utils_shape() -> None:
    shape = re.compile(r"<(\d+)\.(\d+)\.(\d+)@example\.test>\Z")
    before = int(time.time() * 100)
    ids = {make_msgid(domain="example.test") for _ in range(200)}
    after = int(time.time() * 100)
    assert len(ids) == 200  # 64 random bits each
    for got in [*ids, utils.make_msgid(domain="example.test")]:
        found = shape.match(got)
        assert found, got
        assert int(found.group(2)) == os.getpid()
    for got in ids:
        stamp, _, rand = shape.match(got).group(1, 2, 3)
        assert before <= int(stamp) <= after and int(rand) < 2**64


# Addresses built from the characters that matter to the parser: atext, specials, dots, spaces.
_TEXT = st.text(alphabet='aZ09_+-.@ <>"(),;:[]\\!#é', min_size=1, max_size=20)
_DOTTED = st.from_regex(
    r"[A-Za-z0-9_+-]{1,5}(\.[A-Za-z0-9_+-]{1,5}){0,2}@[A-Za-z0-9-]{1,5}(\.[A-Za-z0-9-]{1,5}){0,2}", fullmatch=True
)


@settings(max_examples=1500, deadline=None)
@given(_TEXT | _DOTTED)
def test_plain_address_reads_as_the_header_registry_reads_it(text: str) -> None:
    plain = plain_address(text)
    if plain is None:
        return
    header = policy.SMTP.header_factory("To", text)
    assert not header.defects and len(header.addresses) == 1 and header.groups[0].display_name is None
    address = header.addresses[0]
    assert (plain.display_name, plain.username, plain.domain, plain.addr_spec) == (
        address.display_name,
        address.username,
        address.domain,
        address.addr_spec,
    )
    assert str(plain) == str(address) == text


# The language plain_address takes, written as the regular expression it replaced (without one at import).
_PLAIN_LANGUAGE = re.compile(r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)")


@settings(max_examples=1500, deadline=None)
@given(_TEXT | _DOTTED | st.text(max_size=12))
def test_plain_address_takes_exactly_dot_atoms_of_its_alphabet(text: str) -> None:
    found = _PLAIN_LANGUAGE.fullmatch(text)
    plain = plain_address(text)
    if plain is None:
        assert found is None
    else:
        assert found is not None and (plain.username, plain.domain) == found.group(1, 2)


def test_plain_address_edges() -> None:
    for text in ("a@b", "a.b+c_d-e@f-g.h", "A9@Z9"):
        assert plain_address(text) is not None, text
    refused = ("", "@", "a@", "@b", "a@@b", "a@b@c", ".a@b", "a.@b", "a..b@c", "a@b.", "a@.b", "a@b_c", "é@b", "a@b\n")
    for text in refused:
        assert plain_address(text) is None, text


@settings(max_examples=300, deadline=None)
@given(_DOTTED)
def test_parse_address_takes_the_plain_path_with_the_same_answer(text: str) -> None:
    got, utf8 = message.parse_address(text)
    assert isinstance(got, PlainAddress) and utf8 is False
    header = policy.SMTP.header_factory("To", text)
    assert got.addr_spec == header.addresses[0].addr_spec and got.domain == header.addresses[0].domain


def test_email_package_writes_a_plain_address_as_it_writes_an_address() -> None:
    def written(to: object, sender: object) -> bytes:
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"], msg["To"], msg["Subject"] = sender, to, "s"
        msg.set_content("body")
        msg.add_alternative("<p>html</p>", subtype="html")
        msg.set_boundary("b")  # random otherwise
        return msg.as_bytes()

    plain = [PlainAddress("ann", "example.test"), PlainAddress("b.c", "d.example.test")]
    real = [Address(addr_spec="ann@example.test"), Address(addr_spec="b.c@d.example.test")]
    assert written(plain, plain[0]) == written(real, real[0])
