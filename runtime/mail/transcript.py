"""The SMTP dialogue as `->`/`<-` lines, with AUTH data redacted, and the smtplib clients that record it."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Any

__all__ = ["Transcript", "RecordingSMTP", "RecordingSMTP_SSL", "ReadTimeout"]

_REDACTED = "<redacted>"


class ReadTimeout(smtplib.SMTPServerDisconnected):
    """The server did not answer (or accept data) within the timeout."""


class Transcript:
    """Lines of one dialogue; redacts everything the client says during AUTH."""

    def __init__(self, enabled: bool, on_line: Callable[[str], None] | None = None) -> None:
        self.enabled = enabled or on_line is not None
        self.lines: list[str] = []
        self.on_line = on_line  # `-v`: told each line as it is recorded (redacted like the rest)
        self._in_auth = False
        self._last_code: int | None = None

    def sent(self, data: bytes | str) -> None:
        if self._last_code == 354:  # the message itself: its size, not its text
            self._last_code = None
            size = len(data)
            self._add(f"-> [message: {size} bytes]")
            self._add("-> .")
            return
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        text = text.rstrip("\r\n")
        if text[:5].upper() == "AUTH ":
            self._in_auth = True
            words = text.split()
            text = " ".join(words[:2] + ([_REDACTED] if len(words) > 2 else []))
        elif self._in_auth:
            text = _REDACTED
        self._add(f"-> {text}")

    def received(self, code: int, message: bytes) -> None:
        self._last_code = code
        if code != 334:
            self._in_auth = False
        lines = message.decode("utf-8", "replace").split("\n") or [""]
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            self._add(f"<- {code}{sep}{line}".rstrip())

    def event(self, text: str) -> None:
        if self.enabled:
            self._add(f"-- {text}")

    def _add(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def take(self) -> list[str]:
        """The lines recorded since the last take."""
        lines, self.lines = self.lines, []
        return lines


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP with separate connect/read/write timeouts and a transcript."""

    _host: str  # smtplib's TLS server_hostname (SNI); it sets it only when __init__ connects

    def __init__(
        self,
        transcript: Transcript,
        *,
        connect_timeout: float,
        read_timeout: float,
        write_timeout: float,
        local_hostname: str,
        **kwargs: Any,
    ) -> None:
        self.transcript = transcript
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        super().__init__(local_hostname=local_hostname, timeout=read_timeout, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((host, port), self.connect_timeout, self.source_address)
        sock.settimeout(self.read_timeout)
        return sock

    def send(self, s: bytes | str) -> None:  # type: ignore[override]
        if self.transcript.enabled:
            self.transcript.sent(s)
        sock = self.sock
        swap = sock is not None and self.write_timeout != self.read_timeout
        if sock is not None and swap:
            sock.settimeout(self.write_timeout)
        try:
            super().send(s)
        except smtplib.SMTPServerDisconnected as e:
            if isinstance(e.__context__, TimeoutError):
                raise ReadTimeout(f"sending timed out after {self.write_timeout:g} s") from None
            raise
        finally:
            if swap and sock is not None and self.sock is not None:
                sock.settimeout(self.read_timeout)

    def getreply(self) -> tuple[int, bytes]:
        try:
            code, message = super().getreply()
        except smtplib.SMTPServerDisconnected as e:
            if isinstance(e.__context__, TimeoutError):
                raise ReadTimeout(f"no reply within {self.read_timeout:g} s") from None
            raise
        if self.transcript.enabled:
            self.transcript.received(code, message)
        return code, message

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        reply = super().starttls(*args, **kwargs)
        if self.sock is not None:
            self.sock.settimeout(self.read_timeout)
        return reply


class RecordingSMTP_SSL(RecordingSMTP):
    """Implicit TLS: the handshake happens inside connect(), bounded by the connect timeout."""

    def __init__(self, transcript: Transcript, *, context: ssl.SSLContext, **kwargs: Any) -> None:
        self.context = context
        super().__init__(transcript, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((host, port), self.connect_timeout, self.source_address)
        try:
            tls = self.context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        tls.settimeout(self.read_timeout)
        return tls
