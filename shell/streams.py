"""Standard streams that fail as one line: closed (`>&-`), a reader gone (`| head -0`), a full disk.

At start-up a closed descriptor 0, 1 or 2 gets /dev/null, so that no file opened later (the
database!) takes its number; the command still sees the stream as closed. Writing to a closed or
failing output, or reading a closed input, raises StreamClosed, which the command line reports as
one line (on the other stream, where it can) and exit 1.
"""

from __future__ import annotations

import io
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["StreamClosed", "reserve_std_fds", "flush_std_streams", "Output", "Input", "std_streams"]


class StreamClosed(OSError):
    """A standard stream cannot be used; its message is the one line to show."""


def reserve_std_fds() -> None:
    """Put /dev/null on descriptors 0-2 that are closed (sys.stdin/stdout/stderr stay None)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:  # os.open takes the lowest free number: fd, unless a lower one is also closed
                os.dup2(null, fd)
                os.close(null)


def flush_std_streams() -> bool:
    """Flush sys.stdout and sys.stderr as the interpreter does at exit; False when one fails."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True


class Output(io.TextIOBase):
    """stdout or stderr: writes go through, failures become StreamClosed."""

    def __init__(self, stream: TextIO | None, name: str) -> None:
        self._stream = stream
        self._name = name
        self._failed: str | None = None if stream is not None else f"{name} is closed"

    def _fail(self, e: OSError | ValueError) -> StreamClosed:
        if isinstance(e, BrokenPipeError):
            self._failed = f"{self._name} was closed by its reader (broken pipe)"
        else:
            self._failed = f"cannot write to {self._name}: {getattr(e, 'strerror', None) or e}"
        self._silence()
        return StreamClosed(self._failed)

    def _silence(self) -> None:
        # Python flushes sys.stdout once more at exit; with the reader gone that prints a warning.
        stream, self._stream = self._stream, None
        try:
            fd = stream.fileno() if stream is not None else -1
        except (OSError, ValueError):
            fd = -1
        if fd >= 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)

    def write(self, text: str) -> int:
        if self._failed is not None or self._stream is None:
            raise StreamClosed(self._failed or f"{self._name} is closed")
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as e:
            raise self._fail(e) from None

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as e:
            raise self._fail(e) from None

    @property
    def broken(self) -> bool:
        return self._failed is not None

    @property
    def buffer(self) -> Any:
        """The binary stream underneath (for `jcsh backup -`); StreamClosed when there is none."""
        if self._stream is None or self._failed is not None:
            raise StreamClosed(self._failed or f"{self._name} is closed")
        return _BinaryOutput(self._stream.buffer, self)

    def isatty(self) -> bool:
        return self._stream is not None and self._stream.isatty()

    def fileno(self) -> int:
        if self._stream is None:
            raise OSError(f"{self._name} is closed")
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True


class _BinaryOutput:
    """The bytes under an Output, failing the same way."""

    def __init__(self, raw: Any, owner: Output) -> None:
        self._raw = raw
        self._owner = owner

    def write(self, data: bytes) -> int:
        try:
            return int(self._raw.write(data))
        except (OSError, ValueError) as e:
            raise self._owner._fail(e) from None

    def flush(self) -> None:
        try:
            self._raw.flush()
        except (OSError, ValueError) as e:
            raise self._owner._fail(e) from None


class Input(io.TextIOBase):
    """A closed stdin: reading it raises StreamClosed."""

    def read(self, size: int | None = -1) -> str:
        raise StreamClosed("standard input is closed")

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        raise StreamClosed("standard input is closed")

    @property
    def buffer(self) -> Any:
        raise StreamClosed("standard input is closed")

    def isatty(self) -> bool:
        return False

    def readable(self) -> bool:
        return True


def std_streams() -> tuple[TextIO, TextIO, TextIO]:
    """(stdin, stdout, stderr) for a command: closed ones fail as one line, outputs fail as one line."""
    stdin: TextIO = sys.stdin if sys.stdin is not None else Input()  # type: ignore[assignment]
    out = Output(sys.stdout, "standard output")
    err = Output(sys.stderr, "standard error")
    return stdin, out, err  # type: ignore[return-value]
