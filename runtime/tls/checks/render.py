"""What the checks' renderers share: the one call to the sanitizer, and aligned tables."""

from __future__ import annotations

from jcsh.runtime.controls import strip_controls
from jcsh.runtime.tables import table

__all__ = ["shown", "table"]


def shown(text: object) -> str:
    """Text from DNS, certificates or HTTP as one safe line: no terminal controls, no line breaks."""
    # The only place the checks call the sanitizer: when runtime/controls.py changes, change it here.
    return " ".join(strip_controls(str(text)).split())
