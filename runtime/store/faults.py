"""SQLite's errors, told apart: one line naming the file and the cause, as StoreError (exit 74)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from jcsh.runtime.errors import StoreError
from jcsh.runtime.store.interface import StoreFault

__all__ = ["sqlite_fault", "damaged", "filesystem_cause"]

# SQLite's primary result codes (the low byte of the extended code Python exposes)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _AUTH, _NOTADB = (
    3,
    5,
    6,
    8,
    10,
    11,
    13,
    14,
    23,
    26,
)
_READONLY_DBMOVED = _READONLY | (4 << 8)  # the file was renamed or deleted under an open connection


def damaged(db: Path, detail: str) -> StoreError:
    """The one line for a damaged store (SQLite's own reports run over several lines)."""
    lines = [line.strip() for line in detail.replace("*** in database main ***", "").splitlines()]
    detail = "; ".join(line for line in lines if line)[:300]
    return StoreError(
        f"{db.name} is damaged ({detail}); run `jcsh registry check` ({db})", cause=StoreFault.DAMAGED, path=str(db)
    )


def filesystem_cause(path: Path) -> StoreFault | None:
    """Disk full or read-only, asked of the file system itself (SQLite's I/O errors do not say which)."""
    folder = path if path.is_dir() else path.parent
    try:
        fs = os.statvfs(folder)
    except OSError:
        return None
    if fs.f_flag & os.ST_RDONLY:
        return StoreFault.READ_ONLY
    if fs.f_bavail == 0 or (fs.f_files and fs.f_favail == 0):
        return StoreFault.DISK_FULL
    return None


def sqlite_fault(e: sqlite3.Error, db: Path, *, writing: bool, timeout: float) -> StoreError:
    """The StoreError that says what happened to db, from SQLite's error code and the file system."""
    code = getattr(e, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    detail = str(e) or type(e).__name__
    where = str(db)
    if primary in (_CORRUPT, _NOTADB):
        return damaged(db, detail)
    if primary is None and detail.startswith("Could not decode to UTF-8"):
        column = detail.split("'")[1] if detail.count("'") >= 2 else "?"
        return damaged(db, f"a text in column {column!r} is not valid UTF-8")
    if primary in (_BUSY, _LOCKED):
        return StoreError(
            f"{db} is locked by another process (waited {timeout:g} s); try again when it is done",
            cause=StoreFault.LOCKED,
            path=where,
        )
    if code == _READONLY_DBMOVED:
        return StoreError(
            f"{db} was moved or removed while jcsh had it open; nothing was written",
            cause=StoreFault.REPLACED,
            path=where,
        )
    cause = filesystem_cause(db)
    if primary == _FULL or (cause is StoreFault.DISK_FULL and primary in (_IOERR, _CANTOPEN, _READONLY, None)):
        return StoreError(f"cannot write {db}: the disk is full", cause=StoreFault.DISK_FULL, path=where)
    if cause is StoreFault.READ_ONLY:
        return StoreError(f"cannot write {db}: the home is read-only", cause=StoreFault.READ_ONLY, path=where)
    if primary == _READONLY and code == _READONLY and os.access(db, os.W_OK) and os.access(db.parent, os.W_OK):
        return damaged(db, "its header does not allow writing")
    if primary in (_READONLY, _PERM, _AUTH) or (primary == _CANTOPEN and _denied(db)):
        verb = "write" if writing or primary == _READONLY else "read"
        return StoreError(f"cannot {verb} {db}: permission denied", cause=StoreFault.PERMISSION, path=where)
    if primary == _CANTOPEN and not db.parent.exists():
        return StoreError(f"the home {db.parent} does not exist", cause=StoreFault.MISSING, path=str(db.parent))
    verb = "write" if writing else "read"
    return StoreError(f"cannot {verb} {db}: {detail}", cause=StoreFault.IO, path=where)


def _denied(db: Path) -> bool:
    folder = db.parent
    return not os.access(folder, os.X_OK) or (db.exists() and not os.access(db, os.R_OK))
