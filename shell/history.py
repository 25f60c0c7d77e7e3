"""The REPL history file: what is kept (nothing that looks like a secret) and how an entry is appended.

An entry is not kept when it assigns to, or passes a keyword whose name contains, password, passwd,
pwd, secret, token or apikey/api_key (`smtp_password = ...`, `f(token=...)`, `cfg.secret = ...`,
`{"password": ...}`), nor when it calls `credentials.add(`. Python is read with `ast`; input that
does not parse (a `%` command, a syntax error) is judged by a pattern that errs on the side of
leaving it out.

The format is prompt_toolkit's FileHistory (`# time` then `+line` per line), written here
without prompt_toolkit so that the plain prompt of a dumb terminal keeps history too.
"""

from __future__ import annotations

import ast
import datetime
import os
import re
from pathlib import Path

__all__ = ["HISTORY_NAME", "keep_in_history", "append_history", "open_history_file", "read_history", "SECRET_WORDS"]

HISTORY_NAME = "history"  # the file in the home folder

SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "apikey", "api_key")
_WORD = "(?:" + "|".join(SECRET_WORDS) + ")"
_ADD_CREDENTIAL = re.compile(r"\bcredentials\s*\.\s*add\s*\(")
# For text that is not Python: a name holding a secret word, then `=`, `:` or an augmented `=`.
_ASSIGNED = re.compile(rf"(?i)\w*{_WORD}\w*['\"]?\s*(?:[-+*/%&|^@<>]*=(?!=)|:)")


def _secret_name(name: object) -> bool:
    return isinstance(name, str) and any(word in name.lower() for word in SECRET_WORDS)


def _target_names(node: ast.AST) -> list[object]:
    """The names an assignment target writes: `x`, `a.x`, `a["x"]`, and those inside tuples."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.Subscript):
        key = node.slice
        return [key.value] if isinstance(key, ast.Constant) else []
    if isinstance(node, ast.Tuple | ast.List):
        return [name for element in node.elts for name in _target_names(element)]
    if isinstance(node, ast.Starred):
        return _target_names(node.value)
    return []


def _holds_secret(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.NamedExpr):
            targets = [node.target]
        elif isinstance(node, ast.keyword):
            targets = [ast.Name(str(node.arg))]
        elif isinstance(node, ast.Dict):
            targets = [ast.Name(k.value) for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        elif isinstance(node, ast.arguments):  # def f(password="...")
            targets = [ast.Name(a.arg) for a in (*node.posonlyargs, *node.args, *node.kwonlyargs)]
        if any(_secret_name(name) for target in targets for name in _target_names(target)):
            return True
    return False


def keep_in_history(text: str) -> bool:
    """False for entries that may carry a password, token or other secret."""
    if _ADD_CREDENTIAL.search(text):
        return False
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return not _ASSIGNED.search(text)
    return not _holds_secret(tree)


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
