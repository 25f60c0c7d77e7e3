"""A peer that is not an SMTP server: say so, with no more of its greeting than identifies it.

A script may aim a connection at any service its grants allow; the error must not hand it that
service's banner (a version string, a token). So at most the first 40 characters are shown,
escaped, whatever the service sent.
"""

from __future__ import annotations

from jcsh.runtime.errors import ConnectFailed, ErrorKind

__all__ = ["not_smtp", "GREETING_SHOWN"]

GREETING_SHOWN = 40


def not_smtp(where: str, greeting: bytes | str) -> ConnectFailed:
    """The error for a greeting that is not SMTP (exit 3, kind "protocol")."""
    text = greeting.decode("utf-8", "replace") if isinstance(greeting, bytes) else greeting
    first = text.split("\n", 1)[0].rstrip("\r")[:GREETING_SHOWN]
    return ConnectFailed(f"{where} is not an SMTP server (protocol error): {first!r}", kind=ErrorKind.PROTOCOL)
