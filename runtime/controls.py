"""Terminal control sequences out of text we did not produce (script output, server replies)."""

from __future__ import annotations

import re

__all__ = ["strip_controls", "ControlStripper"]

# CSI and OSC sequences whole, any other ESC pair, C0 controls except tab and newline, DEL,
# the C1 range (0x80-0x9f), which some terminals honour as 8-bit CSI/OSC, and the bidirectional
# overrides, isolates and zero-width characters that make a line read other than it is.
_CONTROLS = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b.?"
    r"|[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]",
    re.DOTALL,
)
# An escape sequence that may still be going on at the end of a chunk.
_OPEN_TAIL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?\Z")


def strip_controls(text: str) -> str:
    """Remove terminal control sequences, keeping newlines and tabs."""
    return _CONTROLS.sub("", text)


class ControlStripper:
    """strip_controls for a stream of chunks: a sequence split across two chunks still goes whole."""

    _MAX_HELD = 256  # a longer "sequence" is not one a terminal would wait for

    def __init__(self) -> None:
        self._held = ""

    def feed(self, chunk: str) -> str:
        text = self._held + chunk
        self._held = ""
        tail = _OPEN_TAIL.search(text)
        if tail and len(text) - tail.start() <= self._MAX_HELD:
            self._held = text[tail.start() :]
            text = text[: tail.start()]
        return strip_controls(text)

    def flush(self) -> str:
        """End of stream: an unfinished sequence held back is dropped."""
        self._held = ""
        return ""
