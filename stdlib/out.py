"""jcsOut and jcsErr: print writers in the manner of Java's PrintStream."""

from __future__ import annotations

from typing import Any

__all__ = ["PrintWriter"]


def _java_format(fmt: str, args: tuple[Any, ...]) -> str:
    # Java's %n is a line separator; Python's % has none. "%%n" stays a literal "%n".
    pieces = fmt.split("%%")
    fmt = "%%".join(p.replace("%n", "\n") for p in pieces)
    if not args:
        return fmt.replace("%%", "%")
    return fmt % (args[0] if len(args) == 1 and isinstance(args[0], dict) else args)


class PrintWriter:
    """Text to the shell's standard output (jcsOut) or standard error (jcsErr)."""

    __slots__ = ("_link", "_stream")

    def __init__(self, link: Any, stream: str) -> None:
        self._link = link
        self._stream = stream

    def print(self, *values: Any) -> None:
        """Write the values (str of each, separated by a space), no newline."""
        self._link.write(self._stream, " ".join(str(v) for v in values))

    def println(self, *values: Any) -> None:
        """Write the values and a newline; println() writes an empty line."""
        self._link.write(self._stream, " ".join(str(v) for v in values) + "\n")

    def printf(self, fmt: str, *args: Any) -> PrintWriter:
        """Write fmt % args (Python % codes; %n is a newline, as in Java); returns the writer."""
        if type(fmt) is not str:
            raise TypeError("printf needs a format string")
        self._link.write(self._stream, _java_format(fmt, args))
        return self

    def format(self, fmt: str, *args: Any) -> PrintWriter:
        """The same as printf."""
        return self.printf(fmt, *args)

    def write(self, text: str) -> int:
        """Write text as it is (so that print(..., file=jcsErr) works)."""
        text = str(text)
        self._link.write(self._stream, text)
        return len(text)

    def flush(self) -> None:
        """Output is sent as it is written; nothing to do."""

    def __repr__(self) -> str:
        return "jcsOut" if self._stream == "out" else "jcsErr"
