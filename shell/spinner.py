"""A one-line `⠋ probing… 1.4s` indicator on the terminal while a command waits on the network."""

from __future__ import annotations

import _thread
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from types import TracebackType

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    import threading
    from typing import Any, TextIO

    from jcsh.shell.context import Context

__all__ = ["Spinner", "spinning", "live_lines"]

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ASCII = "|/-\\"


class Spinner:
    """Draws on `stream` (a terminal) after `delay` seconds; `guard()` wraps an output stream
    so that anything the command writes first erases the indicator line."""

    def __init__(
        self, label: str, stream: TextIO, *, enabled: bool = True, delay: float = 0.25, interval: float = 0.1
    ) -> None:
        self.label = label
        self.stream = stream
        self.enabled = enabled and bool(getattr(stream, "isatty", lambda: False)())
        self.delay = delay
        self.interval = interval
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.frames = _FRAMES if encoding == "utf8" else _ASCII
        # threading (~0.7 ms to import) only for a spinner that draws; the guarded streams lock always.
        self._lock = _thread.allocate_lock()
        self._stop: threading.Event | None = None
        self._shown = False
        self._paused = False
        self._silenced = False
        self._thread: threading.Thread | None = None
        self._start = 0.0

    def __enter__(self) -> Spinner:
        self._start = time.monotonic()
        if self.enabled:
            import threading

            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._spin, name="jcsh-spinner", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        with self._lock:
            self._erase()

    def _spin(self) -> None:
        assert self._stop is not None
        if self._stop.wait(self.delay):
            return
        i = 0
        while not self._stop.is_set():
            with self._lock:
                if not self._paused and not self._stop.is_set():
                    elapsed = time.monotonic() - self._start
                    frame = self.frames[i % len(self.frames)]
                    self.stream.write(f"\r{frame} {self.label} {elapsed:.1f}s  (Ctrl-C cancels)\x1b[K")
                    self.stream.flush()
                    self._shown = True
            i += 1
            self._stop.wait(self.interval)

    def _erase(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def guard(self, stream: TextIO) -> TextIO:
        """`stream`, erasing the indicator before each write; it stays away mid-line."""
        return _Guarded(self, stream)  # type: ignore[return-value]

    def silence(self) -> None:
        """Drop whatever the guarded streams are given from now on (the command was cancelled)."""
        with self._lock:
            self._silenced = True
            self._erase()

    def _before_write(self) -> None:
        self._erase()
        self._paused = True

    def _after_write(self, text: str) -> None:
        self._paused = not text.endswith("\n")


class _Guarded:
    """A text stream that lets the spinner erase itself before output reaches the terminal."""

    def __init__(self, spinner: Spinner, stream: TextIO) -> None:
        self._spinner = spinner
        self._stream = stream

    def write(self, text: str) -> int:
        with self._spinner._lock:
            if self._spinner._silenced:
                return len(text)
            self._spinner._before_write()
            n = self._stream.write(text)
            self._stream.flush()
            self._spinner._after_write(text)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def spinning(ctx: Context, label: str) -> Iterator[Spinner]:
    """A spinner on ctx.err while the block runs (a terminal only; never with --json or TERM=dumb);
    ctx's streams erase it before anything is written, and are given back afterwards."""
    dumb = os.environ.get("TERM") == "dumb"  # no cursor movement to redraw a line with
    with Spinner(label, ctx.err, enabled=not (dumb or ctx.json)) as spinner:
        saved = ctx.out, ctx.err
        ctx.out, ctx.err = spinner.guard(ctx.out), spinner.guard(ctx.err)
        try:
            yield spinner
        finally:
            ctx.out, ctx.err = saved


def live_lines(ctx: Context) -> Callable[[str], None]:
    """`-v`: a callback that writes one line on stderr as it happens (sanitized; from any thread)."""
    lock = _thread.allocate_lock()

    def say(line: str) -> None:
        with lock:
            ctx.show(line + "\n", err=True)

    return say
