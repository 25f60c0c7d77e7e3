"""Human output helpers: tables, colour, and the shape of an error."""

from __future__ import annotations

from typing import TextIO

from jcsh.runtime.controls import strip_controls
from jcsh.runtime.errors import JcshError, UsageError
from jcsh.runtime.tables import table

__all__ = ["table", "paint", "report_error", "strip_controls"]

_COLORS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}


def paint(text: str, color: str, enabled: bool) -> str:
    """Wrap text in an ANSI colour when colour is on."""
    return f"\x1b[{_COLORS[color]}m{text}\x1b[0m" if enabled else text


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
