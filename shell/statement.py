"""Reading Python as it is typed: is the statement complete, where does the next line start.

Completeness is decided by compiling, as `codeop` does (nothing is run); a blank line ends a
block, as in the standard REPL. Brackets, strings and comments are found by a small scanner
because `tokenize` refuses unfinished input.
"""

from __future__ import annotations

import codeop
import re
import warnings
from dataclasses import dataclass, field
from types import CodeType

__all__ = ["is_complete", "next_indent", "scan", "Scan", "INDENT", "help_request"]

INDENT = "    "
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_DEDENT_AFTER = re.compile(r"^\s*(pass|break|continue|return\b.*|raise\b.*)\s*$")


@dataclass
class Scan:
    """What is open at the end of a text: brackets (char, line, column), a string, a comment."""

    brackets: list[tuple[str, int, int]] = field(default_factory=list)
    string: str | None = None  # the open quote (', ", ''' or \"\"\")
    comment: bool = False


def scan(text: str) -> Scan:
    """Find the brackets, string and comment still open at the end of `text`."""
    state = Scan()
    line = col = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if state.string:
            q = state.string
            if c == "\\":
                i += 2
                col += 2
                continue
            if c == "\n":
                line, col = line + 1, 0
                if len(q) == 1:  # an unterminated one-line string ends at the line end
                    state.string = None
                i += 1
                continue
            if text.startswith(q, i):
                state.string = None
                i += len(q)
                col += len(q)
                continue
        elif state.comment:
            if c == "\n":
                state.comment = False
                line, col = line + 1, 0
                i += 1
                continue
        elif c == "#":
            state.comment = True
        elif c in "'\"":
            q = c * 3 if text.startswith(c * 3, i) else c
            state.string = q
            i += len(q)
            col += len(q)
            continue
        elif c in "([{":
            state.brackets.append((c, line, col))
        elif c in _CLOSERS:
            if state.brackets and state.brackets[-1][0] == _CLOSERS[c]:
                state.brackets.pop()
        elif c == "\n":
            line, col = line + 1, 0
            i += 1
            continue
        i += 1
        col += 1
    return state


_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_HELP_FORMS = (
    re.compile(rf"help\(\s*(?P<name>{_DOTTED})?\s*\)"),  # help(mail.send), help()
    re.compile(rf"(?P<name>{_DOTTED})\?\??"),  # mail.send? (IPython's form), mail.send??
    re.compile(rf"\?\??(?P<name>{_DOTTED})"),  # ?mail.send
)


def help_request(text: str) -> str | None:
    """The name asked about by `help(NAME)`, `NAME?` or `?NAME` ("" for `help()`); None for other input."""
    stripped = text.strip()
    for form in _HELP_FORMS:
        found = form.fullmatch(stripped)
        if found:
            return found.group("name") or ""
    return None


def _compile(text: str, mode: str) -> CodeType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings belong to the run, not to each Enter
        return codeop.compile_command(text, "<input>", mode)


def is_complete(text: str) -> bool:
    """True when Enter should run `text`: it compiles, cannot compile at all, or ends in a blank line."""
    if not text.strip() or text.lstrip().startswith("%"):
        return True
    last = text.rsplit("\n", 1)[-1]
    try:
        if _compile(text, "single") is not None:
            return True
    except (SyntaxError, ValueError, OverflowError) as e:
        if "multiple statements" not in str(e):
            return True  # the run reports the error
        # Several statements (a paste): done once they compile and the last line is not inside a block.
        try:
            return _compile(text, "exec") is not None and not last[:1].isspace()
        except (SyntaxError, ValueError, OverflowError):
            return True
    if "\n" not in text or last.strip():
        return False
    try:  # a blank line ends a block, but not an open bracket or string
        return _compile(text, "exec") is not None
    except (SyntaxError, ValueError, OverflowError):
        return True


def next_indent(before: str) -> str:
    """The indentation of a new line typed after `before` (the text before the cursor)."""
    lines = before.split("\n")
    state = scan(before)
    if state.string and len(state.string) == 3:
        return ""  # inside a triple-quoted string the user decides
    if state.brackets:
        _, row, col = state.brackets[-1]
        opener = lines[row]
        after = opener[col + 1 :].strip()
        if after and not after.startswith("#"):
            return " " * (col + 1)  # align with the first item after the bracket
        return _leading(opener) + INDENT
    current = lines[-1]
    base = _leading(current)
    code = _code_part(current)
    if code.endswith(":"):
        return base + INDENT
    if _DEDENT_AFTER.match(code):
        return base[: max(0, len(base) - len(INDENT))]
    return base


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _code_part(line: str) -> str:
    """The line without its comment (strings taken into account), right-stripped."""
    state = scan(line)
    if not state.comment:
        return line.rstrip()
    # Cut at the last '#' that starts the comment: rescan prefixes until the comment opens.
    for i, c in enumerate(line):
        if c == "#" and scan(line[: i + 1]).comment:
            return line[:i].rstrip()
    return line.rstrip()
