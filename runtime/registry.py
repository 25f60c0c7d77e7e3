"""The registry: a tree of string values in SQLite, one transaction per change.

An entry has a path (`/configuration/mail/Server`), an optional value and any number of
children. Setting a value creates the missing ancestors without a value. Paths are
case-sensitive. Export gives a canonical JSON document (keys sorted, no timestamps), so
export -> import -> export is byte-identical.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from jcsh.runtime.errors import NotFound, UsageError

__all__ = [
    "Registry",
    "Child",
    "Extent",
    "open_registry",
    "validate_path",
    "validate_value",
    "split_path",
    "MAX_PATH",
    "MAX_VALUE",
    "DB_NAME",
]

DB_NAME = "registry.sqlite3"
MAX_PATH = 1024
MAX_VALUE = 64 * 1024
_BUSY_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    path   TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    value  TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entry_parent ON entry(parent);
CREATE TABLE IF NOT EXISTS protocol (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credential (
    protocol     TEXT NOT NULL REFERENCES protocol(name),
    endpoint     TEXT NOT NULL,
    virtual_user TEXT NOT NULL,
    real_user    TEXT,
    secret       BLOB,
    certificate  TEXT,
    PRIMARY KEY (protocol, endpoint, virtual_user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
"""


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # exactly Unicode's category Cc
_VALUE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # Cc but tab, LF, CR


def validate_path(path: object, *, allow_root: bool = False) -> str:
    """Return the path if it is a valid registry path, else raise UsageError saying why."""
    if not isinstance(path, str):
        raise UsageError(f"registry path must be a string, not {type(path).__name__}")
    shown = path if len(path) <= 80 else path[:77] + "..."
    if not path.startswith("/"):
        raise UsageError(f"registry path must be absolute (start with '/'): {shown!r}")
    if len(path) > MAX_PATH:
        raise UsageError(f"registry path is {len(path)} characters long; the limit is {MAX_PATH}")
    if _CONTROL.search(path):
        raise UsageError(f"registry path contains a control character: {shown!r}")
    if path == "/":
        if allow_root:
            return path
        raise UsageError("the root '/' holds no value; name an entry below it")
    for segment in path[1:].split("/"):
        if segment == "":
            raise UsageError(f"registry path has an empty segment: {shown!r}")
        if segment in (".", ".."):
            raise UsageError(f"registry path has a {segment!r} segment: {shown!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"registry path is not valid Unicode text: {shown!r}") from None
    return path


def validate_value(value: object) -> str:
    """Return the value if it can be stored, else raise UsageError saying why."""
    if not isinstance(value, str):
        raise UsageError(f"registry value must be a string, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError("registry value is not valid Unicode text (lone surrogate)") from None
    if size > MAX_VALUE:
        raise UsageError(f"registry value is {size} bytes; the limit is {MAX_VALUE} (64 KiB)")
    bad = _VALUE_CONTROL.search(value)
    if bad:
        # Values are printed by `registry get`/`ls`: an ESC stored here would drive the terminal later.
        raise UsageError(f"registry value contains the control character {bad.group()!r} (only tab and line breaks)")
    return value


def split_path(path: str) -> tuple[str, str]:
    """('/a/b', 'c') for '/a/b/c'; the parent of a top-level entry is '/'."""
    parent, _, name = path.rpartition("/")
    return (parent or "/"), name


def _sort_key(path: str) -> list[str]:
    return path.split("/")


def _subtree_bounds(path: str) -> tuple[str, str]:
    # Every descendant of P starts with P + "/" and sorts below P + "0" ("0" follows "/").
    prefix = "/" if path == "/" else path + "/"
    return prefix, prefix[:-1] + "0"


class Extent(NamedTuple):
    """How much a subtree or a listing holds, counted without reading it into memory."""

    entries: int
    bytes: int  # UTF-8 bytes of the paths and values


class Child(NamedTuple):
    """One child in a listing."""

    path: str
    name: str
    value: str | None
    has_children: bool


class Registry:
    """The registry tree over one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._depth = 0

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE); nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        _retry_locked(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        _retry_locked(lambda: self.conn.execute("COMMIT"))

    # -- reading ------------------------------------------------------------------------------

    def _row(self, path: str) -> tuple[str | None] | None:
        return self.conn.execute("SELECT value FROM entry WHERE path = ?", (path,)).fetchone()

    def exists(self, path: str) -> bool:
        validate_path(path, allow_root=True)
        return path == "/" or self._row(path) is not None

    def value(self, path: str) -> str | None:
        """The value at path, or None when the entry is absent or has no value."""
        validate_path(path)
        row = self._row(path)
        return row[0] if row else None

    def get(self, path: str) -> str:
        """The value at path; NotFound when the entry is absent or has no value."""
        validate_path(path)
        row = self._row(path)
        if row is None:
            raise NotFound(f"no registry entry at {path}")
        if row[0] is None:
            n = len(self.children(path))
            raise NotFound(f"{path} has no value (it has {n} children; see `jcsh registry ls {path}`)")
        return row[0]

    def values(self, paths: Sequence[str]) -> dict[str, str | None]:
        """The value at each path (None when the entry is absent or has no value), read in one pass."""
        for path in paths:
            validate_path(path)
        found: dict[str, str | None] = {}
        unique = list(dict.fromkeys(paths))
        for start in range(0, len(unique), 500):  # under SQLite's limit on bound parameters
            batch = unique[start : start + 500]
            marks = ",".join("?" * len(batch))
            found.update(self.conn.execute(f"SELECT path, value FROM entry WHERE path IN ({marks})", batch).fetchall())
        return {path: found.get(path) for path in paths}

    def children(self, path: str = "/") -> list[Child]:
        """The direct children of path, sorted by name."""
        validate_path(path, allow_root=True)
        if path != "/" and self._row(path) is None:
            raise NotFound(f"no registry entry at {path}")
        rows = self.conn.execute(
            "SELECT e.path, e.value, EXISTS(SELECT 1 FROM entry c WHERE c.parent = e.path) "
            "FROM entry e WHERE e.parent = ? ORDER BY e.path",
            (path,),
        ).fetchall()
        return [Child(p, split_path(p)[1], v, bool(h)) for p, v, h in rows]

    def walk(self, path: str = "/") -> list[tuple[str, str | None]]:
        """Every entry of the subtree (path included unless root), parents before children."""
        validate_path(path, allow_root=True)
        lo, hi = _subtree_bounds(path)
        rows = self.conn.execute(
            "SELECT path, value FROM entry WHERE path = ? OR (path >= ? AND path < ?)", (path, lo, hi)
        ).fetchall()
        if path != "/" and not any(p == path for p, _ in rows):
            raise NotFound(f"no registry entry at {path}")
        return sorted(rows, key=lambda r: _sort_key(r[0]))

    def extent(self, path: str = "/", *, children: bool = False, most: int) -> Extent:
        """The entries of walk(path) (or children(path)) and their bytes, counting at most `most` + 1."""
        validate_path(path, allow_root=True)
        params: tuple[str, ...] = (path,)
        where = "parent = ?"
        if not children:
            where = "path = ? OR (path >= ? AND path < ?)"
            params += _subtree_bounds(path)
        count, size = self.conn.execute(
            "SELECT COUNT(*), TOTAL(length(CAST(path AS BLOB)) + IFNULL(length(CAST(value AS BLOB)), 0)) "
            f"FROM (SELECT path, value FROM entry WHERE {where} LIMIT ?)",
            (*params, most + 1),
        ).fetchone()
        return Extent(int(count), int(size))

    def stored_bytes(self) -> int:
        """The size of the database in bytes, changes still in the WAL included."""
        (pages,) = self.conn.execute("PRAGMA page_count").fetchone()
        (page_size,) = self.conn.execute("PRAGMA page_size").fetchone()
        return int(pages) * int(page_size)

    # -- writing ------------------------------------------------------------------------------

    def set(self, path: str, value: str) -> None:
        """Set a value, creating missing ancestors without a value."""
        validate_path(path)
        validate_value(value)
        with self.transaction():
            self._ensure_ancestors(path)
            self.conn.execute(
                "INSERT INTO entry(path, parent, value) VALUES (?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET value = excluded.value",
                (path, split_path(path)[0], value),
            )

    def _ensure_ancestors(self, path: str) -> None:
        parent = split_path(path)[0]
        missing = []
        while parent != "/" and self._row(parent) is None:
            missing.append(parent)
            parent = split_path(parent)[0]
        self.conn.executemany(
            "INSERT INTO entry(path, parent, value) VALUES (?, ?, NULL)",
            [(p, split_path(p)[0]) for p in missing],
        )

    def delete(self, path: str, *, recursive: bool = False) -> int:
        """Remove an entry (and with recursive, its subtree); returns how many entries went."""
        validate_path(path)
        lo, hi = _subtree_bounds(path)
        with self.transaction():
            if self._row(path) is None:
                raise NotFound(f"no registry entry at {path}")
            below = self.conn.execute("SELECT COUNT(*) FROM entry WHERE path >= ? AND path < ?", (lo, hi)).fetchone()[0]
            if below and not recursive:
                raise UsageError(f"{path} has {below} entries below it; use -r to remove them too")
            self.conn.execute("DELETE FROM entry WHERE path = ? OR (path >= ? AND path < ?)", (path, lo, hi))
        return below + 1

    # -- export / import ----------------------------------------------------------------------

    def export(self, path: str = "/") -> dict[str, Any]:
        """The subtree as a document: {"path", "value", "children": {name: {"value", "children"}}}."""
        rows = self.walk(path)
        root: dict[str, Any] = {"value": None, "children": {}}
        nodes = {path: root}
        for p, v in rows:
            if p == path:
                root["value"] = v
                continue
            node: dict[str, Any] = {"value": v, "children": {}}
            parent, name = split_path(p)
            nodes[parent]["children"][name] = node
            nodes[p] = node
        return {"path": path, **root}

    def export_json(self, path: str = "/") -> str:
        import json  # lazily: most runs never print JSON

        return json.dumps(self.export(path), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def import_(self, document: object, *, replace: bool = False) -> int:
        """Merge (or with replace, substitute) a document's subtree; all or nothing."""
        path, entries = _flatten(document)
        with self.transaction():
            if replace:
                lo, hi = _subtree_bounds(path)
                self.conn.execute("DELETE FROM entry WHERE path = ? OR (path >= ? AND path < ?)", (path, lo, hi))
            if path != "/":
                self._ensure_ancestors(path)
            sql = (
                "INSERT INTO entry(path, parent, value) VALUES (?, ?, ?) ON CONFLICT(path) DO UPDATE "
                "SET value = COALESCE(excluded.value, entry.value)"
            )
            self.conn.executemany(sql, ((p, split_path(p)[0], v) for p, v in entries))
        return len(entries)

    def close(self) -> None:
        self.conn.close()


def _flatten(document: object) -> tuple[str, list[tuple[str, str | None]]]:
    """Validate a whole export document before anything is written."""
    if not isinstance(document, dict) or "path" not in document:
        raise UsageError('import document must be a JSON object with "path", "value" and "children"')
    path = validate_path(document["path"], allow_root=True)
    entries: list[tuple[str, str | None]] = []

    def visit(node: object, at: str) -> None:
        if not isinstance(node, dict) or not set(node) <= {"path", "value", "children"}:
            raise UsageError(f'import: entry {at} must be an object with "value" and "children"')
        value = node.get("value")
        if value is not None:
            if at == "/":
                raise UsageError("import: the root '/' holds no value")
            try:
                validate_value(value)
            except UsageError as e:
                raise UsageError(f"import: {at}: {e.message}") from None
        if at != "/":
            entries.append((at, value))
        children = node.get("children", {})
        if not isinstance(children, dict):
            raise UsageError(f'import: "children" of {at} must be an object')
        for name, child in children.items():
            child_path = ("" if at == "/" else at) + "/" + str(name)
            if "/" in name:
                raise UsageError(f"import: child name {name!r} of {at} contains '/'")
            try:
                validate_path(child_path)
            except UsageError as e:
                raise UsageError(f"import: {e.message}") from None
            visit(child, child_path)

    visit(document, path)
    return path, entries


def _retry_locked(action: Any, attempts: int = 200) -> Any:
    """Run an SQLite action, waiting out 'database is locked' beyond the busy timeout."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or attempt == attempts - 1:
                raise
            time.sleep(0.01 + 0.005 * min(attempt, 20))
    raise AssertionError("unreachable")


def open_registry(home: Path) -> Registry:
    """Open (creating if needed) the registry in a home folder, safe against concurrent openers."""
    db = home / DB_NAME
    if not db.exists():
        db.touch(mode=0o600, exist_ok=True)
    conn = sqlite3.connect(db, timeout=_BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    # Two processes opening a brand-new file race on the WAL switch and the schema; both retry.
    _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    registry = Registry(conn, db)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
        with registry.transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
    return registry
