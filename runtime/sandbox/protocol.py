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

TYPE_CHECKING = False  # no typing import: the parent may import this before anything else
if TYPE_CHECKING:
    import _socket
    from typing import Any

__all__ = ["Channel", "ProtocolError", "MAX_FRAME", "encode", "decode"]

MAX_FRAME = 8 << 20
_HEADER = struct.Struct(">I")
_CHUNK = 1 << 16
# One encoder for every frame: json.dumps with options builds a new JSONEncoder at each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class ProtocolError(Exception):
    """The other side sent something that is not a frame we accept."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame: header and body."""
    body = _ENCODER.encode(message).encode("utf-8", "surrogatepass")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"message of {len(body)} bytes is over the {MAX_FRAME}-byte frame limit")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """Parse one frame body; anything but a JSON object with a string "t" is a ProtocolError."""
    try:
        message = json.loads(body.decode("utf-8", "replace"))
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
        message = self._frame()
        if message is not None:
            return message
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._wait(left):
                    return None
            data = self.sock.recv(max(_CHUNK, _HEADER.size + self._wanted()))
            if not data:
                raise EOFError("the other side closed the connection")
            self._buf += data
            message = self._frame()
            if message is not None:
                return message

    def _wanted(self) -> int:
        if len(self._buf) < _HEADER.size:
            return 0
        return min(_HEADER.unpack_from(self._buf)[0], self.max_frame) - (len(self._buf) - _HEADER.size)

    def _wait(self, timeout: float) -> bool:
        if self._selector is None:
            import selectors  # only the parent waits with a timeout

            self._selector = selectors.DefaultSelector()
            self._selector.register(self.sock, selectors.EVENT_READ)
        return bool(self._selector.select(timeout))

    def close(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        self.sock.close()
