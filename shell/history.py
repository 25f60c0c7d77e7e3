"""The REPL history file: what is kept (no literal secrets) and how an entry is appended.

The format is prompt_toolkit's FileHistory (`# time` then `+line` per line), written here
without prompt_toolkit so that the plain prompt of a dumb terminal keeps history too.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

__all__ = ["HISTORY_NAME", "keep_in_history", "append_history", "open_history_file", "read_history"]

HISTORY_NAME = "history"  # the file in the home folder

# A literal secret typed into code (`secret="..."`, `password='...'`) is not kept in history.
_SECRET = re.compile(r"(?i)\b(secret|password|passwd|pwd)\s*[=:]\s*[rbuRBU]?['\"]")


def keep_in_history(text: str) -> bool:
    """False for entries that carry a literal password or secret."""
    return not _SECRET.search(text)


def open_history_file(path: Path) -> Path:
    """Create the history file readable by its owner only, if it is missing."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    return path


def append_history(path: Path, text: str) -> None:
    """Append one entry as FileHistory does; a history that cannot be written is skipped."""
    if not text.strip() or not keep_in_history(text):
        return
    entry = f"\n# {datetime.datetime.now()}\n" + "".join(f"+{line}\n" for line in text.split("\n"))
    try:
        open_history_file(path)
        with open(path, "ab") as f:
            f.write(entry.encode("utf-8"))
    except OSError:
        pass


def read_history(path: Path) -> list[str]:
    """Every entry of the history file, oldest first (multi-line entries joined by newlines)."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    entries: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("+"):
            lines.append(line[1:])
        elif lines:
            entries.append("\n".join(lines))
            lines = []
    if lines:
        entries.append("\n".join(lines))
    return entries
