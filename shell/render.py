"""Human and JSON output: tables, colour, the one sanitizer text passes on its way out, errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

from jcsh.runtime.controls import escape_controls, escape_json_text
from jcsh.runtime.errors import JcshError, UsageError
from jcsh.runtime.tables import aligned

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["table", "paint", "human", "one_line", "json_document", "report_error"]

_COLORS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "bold": "1", "dim": "2"}

# paint() marks where a colour goes instead of writing the escape sequence itself, so that
# human() can escape every control character in the text and still colour it. The marks carry a
# random token of this process: text from a server cannot forge one, and a forged one is escaped.
_TOKEN = os.urandom(6).hex()
_MARK = re.compile(f"\x00{_TOKEN}:([0-9]+)\x00")
_WHOLE_MARK = re.compile(f"(\x00{_TOKEN}:[0-9]+\x00)")


def paint(text: str, color: str, enabled: bool) -> str:
    """Text to be shown in a colour when colour is on; the colour appears when human() writes it."""
    return f"\x00{_TOKEN}:{_COLORS[color]}\x00{text}\x00{_TOKEN}:0\x00" if enabled else text


def human(text: str) -> str:
    """The sanitizer: text as a terminal may show it, controls escaped, then jcsh's own colours.

    Every human line jcsh writes passes here (Context.emit/warn/show, report_error): C0 and C1
    controls except tab and newline, DEL, bidi controls and zero-width characters come out as
    `\\x1b`, `\\u202e`; nothing is removed.
    """
    if "\x00" not in text:
        return escape_controls(text)
    parts = _MARK.split(text)
    # split() alternates text and captured colour codes: text at even indexes, codes at odd ones.
    return "".join(escape_controls(p) if i % 2 == 0 else f"\x1b[{p}m" for i, p in enumerate(parts))


def one_line(value: object) -> str:
    """A value shown inside one line (a table cell, `name = value`): newlines and tabs escaped too.

    Colour marks of paint() are kept for human() to turn into colour.
    """
    text = "" if value is None else str(value)
    if "\x00" not in text:
        return escape_controls(text, lines=False)
    parts = _WHOLE_MARK.split(text)
    return "".join(escape_controls(p, lines=False) if i % 2 == 0 else p for i, p in enumerate(parts))


def json_document(data: Any) -> str:
    """The --json document: readable non-ASCII, every unsafe character as a \\uXXXX escape."""
    import json  # lazily: most runs never print JSON

    return escape_json_text(json.dumps(data, indent=2, ensure_ascii=False, default=str)) + "\n"


def table(rows: Iterable[Sequence[object]], headers: Sequence[str] | None = None) -> str:
    """Left-aligned columns separated by two spaces; each cell one line, escaped."""
    return aligned(rows, headers, cell=one_line)


def report_error(err: JcshError, *, as_json: bool, out: TextIO, stderr: TextIO) -> int:
    """Write an error the way the architecture says, and return its exit code."""
    if as_json:
        out.write(json_document({"error": err.to_json()}))
    else:
        if isinstance(err, UsageError) and err.usage:
            stderr.write(human(err.usage))
        stderr.write(f"jcsh: {human(err.message)}\n")
    out.flush()
    stderr.flush()
    return err.exit_code
