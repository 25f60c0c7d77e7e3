"""Parsers for mail configuration values; each raises ValueError with the reason in words."""

from __future__ import annotations

import ipaddress
import re

from jcsh.runtime.hosts import bare_host
from jcsh.runtime.mail.plain import plain_address
from jcsh.runtime.records import NamedTuple

__all__ = [
    "Address",
    "parse_address",
    "parse_bool",
    "parse_choice",
    "parse_host",
    "parse_millis",
    "parse_port",
    "parse_protocols",
    "TLS_PROTOCOLS",
    "MAX_MILLIS",
]

TLS_PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
MAX_MILLIS = 86_400_000  # one day: anything longer is an infinite wait in practice
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def parse_bool(text: str) -> bool:
    """true/false in any case (surrounding spaces ignored)."""
    word = text.strip().lower()
    if word == "true":
        return True
    if word == "false":
        return False
    raise ValueError("is not a boolean (true or false)")


def parse_port(text: str) -> int:
    """A TCP port, 1-65535."""
    word = text.strip()
    if not word.isdigit() or not 1 <= int(word) <= 65535:
        raise ValueError("is not a port number (1-65535)")
    return int(word)


def parse_millis(text: str) -> int:
    """A positive timeout in milliseconds, at most one day (0 or negative would mean 'wait forever')."""
    word = text.strip()
    if word.lstrip("-").isdigit() and int(word) <= 0:
        raise ValueError("would wait forever; give a positive number of milliseconds")
    if not word.isdigit():
        raise ValueError("is not a number of milliseconds")
    if int(word) > MAX_MILLIS:
        raise ValueError(f"is more than a day; the limit is {MAX_MILLIS} ms")
    return int(word)


def parse_choice(text: str, choices: tuple[str, ...]) -> str:
    """One of choices, matched in any case; returns the canonical spelling."""
    word = text.strip()
    for choice in choices:
        if word.lower() == choice.lower():
            return choice
    raise ValueError("is not one of " + ", ".join(choices))


def parse_protocols(text: str) -> tuple[str, ...]:
    """A space-separated list of TLS protocol names (TLSv1 ... TLSv1.3), canonical spelling."""
    names = []
    for word in text.replace(",", " ").split():
        try:
            names.append(parse_choice(word, TLS_PROTOCOLS))
        except ValueError:
            raise ValueError(f"names {word!r}, which is not one of " + " ".join(TLS_PROTOCOLS)) from None
    return tuple(dict.fromkeys(names))


def parse_host(text: str) -> str:
    """A host name, IPv4 address or IPv6 address (bare or in brackets), returned as given."""
    if text != text.strip():
        raise ValueError("has leading or trailing spaces")
    if not text:
        raise ValueError("is empty")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("contains a space or a control character")
    inner = bare_host(text)
    if ":" in inner:
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError("is not a host name (give the port in the Port setting, not after a colon)") from None
        return text
    if inner != text:
        raise ValueError("has brackets, which only an IPv6 address takes")
    try:  # the idna codec (and its import) only for a name that needs it
        name = inner.rstrip(".")
        ascii_name = name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("is not a valid host name") from None
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in ascii_name.split(".")):
        raise ValueError("is not a valid host name")
    return text


class Address(NamedTuple):
    """One parsed mailbox: display name, addr-spec, domain, and its canonical header form."""

    display_name: str
    addr_spec: str
    domain: str
    formatted: str


def parse_address(text: str) -> Address:
    """Exactly one mailbox (`a@b.example` or `Name <a@b.example>`), as email.headerregistry reads it."""
    plain = plain_address(text)
    if plain is not None:  # it reads as itself (parseaddr agrees): no need to import email (~6-10 ms)
        return Address("", text, plain.domain, text)
    return _parse_address(text)


def _parse_address(text: str) -> Address:
    from email import policy
    from email.utils import parseaddr

    if any(c in text for c in "\r\n\x00"):
        raise ValueError("contains a line break or NUL")
    if not text.strip():
        raise ValueError("is empty")
    try:
        header = policy.default.header_factory("From", text)
        addresses = header.addresses
        defects = header.defects
    except (IndexError, ValueError, TypeError):  # the parser trips on some inputs such as "x@"
        raise ValueError("is not an e-mail address") from None
    if len(addresses) != 1:
        raise ValueError(f"holds {len(addresses)} addresses; give exactly one")
    if defects:
        raise ValueError(f"is not a valid e-mail address ({str(defects[0]).rstrip('.')})")
    address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError("is not an e-mail address of the form local@domain")
    # A second parser must agree, so that what we store reads back the same everywhere.
    if parseaddr(text)[1] != address.addr_spec:
        raise ValueError("is not an unambiguous e-mail address")
    return Address(address.display_name, address.addr_spec, address.domain, str(address))
