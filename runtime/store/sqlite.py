"""The SQLite backend of the store: `registry.sqlite3` in the home folder, WAL mode, one transaction per change.

Every SQLite error leaves here as StoreError with its cause. Before each write the file is
checked to be the one that was opened (a home removed or replaced under a long-lived REPL is
refused, not written to a deleted file). A read-only home is opened read-only and serves reads.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from jcsh.runtime.annotations import TypeVar
from jcsh.runtime.errors import StoreError, UsageError
from jcsh.runtime.home import DB_NAME, os_fault
from jcsh.runtime.store.faults import damaged, filesystem_cause, sqlite_fault
from jcsh.runtime.store.health import full_check
from jcsh.runtime.store.interface import Child, CredentialRow, Entry, Extent, Identity, StoreFault
from jcsh.runtime.store.migrations import file_version, migrate
from jcsh.runtime.store.order import export_order

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["SqliteStore", "open_sqlite", "store_timeout", "TIMEOUT_ENV"]

TIMEOUT_ENV = "JCSH_STORE_TIMEOUT"
_DEFAULT_TIMEOUT = 30.0
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
_COLUMNS = "protocol, endpoint, virtual_user, real_user, secret, certificate, kind, oauth, allow_plaintext, token"
_CREDENTIAL = f"SELECT {_COLUMNS} FROM credential"
_IDENTITY = "protocol = ? AND endpoint = ? AND virtual_user = ?"
_T = TypeVar("_T")


def store_timeout() -> float:
    """How long to wait for a store another process holds: $JCSH_STORE_TIMEOUT seconds, else 30."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return _DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise UsageError(f"{TIMEOUT_ENV} must be a number of seconds from 0 to 86400, not {text!r}")
    return value


def _row(values: Any) -> CredentialRow:
    row = CredentialRow(*values)
    return row._replace(allow_plaintext=bool(row.allow_plaintext))


class SqliteStore:
    """The store over one SQLite connection (see `jcsh.runtime.store.Store`)."""

    def __init__(self, conn: sqlite3.Connection, db: Path, *, read_only: StoreFault | None, timeout: float) -> None:
        self._conn = conn
        self.location = db
        self.read_only = read_only is not None
        self._read_only_cause = read_only
        self._timeout = timeout
        self._depth = 0
        self._reading = 0
        self._sound = False  # SQLite's integrity check passed
        self._fit_to_write = False  # its quick check passed: no damaged page for a write to spread
        self._identity = _identity(db)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.location)!r})"

    # -- faults ---------------------------------------------------------------------------------

    def _fault(self, e: BaseException, *, writing: bool = False) -> BaseException:
        if isinstance(e, sqlite3.Error):
            return sqlite_fault(e, self.location, writing=writing, timeout=self._timeout)
        if isinstance(e, OSError):
            return os_fault(e, self.location, writing=writing)
        return e

    def _do(self, action: Callable[[], _T], *, writing: bool = False) -> _T:
        try:
            return action()
        except (sqlite3.Error, OSError) as e:
            raise self._fault(e, writing=writing) from None

    def _retry(self, action: Callable[[], _T]) -> _T:
        """Wait out "database is locked" that SQLite's own busy handler does not (the WAL switch race)."""
        deadline = time.monotonic() + self._timeout
        delay = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as e:
                if getattr(e, "sqlite_errorcode", 0) & 0xFF not in _BUSY or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 1.5, 0.1)

    def _check_writable(self) -> None:
        db = self.location
        if self._read_only_cause is StoreFault.DISK_FULL:
            raise StoreError(f"cannot write {db}: the disk is full", cause=StoreFault.DISK_FULL, path=str(db))
        if self._read_only_cause is StoreFault.READ_ONLY:
            raise StoreError(f"cannot write {db}: the home is read-only", cause=StoreFault.READ_ONLY, path=str(db))
        if self._read_only_cause is not None:
            raise StoreError(f"cannot write {db}: permission denied", cause=StoreFault.PERMISSION, path=str(db))

    def _check_identity(self) -> None:
        # Asked while holding the write lock, so that a `restore --force` cannot swap files in between.
        db = self.location
        try:
            now = _identity(db, strict=True)
        except FileNotFoundError:
            raise StoreError(
                f"the home {db.parent} was removed while jcsh was running ({db.name} is gone); nothing was written",
                cause=StoreFault.MISSING,
                path=str(db),
            ) from None
        except OSError as e:
            raise os_fault(e, db, writing=True) from None
        if now != self._identity:
            raise StoreError(
                f"{db} was replaced by another file while jcsh was running; nothing was written "
                "(start jcsh again to use the new one)",
                cause=StoreFault.REPLACED,
                path=str(db),
            )

    # -- transactions and health ----------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._check_writable()
        self._do(lambda: self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE")), writing=True)
        self._depth = 1
        try:
            self._check_identity()
            if not self._sound and not self._fit_to_write:
                self._quick_check()
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self._retry(lambda: self._conn.execute("COMMIT"))
        except (sqlite3.Error, OSError) as e:
            self._rollback()
            raise self._fault(e, writing=True) from None

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolls back by itself when it cannot continue; nothing was committed

    @contextmanager
    def reading(self) -> Iterator[None]:
        if self._depth or self._reading:
            yield
            return
        self._do(lambda: self._conn.execute("BEGIN"))
        self._reading = 1
        try:
            yield
        finally:
            self._reading = 0
            self._rollback()  # a read transaction has nothing to commit

    def confirm_sound(self) -> None:
        if self._sound:
            return
        rows = self._do(lambda: self._conn.execute("PRAGMA integrity_check(3)").fetchall())
        if rows != [("ok",)]:
            raise damaged(self.location, "; ".join(str(r[0]) for r in rows))
        self._sound = True

    def _quick_check(self) -> None:
        # Before the first write: a write into a damaged b-tree spreads the damage (O(pages), not O(rows log rows)).
        rows = self._do(lambda: self._conn.execute("PRAGMA quick_check(3)").fetchall())
        if rows != [("ok",)]:
            raise damaged(self.location, "; ".join(str(r[0]) for r in rows))
        self._fit_to_write = True

    def check(self) -> list[str]:

        problems = full_check(self._conn, self.location)
        self._sound = not problems
        return problems

    def schema_version(self) -> int:
        return self._do(lambda: file_version(self._conn)[0])

    def backup(self, target: Path) -> None:
        try:
            copy = sqlite3.connect(target)
            try:
                self._conn.backup(copy)
            finally:
                copy.close()
        except sqlite3.Error as e:
            if getattr(e, "sqlite_errorcode", 0) & 0xFF in (11, 26):  # CORRUPT, NOTADB: the source
                raise damaged(self.location, str(e)) from None
            raise sqlite_fault(e, target, writing=True, timeout=self._timeout) from None
        except OSError as e:
            raise os_fault(e, target, writing=True) from None

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass

    # -- the registry tree ----------------------------------------------------------------------

    def entry(self, path: str) -> Entry | None:
        # _do written out: this is every registry.get, and the closure costs as much as the row's copy.
        try:
            row = self._conn.execute("SELECT value FROM entry WHERE path = ?", (path,)).fetchone()
        except (sqlite3.Error, OSError) as e:
            raise self._fault(e) from None
        return None if row is None else Entry(row[0])

    def children(self, path: str) -> Iterator[Child]:
        cut = 1 if path == "/" else len(path) + 1
        sql = (
            "SELECT e.path, e.value, EXISTS(SELECT 1 FROM entry c WHERE c.parent = e.path) "
            "FROM entry e WHERE e.parent = ? ORDER BY e.path"
        )
        try:
            for p, v, has in self._conn.execute(sql, (path,)):
                yield Child(p, p[cut:], v, bool(has))
        except sqlite3.Error as e:
            raise self._fault(e) from None

    def subtree(self, path: str) -> Iterator[tuple[str, str | None]]:

        prefix = "/" if path == "/" else path + "/"
        try:
            yield from export_order(self._conn, prefix, prefix[:-1] + "0")  # "0" follows "/": the end of the range
        except sqlite3.Error as e:
            raise self._fault(e) from None

    def count_below(self, path: str) -> int:
        prefix = "/" if path == "/" else path + "/"
        sql = "SELECT COUNT(*) FROM entry WHERE path >= ? AND path < ?"
        return int(self._do(lambda: self._conn.execute(sql, (prefix, prefix[:-1] + "0")).fetchone()[0]))

    def extent(self, path: str, *, children: bool, most: int) -> Extent:
        prefix = "/" if path == "/" else path + "/"
        where, params = "parent = ?", [path]
        if not children:
            where, params = "path = ? OR (path >= ? AND path < ?)", [path, prefix, prefix[:-1] + "0"]
        sql = (
            "SELECT COUNT(*), TOTAL(length(CAST(path AS BLOB)) + IFNULL(length(CAST(value AS BLOB)), 0)) "
            f"FROM (SELECT path, value FROM entry WHERE {where} LIMIT ?)"
        )
        count, size = self._do(lambda: self._conn.execute(sql, (*params, most + 1)).fetchone())
        return Extent(int(count), int(size))

    def stored_bytes(self) -> int:
        pages = self._one("PRAGMA page_count", ())[0]
        page_size = self._one("PRAGMA page_size", ())[0]
        return int(pages) * int(page_size)

    def put_entries(self, rows: Iterable[tuple[str, str | None]]) -> None:
        self._do(lambda: self._conn.executemany(_PUT_ENTRY, rows), writing=True)

    def put_tree_entries(self, rows: Iterable[tuple[str, str, str | None]]) -> None:
        self._do(lambda: self._conn.executemany(_PUT_TREE_ENTRY, rows), writing=True)

    def delete_subtree(self, path: str) -> None:
        prefix = "/" if path == "/" else path + "/"
        sql = "DELETE FROM entry WHERE path = ? OR (path >= ? AND path < ?)"
        self._do(lambda: self._conn.execute(sql, (path, prefix, prefix[:-1] + "0")), writing=True)

    # -- protocols and credentials --------------------------------------------------------------

    def protocols(self) -> list[str]:
        return self._do(lambda: [r[0] for r in self._conn.execute("SELECT name FROM protocol ORDER BY name")])

    def has_protocol(self, name: str) -> bool:
        return self._one("SELECT 1 FROM protocol WHERE name = ?", (name,)) is not None

    def add_protocol(self, name: str) -> None:
        self._do(lambda: self._conn.execute("INSERT INTO protocol(name) VALUES (?)", (name,)), writing=True)

    def remove_protocol(self, name: str) -> None:
        self._do(lambda: self._conn.execute("DELETE FROM protocol WHERE name = ?", (name,)), writing=True)

    def protocol_users(self, name: str) -> int:
        return int(self._one("SELECT COUNT(*) FROM credential WHERE protocol = ?", (name,))[0])

    def credential(self, identity: Identity) -> CredentialRow | None:
        row = self._one(f"{_CREDENTIAL} WHERE {_IDENTITY}", tuple(identity))
        return None if row is None else _row(row)

    def credentials(self, protocol: str | None = None) -> list[CredentialRow]:
        where, params = ("", ()) if protocol is None else (" WHERE protocol = ?", (protocol,))
        sql = f"{_CREDENTIAL}{where} ORDER BY protocol, endpoint, virtual_user"
        return self._do(lambda: [_row(r) for r in self._conn.execute(sql, params)])

    def put_credential(self, row: CredentialRow) -> None:
        sql = f"INSERT OR REPLACE INTO credential({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        values = (*row[:8], int(row.allow_plaintext), row.token)
        self._do(lambda: self._conn.execute(sql, values), writing=True)

    def delete_credential(self, identity: Identity) -> bool:
        cur = self._do(
            lambda: self._conn.execute(f"DELETE FROM credential WHERE {_IDENTITY}", tuple(identity)), writing=True
        )
        return cur.rowcount > 0

    def set_secret(self, identity: Identity, secret: bytes) -> None:
        sql = f"UPDATE credential SET secret = ? WHERE {_IDENTITY}"
        self._do(lambda: self._conn.execute(sql, (secret, *identity)), writing=True)

    def set_token(self, identity: Identity, token: bytes | None) -> None:
        sql = f"UPDATE credential SET token = ? WHERE {_IDENTITY}"
        self._do(lambda: self._conn.execute(sql, (token, *identity)), writing=True)

    # -- meta -----------------------------------------------------------------------------------

    def meta(self, key: str) -> bytes | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row[0]

    def set_meta(self, key: str, value: bytes) -> None:
        sql = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
        self._do(lambda: self._conn.execute(sql, (key, value)), writing=True)

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._do(lambda: self._conn.execute(sql, params).fetchone())


# The parent is everything before the last "/" ("/" for a top-level entry), computed in SQLite so that
# a million-entry import makes no Python call per row for it: rtrim(p, Y) strips the characters of Y,
# which are all but "/", from the right.
# The row comes in as plain `?` parameters (numbered ones with a sequence are deprecated since
# Python 3.12 and an error in 3.14); the sub-select names them once, and `WHERE true` is how
# SQLite's grammar lets an upsert follow a SELECT.
_PARENT = "COALESCE(NULLIF(rtrim(rtrim(p, replace(p, '/', '')), '/'), ''), '/')"
_PUT_ENTRY = (
    f"INSERT INTO entry(path, parent, value) SELECT p, {_PARENT}, v FROM (SELECT ? AS p, ? AS v) WHERE true "
    "ON CONFLICT(path) DO UPDATE SET value = COALESCE(excluded.value, entry.value)"
)
# An import walks the tree and so knows each parent for free: bound as given, a million rows go in
# in half the time of _PUT_ENTRY's (2.2 s against 4.7 s), whose rtrim with a set of ~20 characters
# compares every character of the path with each of them.
_PUT_TREE_ENTRY = (
    "INSERT INTO entry(path, parent, value) VALUES (?, ?, ?) "
    "ON CONFLICT(path) DO UPDATE SET value = COALESCE(excluded.value, entry.value)"
)


def _identity(db: Path, *, strict: bool = False) -> tuple[int, int] | None:
    try:
        st = os.stat(db)
    except OSError:
        if strict:
            raise
        return None
    return st.st_dev, st.st_ino


def _read_only_cause(home: Path, db: Path) -> StoreFault | None:
    """None when the home can be written; else why not (a read-only file system, or permissions)."""
    if os.access(home, os.W_OK) and (not db.exists() or os.access(db, os.W_OK)):
        return None
    return StoreFault.READ_ONLY if filesystem_cause(home) is StoreFault.READ_ONLY else StoreFault.PERMISSION


def _connect_read_only(db: Path, timeout: float) -> sqlite3.Connection:
    from urllib.parse import quote

    if not db.exists():
        raise FileNotFoundError(2, "No such file or directory", str(db))
    wal = db.with_name(db.name + "-wal")
    # Nothing waiting in a WAL: the file alone is the whole store, and SQLite need not create its -shm.
    immutable = not wal.exists() or wal.stat().st_size == 0
    uri = f"file:{quote(str(db))}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)


def open_sqlite(home: Path, *, timeout: float | None = None) -> SqliteStore:
    """Open (creating if needed) `registry.sqlite3` in a home, migrated; safe against concurrent openers."""
    db = home / DB_NAME
    timeout = store_timeout() if timeout is None else timeout
    read_only = _read_only_cause(home, db)
    conn: sqlite3.Connection | None = None
    try:
        if read_only is None:
            if not db.exists():
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(db, timeout=timeout, isolation_level=None, check_same_thread=False)
        else:
            conn = _connect_read_only(db, timeout)
        return _prepare(conn, db, read_only, timeout)
    except BaseException as e:
        if conn is not None:
            conn.close()
        if isinstance(e, sqlite3.Error):
            fault = sqlite_fault(e, db, writing=False, timeout=timeout)
            if fault.cause == StoreFault.DISK_FULL and read_only is None:
                return _open_on_full_disk(db, timeout, fault)
            raise fault from None
        if isinstance(e, FileNotFoundError) and read_only is not None:
            why = "the home is read-only" if read_only is StoreFault.READ_ONLY else "permission denied"
            raise StoreError(f"cannot create {db}: {why}", cause=read_only, path=str(db)) from None
        if isinstance(e, OSError):
            raise os_fault(e, db, writing=read_only is None) from None
        raise


def _open_on_full_disk(db: Path, timeout: float, fault: StoreError) -> SqliteStore:
    """Reads still work on a full disk when the file alone holds the store; writes say the disk is full."""
    try:
        return _prepare(_connect_read_only(db, timeout), db, StoreFault.DISK_FULL, timeout)
    except (sqlite3.Error, OSError):
        raise fault from None


def _prepare(conn: sqlite3.Connection, db: Path, read_only: StoreFault | None, timeout: float) -> SqliteStore:
    store = SqliteStore(conn, db, read_only=read_only, timeout=timeout)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    if read_only is None:
        # Two processes opening a brand-new file race on the WAL switch and the schema; both wait.
        store._retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    begin = lambda: store._retry(lambda: conn.execute("BEGIN IMMEDIATE"))  # noqa: E731
    migrate(conn, db, read_only=read_only is not None, begin=begin)
    return store
