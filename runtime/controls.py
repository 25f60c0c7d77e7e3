"""Characters that can drive or disguise a terminal, written as visible escapes instead."""

from __future__ import annotations

import re

__all__ = ["escape_controls", "escape_json_text", "UNSAFE_CHARACTERS"]

# C0 controls, DEL and C1 (some terminals honour 0x9b as CSI); the Unicode Bidi_Control set
# (U+061C, U+200E-200F, U+202A-202E, U+2066-2069), which reorders what the eye reads; zero-width
# characters (U+200B-200D, U+2060, U+FEFF), which hide text; the line and paragraph separators;
# and lone surrogates, which cannot be encoded to the terminal at all.
UNSAFE_CHARACTERS = "\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff\ud800-\udfff"
# Compiled on first need (~0.7 ms): clean text never gets here, see _clean().
_unsafe: re.Pattern[str] | None = None


def _pattern() -> re.Pattern[str]:
    global _unsafe
    if _unsafe is None:
        _unsafe = re.compile(f"[{UNSAFE_CHARACTERS}]")
    return _unsafe


def _clean(text: str) -> bool:
    # Every unsafe character is one str.isprintable() rejects (Cc, Cf, Zl, Zp, Cs), so printable
    # text needs no regex at all; tab and newline are the only non-printable ones allowed here.
    return text.isprintable() or text.replace("\n", "").replace("\t", "").isprintable()


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _visible_but_lines(m: re.Match[str]) -> str:
    return m.group() if m.group() in "\t\n" else _visible(m)


def _json_escape(m: re.Match[str]) -> str:
    # Raw newlines in a json.dumps document are its indentation; in strings they are escaped.
    return m.group() if m.group() == "\n" else f"\\u{ord(m.group()):04x}"


def escape_controls(text: str, *, lines: bool = True) -> str:
    """Text fit for a terminal: each unsafe character as `\\x1b` / `\\u202e`; tab and newline kept when lines."""
    if text.isprintable() if not lines else _clean(text):
        return text
    return _pattern().sub(_visible_but_lines if lines else _visible, text)


def escape_json_text(document: str) -> str:
    """A json.dumps(..., ensure_ascii=False) document with every unsafe character as a \\uXXXX escape.

    Outside strings such a document holds only spaces and newlines, so every other match is
    inside a string and its escape decodes back to the same character: the data is unchanged.
    """
    if document.isascii() and "\x7f" not in document:  # json.dumps escaped every C0 control already
        return document
    return _pattern().sub(_json_escape, document)
