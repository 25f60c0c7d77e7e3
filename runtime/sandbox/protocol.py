"""Framed JSON messages over a socket, used by both sides: 4-byte big-endian length, then UTF-8 JSON.

Never pickle or marshal: the worker is not trusted, so the parent only ever parses JSON from it,
and a frame that is too large, not JSON, or not an object ends the conversation.

Messages are objects with a "t" (type) member:
  parent -> worker: run {src, file, mode, args}, names, reply {id, ok | err}
  worker -> parent: ready {layers, limits}, fatal {error}, out {s, d}, limit {what}, call {id, m, a},
                    done {ok, exit, error, value, exited, limit}, names {names}
"""

from __future__ import annotations

import json
import struct
import time
from json.encoder import encode_basestring
from json.scanner import make_scanner

TYPE_CHECKING = False  # no typing import: the parent may import this before anything else
if TYPE_CHECKING:
    import _socket
    from typing import Any

__all__ = ["Channel", "ProtocolError", "MAX_FRAME", "encode", "encode_reply", "decode"]

MAX_FRAME = 8 << 20
_HEADER = struct.Struct(">I")
_CHUNK = 1 << 16
_TIMEVAL = struct.Struct("@ll")  # struct timeval: a wrong layout is refused (EINVAL), then we poll
# A receive timeout already set is kept when it ends at most this much before or after the one asked for.
_SLACK_EARLY, _SLACK_LATE = 0.005, 0.001
# One encoder for every frame: json.dumps with options builds a new JSONEncoder at each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _c_encoder() -> Any:
    """The C encoder below JSONEncoder.encode, made once; None where this Python has none to give.

    Messages are built by our own code from checked values (text, numbers, flags, lists, objects),
    so it keeps no markers to look for cycles (json.dumps fills a fresh set per call); a cycle
    would still end, in RecursionError.
    """
    make = getattr(json.encoder, "c_make_encoder", None)  # None without the _json accelerator
    try:
        return make(None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, True) if make else None
    except (TypeError, ValueError):  # a Python whose private C encoder takes other arguments
        return None


_ENCODE = _c_encoder()
_TEXT_REPLY = '{"t":"reply","id":%d,"ok":%s}'
# json.loads is the scanner behind two whitespace regex matches; frames have no whitespace around them.
_SCAN = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed wants a scanner, CPython the decoder


class ProtocolError(Exception):
    """The other side sent something that is not a frame we accept."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame: header and body."""
    text = "".join(_ENCODE(message, 0)) if _ENCODE is not None else _ENCODER.encode(message)
    body = text.encode("utf-8", "surrogatepass")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message of {len(body)} bytes is over the {MAX_FRAME}-byte frame limit")
    return _HEADER.pack(len(body)) + body


def encode_reply(ident: Any, value: Any) -> bytes:
    """The frame of the reply {t, id, ok}: what encode() makes of it, sooner for a text answer."""
    if type(ident) is not int or type(value) is not str:
        return encode({"t": "reply", "id": ident, "ok": value})
    # Most answers are one text (registry.get): its JSON string in a fixed frame is a third of the
    # C encoder's instructions, with the same bytes (tested against encode).
    body = (_TEXT_REPLY % (ident, encode_basestring(value))).encode("utf-8", "surrogatepass")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message of {len(body)} bytes is over the {MAX_FRAME}-byte frame limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """Parse one frame body; anything but a JSON object with a string "t" is a ProtocolError."""
    text = body.decode("utf-8", "replace")
    try:
        try:
            message, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # whitespace around the value, or no JSON value: json.loads says which
            message = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"frame is not valid JSON: {str(e)[:80]}") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError("frame is not a message object")
    return message


class Channel:
    """One end of the conversation: send frames, receive them with an optional timeout."""

    def __init__(self, sock: _socket.socket, *, max_frame: int = MAX_FRAME) -> None:
        # Any connected stream socket: socket.socket or the bare _socket.socket (cheaper to import).
        self.sock = sock
        self.max_frame = max_frame
        self._buf = bytearray()
        self._selector: Any = None
        self._timeout: float | None = None  # the socket's receive timeout (SO_RCVTIMEO), when set

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: dict[str, Any] | bytes) -> None:
        """A message, or a frame `encode` already made (encoded once, e.g. to check its size first)."""
        self.sock.sendall(message if isinstance(message, bytes) else encode(message))

    def _frame(self) -> dict[str, Any] | None:
        """A complete frame from the buffer, if there is one."""
        if len(self._buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buf)
        if size > self.max_frame:
            raise ProtocolError(f"frame of {size} bytes is over the {self.max_frame}-byte limit")
        end = _HEADER.size + size
        if len(self._buf) < end:
            return None
        body = bytes(self._buf[_HEADER.size : end])
        del self._buf[:end]
        return decode(body)

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message; None when timeout (seconds) passes first; EOFError when the peer closed."""
        if self._buf:
            message = self._frame()
            if message is not None:
                return message
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._wait(left):
                    return None
            elif self._timeout is not None:
                self._set_timeout(None)
            try:
                data = self.sock.recv(max(_CHUNK, _HEADER.size + self._wanted()))
            except BlockingIOError:
                if self._timeout is None:
                    raise
                continue  # the receive timeout passed: the deadline says whether to wait on
            if not data:
                raise EOFError("the other side closed the connection")
            if not self._buf and len(data) > _HEADER.size:
                # The usual case, a request or reply alone in its read: no copy through the buffer.
                (size,) = _HEADER.unpack_from(data)
                if _HEADER.size + size == len(data) and size <= self.max_frame:
                    return decode(data[_HEADER.size :])
            self._buf += data
            message = self._frame()
            if message is not None:
                return message

    def _wanted(self) -> int:
        if len(self._buf) < _HEADER.size:
            return 0
        return min(_HEADER.unpack_from(self._buf)[0], self.max_frame) - (len(self._buf) - _HEADER.size)

    def _wait(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds for data (False: none came); with SO_RCVTIMEO, recv() waits."""
        if self._selector is None:
            current = self._timeout
            # The kernel's receive timeout (SO_RCVTIMEO) waits inside recv() itself: one system call
            # a message instead of a poll and a recv. Set again only when the wait asked for moves
            # out of a small window around the one set: the client asks for ~0.25 s every time.
            if current is not None and timeout - _SLACK_EARLY <= current <= timeout + _SLACK_LATE:
                return True
            try:
                self._set_timeout(timeout)
                return True
            except OSError:  # no SO_RCVTIMEO here (or another timeval layout): poll instead
                import selectors  # only the parent waits with a timeout

                self._timeout = None
                self._selector = selectors.DefaultSelector()
                self._selector.register(self.sock, selectors.EVENT_READ)
        return bool(self._selector.select(timeout))

    def _set_timeout(self, timeout: float | None) -> None:
        import _socket  # already loaded with the socket itself

        # 0 s would mean "no timeout" to the kernel: the shortest wait it takes is 1 microsecond.
        seconds, micros = (0, 0) if timeout is None else divmod(max(1, round(timeout * 1e6)), 1_000_000)
        self.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, _TIMEVAL.pack(seconds, micros))
        self._timeout = timeout

    def close(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        self.sock.close()
