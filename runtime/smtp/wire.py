"""SMTP on the wire: whole replies read under a deadline and size limits, commands, STARTTLS, AUTH.

Every wait is bounded by the wall-clock deadline of its step, however the server paces its bytes
(a socket timeout bounds each recv, not a step); every read is bounded by a size. TLS runs over
memory BIOs, so the handshake waits on the same deadline as everything else and the first bytes
the server answers it with can be looked at (plain text after STARTTLS is said as such).
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
from collections.abc import Sequence

from jcsh.runtime.annotations import Protocol
from jcsh.runtime.errors import ConnectFailed, LimitHit
from jcsh.runtime.smtp.deadline import Deadline, StepTimeout, Timeouts
from jcsh.runtime.smtp.reply import (
    WIRE_ERRORS,
    NotTls,
    ProtocolError,
    Reply,
    ServerClosed,
    Woken,
    features,
    parse_line,
    shown,
)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.smtp.transcript import Transcript

__all__ = [
    "Wire",
    "Exchange",
    "Reply",
    "Deadline",
    "Timeouts",
    "features",
    "shown",
    "StepTimeout",
    "ProtocolError",
    "ServerClosed",
    "NotTls",
    "Woken",
    "WIRE_ERRORS",
    "MAX_LINE",
    "MAX_REPLY",
    "BDAT_CHUNK",
]

MAX_LINE = 8 * 1024  # RFC 5321 asks for 512 octets; real servers exceed that, none by this much
MAX_REPLY = 64 * 1024  # one reply, every line of it
QUIT_WAIT = 2.0  # QUIT is a courtesy: its reply is waited for this long at most
_CHUNK = 32 * 1024
BDAT_CHUNK = 1024 * 1024  # a BDAT chunk: large enough to cost nothing, small enough to bound a server's buffer
_MAX_CHALLENGES = 8  # 334 rounds of one AUTH before the server is taken to be stalling
_TLS_RECORD_TYPES = range(0x14, 0x18)  # change_cipher_spec, alert, handshake, application_data
_TIMEVAL = struct.Struct("@ll")  # struct timeval for SO_RCVTIMEO: a wrong layout is refused (EINVAL), then we poll
_RESET_EARLY = 0.25  # a receive timeout this much shorter than the time left is set again (one more wake-up else)
_RESET_LATE = 0.001  # ... and one longer than the time left by more than this (a wait past the deadline else)


class Exchange(Protocol):
    """What the AUTH step drives: runtime/mail/sasl.py's SaslExchange, one per login."""

    def command(self) -> str:
        """The AUTH line, with the initial response where the mechanism sends one."""

    def answer(self, challenge: str) -> str:
        """The line answering a 334 whose text (base64) is `challenge`."""


class Wire:
    """One SMTP connection: commands out, whole replies in, each within its step's deadline."""

    def __init__(
        self,
        sock: socket.socket,
        where: str,
        timeouts: Timeouts,
        *,
        transcript: Transcript | None = None,
        wake: int | None = None,
    ) -> None:
        # Blocking at the kernel, each recv bounded by SO_RCVTIMEO: one system call, one GIL
        # hand-over, per read instead of a poll and a recv (among a probe's 64 threads each
        # hand-over is a context switch). Reads that must not wait and every send say MSG_DONTWAIT.
        sock.setblocking(True)
        self.sock = sock
        self._rcvtimeo: float | None = 0.0  # the receive timeout set (0: none yet); None: poll instead
        self.where = where
        self.timeouts = timeouts
        self.transcript = transcript if transcript is not None and transcript.enabled else None
        # A descriptor that, readable, calls every wait off (Woken). Whoever makes it readable also
        # shuts the socket down: a recv blocked in the kernel then returns, and sees it.
        self.wake = wake
        self.tls: ssl.SSLObject | None = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._buf = bytearray()  # plain text received and not yet read as a reply
        self._eof = False

    def deadline(self, step: str, seconds: float | None = None) -> Deadline:
        return self.timeouts.deadline(step, seconds)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- commands and replies ------------------------------------------------------------------

    def command(self, line: str, step: str | None = None, deadline: Deadline | None = None) -> Reply:
        """Send one command and read its whole reply, both within one step's deadline."""
        step = step or line.split(" ", 1)[0].upper()
        deadline = deadline or self.deadline(step)
        self.send_lines([line], deadline)
        return self.read_reply(deadline)

    def send_lines(self, lines: Sequence[str | bytes], deadline: Deadline) -> None:
        """Commands in one write (several: pipelining), after checking the server is not ahead of us.

        A `bytes` item is sent as it is, after the BDAT command before it (see `bdat`); the
        transcript says its size, never its text.
        """
        self.expect_quiet(deadline.step)
        out = bytearray()
        for item in lines:
            if isinstance(item, bytes):
                out += item
                if self.transcript is not None:
                    self.transcript.chunk(len(item))
                continue
            if self.transcript is not None:
                self.transcript.sent(item)
            out += item.encode("utf-8") + b"\r\n"
        self.write(bytes(out), deadline)

    def read_replies(self, count: int, deadline: Deadline) -> list[Reply]:
        """`count` replies in order (one per pipelined command)."""
        return [self.read_reply(deadline) for _ in range(count)]

    def read_reply(self, deadline: Deadline, *, greeting: bool = False) -> Reply:
        """One whole reply (every line), or a protocol error, a timeout or ServerClosed."""
        deadline = deadline.narrowed(self.timeouts.read, "the read timeout is")
        code: int | None = None
        lines: list[str] = []
        size = 0
        while True:
            raw = self._line(deadline, first=greeting and code is None)
            size += len(raw) + 2
            if size > MAX_REPLY:
                raise ProtocolError(
                    f"{self.where} sent a reply longer than 64 KiB during {deadline.step} (protocol error)"
                )
            parsed = parse_line(raw)
            if parsed is None:
                if greeting and code is None:
                    raise self._not_smtp(raw)
                raise ProtocolError(
                    f"{self.where} sent a malformed reply during {deadline.step} (protocol error): {shown(raw, 80)}"
                )
            this, more, text = parsed
            if code is None:
                code = this
            elif this != code:
                raise ProtocolError(
                    f"{self.where} sent a malformed reply during {deadline.step} (protocol error: a continuation "
                    f"line with another code): {shown(raw, 80)}"
                )
            lines.append(text)
            if not more:
                break
        reply = Reply(code, tuple(lines))
        if self.transcript is not None:
            self.transcript.received(reply)
        return reply

    def expect_quiet(self, before: str) -> None:
        """Raise when the server has already said something nobody asked for, or hung up."""
        self._take_waiting()
        if self._buf:
            end = self._buf.find(b"\n")
            first = bytes(self._buf[: end if 0 <= end < MAX_LINE else MAX_LINE]).rstrip(b"\r")
            parsed = parse_line(first)
            if parsed is not None and parsed[0] == 421:  # a server may say it is closing at any time
                reply = Reply(421, (parsed[2],))
                raise ServerClosed(
                    f"{self.where} closed the connection before {before} ({reply})", step=before, reply=reply
                )
            raise ProtocolError(
                f"the server {self.where} answered before it was asked (before {before}; protocol error): "
                + shown(first, 80)
            )
        if self._eof:
            raise ServerClosed(f"{self.where} closed the connection before {before}", step=before)

    def transfer(self, message: bytes, deadline: Deadline) -> None:
        """The message after DATA's 354: dot-stuffed, ended with CRLF.CRLF (its reply is read apart)."""
        import re

        data = re.sub(rb"(?m)^\.", b"..", message)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        if self.transcript is not None:
            self.transcript.message(len(message))
        self.write(data + b".\r\n", deadline)

    @staticmethod
    def bdat(message: bytes, size: int = BDAT_CHUNK) -> list[str | bytes]:
        """The message as BDAT commands (RFC 3030), each followed by its chunk; the last one says LAST.

        A message whose size is a multiple of `size` ends with a full chunk marked LAST, never an
        empty `BDAT 0 LAST` (which some servers mishandle); an empty message is `BDAT 0 LAST`.
        """
        items: list[str | bytes] = []
        starts = range(0, len(message), size) if message else range(1)
        for start in starts:
            piece = message[start : start + size]
            last = start + size >= len(message)
            items += [f"BDAT {len(piece)}{' LAST' if last else ''}", piece]
        return items

    def authenticate(self, exchange: Exchange, deadline: Deadline) -> Reply:
        """AUTH driven by a mechanism object: its AUTH line, then its answer to each 334 challenge."""
        reply = self.command(exchange.command(), deadline.step, deadline)
        rounds = 0
        while reply.code == 334:
            rounds += 1
            if rounds > _MAX_CHALLENGES:
                raise ProtocolError(f"{self.where} sent more than {_MAX_CHALLENGES} AUTH challenges (protocol error)")
            self.send_lines([exchange.answer(reply.lines[0] if reply.lines else "")], deadline)
            reply = self.read_reply(deadline)
        return reply

    def quit(self) -> None:
        """QUIT, its reply waited for briefly, then close; a courtesy that never fails."""
        try:
            deadline = self.timeouts.deadline("QUIT", min(self.timeouts.step, QUIT_WAIT))
            if deadline.left() > 0:
                self.command("QUIT", "QUIT", deadline)
        except (LimitHit, ConnectFailed, OSError, ssl.SSLError):
            pass
        finally:
            self.close()

    # -- TLS -----------------------------------------------------------------------------------

    def start_tls(self, context: ssl.SSLContext, server_hostname: str | None, deadline: Deadline) -> None:
        """The TLS handshake within the deadline; ssl errors (trust, versions) pass through as they are."""
        if self._buf:  # said after "220 go ahead" and before our ClientHello: a TLS server never does
            raise NotTls(f"{self.where} spoke plain text instead of TLS: {shown(self._buf, 40)}", bytes(self._buf))
        # An ASCII name as bytes: ssl encodes a str with the idna codec, whose import (stringprep,
        # unicodedata) costs start-up milliseconds and gives the same bytes for an ASCII name.
        name = server_hostname.encode("ascii") if server_hostname and server_hostname.isascii() else server_hostname
        tls = context.wrap_bio(self._in, self._out, server_hostname=name or None)
        first = True
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self._in.eof:
                    raise ServerClosed(
                        f"{self.where} closed the connection during {deadline.step}", step=deadline.step
                    ) from None
            self._flush(deadline)
            raw = self._recv(deadline)
            if not raw:  # OpenSSL says how it went (UNEXPECTED_EOF ...), as for any handshake that ends early
                self._in.write_eof()
                continue
            if first and raw[0] not in _TLS_RECORD_TYPES:
                raise NotTls(f"{self.where} spoke plain text instead of TLS: {shown(raw, 40)}", raw)
            first = False
            self._in.write(raw)
        self._flush(deadline)  # our Finished
        self.tls = tls

    # -- bytes ---------------------------------------------------------------------------------

    def write(self, data: bytes, deadline: Deadline) -> None:
        deadline = deadline.narrowed(self.timeouts.write, "the write timeout is")
        if self.tls is None:
            self._sendall(data, deadline)
            return
        for start in range(0, len(data), _CHUNK):  # encrypted a piece at a time: memory stays flat
            self.tls.write(data[start : start + _CHUNK])
            self._flush(deadline)

    def _line(self, deadline: Deadline, *, first: bool) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end > MAX_LINE or (end < 0 and len(self._buf) > MAX_LINE):
                if first and parse_line(bytes(self._buf[:4])) is None:
                    raise self._not_smtp(bytes(self._buf[:MAX_LINE]))
                raise ProtocolError(
                    f"{self.where} sent a reply line longer than 8 KiB during {deadline.step} (protocol error)"
                )
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                return line[:-1] if line.endswith(b"\r") else line
            try:
                self._fill(deadline)
            except ServerClosed:
                if first and self._buf and parse_line(bytes(self._buf[:4])) is None:
                    raise self._not_smtp(bytes(self._buf)) from None
                raise

    def _not_smtp(self, first: bytes) -> ProtocolError:
        from jcsh.runtime.greeting import not_smtp  # one wording, and no more of a banner than 40 characters

        return ProtocolError(not_smtp(self.where, first).message)

    def _fill(self, deadline: Deadline) -> None:
        """At least one more byte of plain text into the buffer, within the deadline."""
        while True:
            if self.tls is not None and self._read_tls():
                return
            raw = self._recv(deadline) if not self._eof else b""  # after a TLS close_notify, nothing more comes
            if not raw:
                self._eof = True
                raise ServerClosed(f"{self.where} closed the connection during {deadline.step}", step=deadline.step)
            if self.tls is None:
                self._buf += raw
                return
            self._in.write(raw)

    def _read_tls(self) -> bool:
        """Decrypt what has arrived into the buffer; whether any plain text came out."""
        assert self.tls is not None
        try:
            data = self.tls.read(_CHUNK)
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLZeroReturnError:  # close_notify
            data = b""
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _take_waiting(self) -> None:
        """Whatever has already arrived, without waiting (at most one reply's worth)."""
        taken = 0
        while taken < MAX_REPLY and not self._eof:
            if self.tls is not None and self._read_tls():
                taken += _CHUNK
                continue
            try:
                raw = self.sock.recv(_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except ConnectionResetError:
                raw = b""
            if not raw:
                self._check_woken()
                self._eof = True
                return
            taken += len(raw)
            if self.tls is None:
                self._buf += raw
            else:
                self._in.write(raw)

    def _flush(self, deadline: Deadline) -> None:
        if self._out.pending:
            self._sendall(self._out.read(), deadline)

    def _wait(self, deadline: Deadline, *, write: bool = False) -> None:
        poller = select.poll()
        poller.register(self.sock, select.POLLOUT if write else select.POLLIN)
        if self.wake is not None:
            poller.register(self.wake, select.POLLIN)
        while True:
            left = deadline.left()
            if left <= 0:
                raise deadline.expired(self.where)
            events = poller.poll(int(left * 1000) + 1)
            if any(fd == self.wake for fd, _ in events):
                raise Woken()
            if events:
                return

    def _recv(self, deadline: Deadline) -> bytes:
        """The next bytes from the socket (b"" at EOF), waiting at most until the deadline."""
        while True:
            if self._rcvtimeo is None or not self._timed(deadline):
                self._wait(deadline)
            try:
                raw = self.sock.recv(_CHUNK, 0 if self._rcvtimeo else socket.MSG_DONTWAIT)
            except BlockingIOError:  # the receive timeout passed: the deadline says whether to wait on
                continue
            except ConnectionResetError:
                raw = b""
            if not raw:
                self._check_woken()
            return raw

    def _timed(self, deadline: Deadline) -> bool:
        """The receive timeout set to what is left of the deadline; False where SO_RCVTIMEO is not to be had."""
        left = deadline.left()
        if left <= 0:
            raise deadline.expired(self.where)
        current = self._rcvtimeo
        if current and left - _RESET_EARLY <= current <= left + _RESET_LATE:
            return True
        # 0 s would mean "no timeout" to the kernel: the shortest wait it takes is 1 microsecond.
        seconds, micros = divmod(max(1, round(left * 1e6)), 1_000_000)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _TIMEVAL.pack(seconds, micros))
        except OSError:  # no SO_RCVTIMEO here (or another timeval layout): poll before each recv instead
            self._rcvtimeo = None
            return False
        self._rcvtimeo = left
        return True

    def _check_woken(self) -> None:
        """At an end of the connection: Woken when it was the caller who ended it (see `wake`)."""
        if self.wake is None:
            return
        poller = select.poll()  # not select.select: it refuses a descriptor of 1024 or more
        poller.register(self.wake, select.POLLIN)
        if poller.poll(0):
            raise Woken()

    def _sendall(self, data: bytes, deadline: Deadline) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view, socket.MSG_DONTWAIT) :]
            except BlockingIOError:
                self._wait(deadline, write=True)
            except (BrokenPipeError, ConnectionResetError):
                self._check_woken()
                self._eof = True
                raise ServerClosed(
                    f"{self.where} closed the connection during {deadline.step}", step=deadline.step
                ) from None
