"""The REPL history file: what is kept (no literal secrets) and how an entry is appended.

The format is prompt_toolkit's FileHistory (`# time` then `+line` per line), written here
without prompt_toolkit so that the plain prompt of a dumb terminal keeps history too.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

__all__ = ["keep_in_history", "append_history", "open_history_file"]

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
