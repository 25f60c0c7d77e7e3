"""What a plain message needs without importing `email`: its Date, its Message-ID, a bare addr-spec."""

from __future__ import annotations

import datetime
import os
import time

__all__ = ["PlainAddress", "plain_address", "localtime", "format_datetime", "make_msgid"]

# email.utils and email.policy cost ~55 M instructions to import (a sixth of `jcsh testmail`): the
# Date and Message-ID of a test mail and a plain recipient need none of it. These write exactly
# what email.utils writes for the calls message.py makes; tests/test_mail_plain.py holds them equal.

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# A bare addr-spec of dot-atoms in this conservative alphabet is read by email.headerregistry as
# itself, without defects, and email.utils.parseaddr agrees (message.py's and values.py's plain path).
# Checked with sets, not a regular expression: compiling one costs ~1.2 M instructions at import.
_ASCII_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_LOCAL_CHARS = frozenset(_ASCII_ALNUM + "_+-.")
_DOMAIN_CHARS = frozenset(_ASCII_ALNUM + "-.")


class PlainAddress:
    """A bare addr-spec, with the attributes of email.headerregistry.Address that jcsh reads.

    Not a tuple: the email package takes an iterable header value for a list of addresses.
    """

    __slots__ = ("addr_spec", "display_name", "domain", "username")

    def __init__(self, username: str, domain: str) -> None:
        self.display_name = ""
        self.username, self.domain = username, domain
        self.addr_spec = f"{username}@{domain}"

    def __str__(self) -> str:  # as Address shows a mailbox without a display name
        return self.addr_spec

    def __repr__(self) -> str:
        return f"PlainAddress({self.addr_spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainAddress) and other.addr_spec == self.addr_spec

    def __hash__(self) -> int:
        return hash(self.addr_spec)


def plain_address(text: str) -> PlainAddress | None:
    """`local@domain` of dot-atoms as the header registry reads it; None for anything else."""
    local, at, domain = text.partition("@")  # a second "@" is not in the domain's alphabet
    if at and _dot_atoms(local, _LOCAL_CHARS) and _dot_atoms(domain, _DOMAIN_CHARS):
        return PlainAddress(local, domain)
    return None


def _dot_atoms(text: str, chars: frozenset[str]) -> bool:
    """Non-empty atoms of these characters joined by single dots (no dot first, last or doubled)."""
    return chars.issuperset(text) and "" not in text.split(".")


def localtime() -> datetime.datetime:
    """Now, as an aware datetime in the local zone (email.utils.localtime() without arguments)."""
    return datetime.datetime.now(datetime.UTC).astimezone()


def format_datetime(dt: datetime.datetime) -> str:
    """The RFC 5322 date email.utils.format_datetime(dt) writes (an aware dt; a naive one gets -0000)."""
    t = dt.timetuple()
    zone = dt.strftime("%z") if dt.tzinfo is not None else "-0000"
    return f"{_DAYS[t[6]]}, {t[2]:02d} {_MONTHS[t[1] - 1]} {t[0]:04d} {t[3]:02d}:{t[4]:02d}:{t[5]:02d} {zone}"


def make_msgid(*, domain: str) -> str:
    """`<centiseconds.pid.random@domain>` as email.utils.make_msgid(domain=...) writes it.

    The 64 random bits come from os.urandom rather than the random module (not imported for this).
    """
    return f"<{int(time.time() * 100)}.{os.getpid()}.{int.from_bytes(os.urandom(8), 'big')}@{domain}>"
