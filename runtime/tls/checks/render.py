"""What the checks' renderers share: the one call to the sanitizer, and aligned tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from jcsh.runtime.controls import escape_controls
from jcsh.runtime.tables import aligned

__all__ = ["shown", "table"]


def shown(text: object) -> str:
    """Text from DNS, certificates or HTTP inside one line: every control character escaped, newlines too."""
    # The checks' only call to the sanitizer (the shell's human() escapes whole documents again;
    # this one keeps a value from breaking its line or faking another row).
    return escape_controls(str(text), lines=False)


def table(rows: Iterable[Sequence[object]]) -> str:
    """Aligned columns, each cell through shown()."""
    return aligned(rows, cell=shown)
