"""Characters that can drive or disguise a terminal, written as visible escapes instead."""

from __future__ import annotations

import re

__all__ = ["escape_controls", "escape_json_text", "UNSAFE_CHARACTERS"]

# C0 controls, DEL and C1 (some terminals honour 0x9b as CSI); the Unicode Bidi_Control set
# (U+061C, U+200E-200F, U+202A-202E, U+2066-2069), which reorders what the eye reads; zero-width
# characters (U+200B-200D, U+2060, U+FEFF), which hide text; the line and paragraph separators;
# and lone surrogates, which cannot be encoded to the terminal at all.
_C0_BUT_LINES = "\x00-\x08\x0b-\x1f"  # tab and newline stay in multi-line text
_ABOVE_ASCII = "\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff\ud800-\udfff"
UNSAFE_CHARACTERS = f"\x00-\x1f{_ABOVE_ASCII}"
_UNSAFE_IN_LINES = re.compile(f"[{_C0_BUT_LINES}{_ABOVE_ASCII}]")
_UNSAFE_IN_FIELD = re.compile(f"[{UNSAFE_CHARACTERS}]")
# json.dumps already writes C0 controls as \\u00XX; what it leaves raw is the rest.
_UNSAFE_IN_JSON = re.compile(f"[{_ABOVE_ASCII}]")


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def escape_controls(text: str, *, lines: bool = True) -> str:
    """Text fit for a terminal: each unsafe character as `\\x1b` / `\\u202e`; tab and newline kept when lines."""
    pattern = _UNSAFE_IN_LINES if lines else _UNSAFE_IN_FIELD
    if pattern.search(text) is None:  # the common case costs one scan and no copy
        return text
    return pattern.sub(_visible, text)


def escape_json_text(document: str) -> str:
    """A json.dumps(..., ensure_ascii=False) document with every unsafe character as a \\uXXXX escape.

    Outside strings such a document holds only spaces and newlines, so every match is inside a
    string and the escape decodes back to the same character: the data is unchanged.
    """
    if _UNSAFE_IN_JSON.search(document) is None:
        return document
    return _UNSAFE_IN_JSON.sub(_json_escape, document)
