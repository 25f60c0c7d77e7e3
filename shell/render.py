"""Human output helpers: tables, colour, and the shape of an error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TextIO

from jcsh.runtime.controls import strip_controls
from jcsh.runtime.errors import JcshError, UsageError

__all__ = ["table", "paint", "report_error", "strip_controls"]

_COLORS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}


def paint(text: str, color: str, enabled: bool) -> str:
    """Wrap text in an ANSI colour when colour is on."""
    return f"\x1b[{_COLORS[color]}m{text}\x1b[0m" if enabled else text


def table(rows: Iterable[Sequence[object]], headers: Sequence[str] | None = None) -> str:
    """Left-aligned columns separated by two spaces."""
    body = [[("" if c is None else str(c)) for c in row] for row in rows]
    if headers:
        body.insert(0, list(headers))
    if not body:
        return ""
    widths = [max(len(r[i]) for r in body if i < len(r)) for i in range(max(len(r) for r in body))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in body]
    return "\n".join(lines)


def report_error(err: JcshError, *, as_json: bool, out: TextIO, stderr: TextIO) -> int:
    """Write an error the way the architecture says, and return its exit code."""
    if as_json:
        import json  # lazily: most runs never print JSON

        out.write(json.dumps({"error": err.to_json()}, indent=2) + "\n")
    else:
        if isinstance(err, UsageError) and err.usage:
            stderr.write(err.usage)
        stderr.write(f"jcsh: {strip_controls(err.message)}\n")
    out.flush()
    stderr.flush()
    return err.exit_code
