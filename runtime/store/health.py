"""What SQLite's own integrity check does not look at: the header's format bytes, and text that is
not UTF-8 (SQLite stores what it is given; Python cannot read it back)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["full_check"]


def full_check(conn: sqlite3.Connection, db: Path) -> list[str]:
    """Every problem found (empty: sound): the header, SQLite's integrity check, foreign keys,
    registry entries without a parent, texts that are not UTF-8. Never raises for damage."""
    try:
        problems = _header_problems(db)
        problems += [str(r[0]) for r in conn.execute("PRAGMA integrity_check(100)") if r != ("ok",)]
        for table, _, parent, _ in conn.execute("PRAGMA foreign_key_check"):
            problems.append(f"a row of {table} names a {parent} that does not exist")
        orphans = conn.execute(
            "SELECT path FROM entry e WHERE parent != '/' AND NOT EXISTS "
            "(SELECT 1 FROM entry p WHERE p.path = e.parent) ORDER BY path LIMIT 20"
        ).fetchall()
        problems += [f"registry entry {p} has no parent entry" for (p,) in orphans]
        problems += _undecodable(conn)
    except sqlite3.Error as e:
        problems = [str(e)]
    return problems


_TEXT_COLUMNS = (
    ("entry", "path", "parent, value"),
    ("credential", "protocol", "endpoint, virtual_user, real_user, certificate"),
    ("protocol", "name", "name"),
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header_problems(db: Path) -> list[str]:
    """What SQLite's integrity check does not look at: the file header's format bytes."""
    try:
        with open(db, "rb") as f:
            header = f.read(100)
    except OSError as e:
        return [f"cannot read the header: {e.strerror}"]
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return ["the file does not start with an SQLite header"]
    if header[18] not in (1, 2) or header[19] not in (1, 2):
        return [f"the header's format bytes are {header[18]} and {header[19]} (1 or 2 expected)"]
    return []


def _undecodable(conn: sqlite3.Connection) -> list[str]:
    found: list[str] = []
    conn.text_factory = bytes
    try:
        for table, key, columns in _TEXT_COLUMNS:
            for row in conn.execute(f"SELECT {key}, {columns} FROM {table}"):
                for column, text in zip([key, *columns.split(", ")], row, strict=True):
                    if isinstance(text, bytes) and not _is_utf8(text):
                        where = row[0].decode("utf-8", "replace")[:80]
                        found.append(f"{table} {where!r}: {column} is not valid UTF-8")
                        break
            if len(found) >= 20:
                break
    finally:
        conn.text_factory = str
    return found
