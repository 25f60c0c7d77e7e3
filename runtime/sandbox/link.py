"""The worker's end of the channel as the script's stubs see it: output and requests to the parent.

Frames must go out whole, so a Ctrl-C (SIGINT) that arrives while one is being sent or a reply
awaited is held back and raised as KeyboardInterrupt right after.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jcsh.runtime.sandbox.protocol import Channel, ProtocolError

__all__ = ["Link", "RemoteError", "OutputLimitExceeded", "OutputStream"]

_CHUNK = 1 << 18


class RemoteError(Exception):
    """The parent refused or failed a request: its kind, message and exit code."""

    def __init__(self, kind: str, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.exit_code = exit_code


class OutputLimitExceeded(BaseException):
    """The statement wrote more than its output limit (a BaseException: `except Exception` lets it through)."""


class Link:
    """Output and requests from the worker to the parent, with the statement's output budget."""

    def __init__(self, channel: Channel, output_limit: int) -> None:
        self.channel = channel
        self.output_limit = output_limit
        self.used = 0
        self.over = False
        self.running = False  # a statement is running: SIGINT becomes KeyboardInterrupt
        self._critical = 0
        self._pending = False
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}

    # -- interrupts -------------------------------------------------------------------------

    def on_sigint(self, signum: int, frame: Any) -> None:
        if not self.running:
            return
        if self._critical:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def _whole(self) -> Iterator[None]:
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
            if self._pending and not self._critical and self.running:
                self._pending = False
                raise KeyboardInterrupt

    def start_statement(self) -> None:
        self.used = 0
        self.over = False
        self._pending = False

    # -- output -----------------------------------------------------------------------------

    def write(self, stream: str, text: str) -> None:
        """Send text to the parent's stdout ("out") or stderr ("err"), within the output limit."""
        if type(text) is not str:
            text = str(text)
        if not text:
            return
        if self.over:
            raise OutputLimitExceeded(f"the output limit of {self.output_limit} bytes was reached")
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        cut = False
        if self.used + size > self.output_limit:
            text = text[: max(0, self.output_limit - self.used)]
            cut = True
        self.used += size
        with self._whole():
            for start in range(0, len(text), _CHUNK):
                self._send({"t": "out", "s": stream, "d": text[start : start + _CHUNK]})
            if cut:  # the parent starts its clock: a script that keeps going after this is killed
                self._send({"t": "limit", "what": "output"})
        if cut:
            self.over = True
            raise OutputLimitExceeded(f"the output limit of {self.output_limit} bytes was reached")

    # -- requests ---------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Ask the parent to do something; its answer, or RemoteError."""
        self._next_id += 1
        mine = self._next_id
        # What _whole() does, written out: this is every request's path, and a generator-based
        # context manager costs more than the rest of the worker's share of a registry.get.
        self._critical += 1
        try:
            self._send({"t": "call", "id": mine, "m": method, "a": params or {}})
            # A finalizer may make its own call while we wait: replies are matched by id.
            replies = self._replies
            while mine not in replies:
                message = self._recv()
                if message.get("t") == "reply" and isinstance(message.get("id"), int):
                    replies[message["id"]] = message
            reply = replies.pop(mine)
        finally:
            self._critical -= 1
            if self._pending and not self._critical and self.running:
                self._pending = False
                raise KeyboardInterrupt
        error = reply.get("err")
        if error is None:
            return reply.get("ok")
        if not isinstance(error, dict):
            error = {}
        raise RemoteError(
            str(error.get("kind", "error")),
            str(error.get("message", "request failed")),
            int(error.get("code", 1)) if isinstance(error.get("code", 1), int) else 1,
        )

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.channel.send(message)
        except OSError:
            os._exit(1)  # the parent is gone: nobody is left to serve

    def _recv(self) -> dict[str, Any]:
        try:
            return self.channel.recv()  # type: ignore[return-value]
        except (EOFError, OSError, ProtocolError):
            os._exit(1)


class OutputStream:
    """sys.stdout / sys.stderr of the worker: what the engine or a module prints goes to the parent."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, link: Link, stream: str) -> None:
        self._link = link
        self._stream = stream

    def write(self, text: str) -> int:
        self._link.write(self._stream, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True
