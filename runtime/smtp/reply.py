"""SMTP replies: one whole reply, a line's parse, EHLO features, remote text shown escaped, wire errors."""

from __future__ import annotations

from jcsh.runtime.errors import ConnectFailed, ErrorKind
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.smtp.deadline import StepTimeout

__all__ = [
    "Reply",
    "parse_line",
    "features",
    "shown",
    "ProtocolError",
    "ServerClosed",
    "NotTls",
    "Woken",
    "WIRE_ERRORS",
]


_SHORT_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def shown(data: bytes | bytearray | str, limit: int) -> str:
    """At most `limit` characters of remote text, quoted, each unprintable character escaped (`\\x1b`)."""
    text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
    out = []
    for ch in text[:limit]:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "'" + "".join(out) + ("'..." if len(text) > limit else "'")


class Reply(NamedTuple):
    """One whole reply: its code and the text of each line (after `NNN-` / `NNN `)."""

    code: int
    lines: tuple[str, ...]

    def text(self) -> str:
        """The lines joined into one: "5.1.1 no such user"."""
        return " ".join(line.strip() for line in self.lines if line.strip())

    def __str__(self) -> str:
        return f"{self.code} {self.text()}".rstrip()


def features(ehlo: Reply) -> dict[str, str]:
    """EHLO keywords (lower case) and their parameters, as smtplib's esmtp_features."""
    found: dict[str, str] = {}
    for line in ehlo.lines[1:]:
        word, _, params = line.strip().partition(" ")
        key = word.lower()
        if key.startswith("auth="):  # the pre-RFC form some servers still send
            key, params = "auth", f"{word[5:]} {params}"
        if not key:
            continue
        found[key] = f"{found[key]} {params.strip()}".strip() if key == "auth" and key in found else params.strip()
    return found


def parse_line(raw: bytes) -> tuple[int, bool, str] | None:
    """(code, more lines follow, text) of one reply line; None when it is not one."""
    if len(raw) < 3 or not raw[:3].isdigit() or raw[0] not in b"2345" or raw[3:4] not in (b"", b" ", b"-"):
        return None
    return int(raw[:3]), raw[3:4] == b"-", raw[4:].decode("utf-8", "replace")


class ProtocolError(ConnectFailed):
    """The server broke the protocol: malformed, over-long or out-of-turn replies (exit 3)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=ErrorKind.PROTOCOL)


class ServerClosed(ConnectFailed):
    """The server closed the connection; `reply` is the 421 it said it with, if any (exit 3)."""

    def __init__(self, message: str, *, step: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.step, self.reply = step, reply


class NotTls(ConnectFailed):
    """The peer answered a TLS handshake with something else; `first` is what it sent (exit 3)."""

    def __init__(self, message: str, first: bytes) -> None:
        super().__init__(message, kind=ErrorKind.TLS)
        self.first = first


class Woken(Exception):
    """The caller's wake descriptor became readable: the dialogue was called off."""


# Failures that leave the connection in an unknown state: it is dropped, never reused.
WIRE_ERRORS = (StepTimeout, ProtocolError, ServerClosed, NotTls)
