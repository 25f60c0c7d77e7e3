"""SASL mechanisms the AUTH step drives, one factory per mechanism named `auth_<mech>` (as smtplib's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Mechanism", "auth_plain", "auth_login", "mechanism"]


class Mechanism(Protocol):
    """A SASL mechanism as the AUTH step drives it (runtime/mail/wire.py: Wire.authenticate)."""

    name: str

    def initial_response(self) -> bytes | None:
        """What goes on the AUTH line (None: wait for the server's first challenge)."""
        ...

    def respond(self, challenge: bytes) -> bytes:
        """The answer to one 334 challenge (already base64-decoded)."""
        ...


class _Password:
    """A mechanism that sends a user name and a password (never in its repr)."""

    name = ""
    __slots__ = ("_password", "_user")

    def __init__(self, user: str, password: str) -> None:
        self._user, self._password = user.encode("utf-8"), password.encode("utf-8")

    def __repr__(self) -> str:
        return f"<SASL {self.name}>"


class _Plain(_Password):
    """RFC 4616: the whole login in the initial response."""

    name = "PLAIN"
    __slots__ = ()

    def initial_response(self) -> bytes | None:
        return b"\0" + self._user + b"\0" + self._password

    def respond(self, challenge: bytes) -> bytes:
        return b"\0" + self._user + b"\0" + self._password  # a server that ignored the initial response


class _Login(_Password):
    """The LOGIN mechanism: the user name first, then the password for the next challenge."""

    name = "LOGIN"
    __slots__ = ()

    def initial_response(self) -> bytes | None:
        return self._user

    def respond(self, challenge: bytes) -> bytes:
        return self._user if challenge.strip().lower().startswith(b"user") else self._password


def auth_plain(user: str, password: str) -> Mechanism:
    return _Plain(user, password)


def auth_login(user: str, password: str) -> Mechanism:
    return _Login(user, password)


def mechanism(name: str) -> Callable[[str, str], Mechanism] | None:
    """The factory of a mechanism by its SASL name ("PLAIN" -> auth_plain), or None."""
    found = globals().get("auth_" + name.lower().replace("-", "_"))
    return found if callable(found) else None
