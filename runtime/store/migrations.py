"""Schema versions of the SQLite store, and the forward migrations applied when a home is opened.

The version lives in SQLite's `PRAGMA user_version`. Release 0.1.0 wrote no version: a file
with the tables and version 0 is version 1. Opening applies every migration above the file's
version in one transaction, before anything else reads it; a file newer than this release
knows is refused and left untouched.

Adding a migration (docs/decisions.md says more): append `Migration(N + 1, "what", (SQL, ...))`
to MIGRATIONS — one statement per string, or a function of the connection for what SQL alone
cannot do — then teach `sqlite.py` the new column or table. Never edit a released migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from jcsh.runtime.errors import StoreError
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.store.interface import StoreFault

__all__ = ["Migration", "MIGRATIONS", "latest_version", "migrate", "file_version"]

Step = str | Callable[[sqlite3.Connection], None]


class Migration(NamedTuple):
    """Brings a store from version - 1 to version."""

    version: int
    summary: str
    steps: Sequence[Step]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "release 0.1.0: the registry tree, protocols, credentials, the key check",
        (
            "CREATE TABLE IF NOT EXISTS entry (path TEXT PRIMARY KEY, parent TEXT NOT NULL, value TEXT) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS entry_parent ON entry(parent)",
            "CREATE TABLE IF NOT EXISTS protocol (name TEXT PRIMARY KEY) WITHOUT ROWID",
            (
                "CREATE TABLE IF NOT EXISTS credential ("
                " protocol TEXT NOT NULL REFERENCES protocol(name), endpoint TEXT NOT NULL,"
                " virtual_user TEXT NOT NULL, real_user TEXT, secret BLOB, certificate TEXT,"
                " PRIMARY KEY (protocol, endpoint, virtual_user)) WITHOUT ROWID"
            ),
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID",
        ),
    ),
    Migration(
        2,
        "credential kinds (password, certificate, oauth2 client), an encrypted token cache, allow_plaintext",
        (
            "ALTER TABLE credential ADD COLUMN kind TEXT NOT NULL DEFAULT 'password'",
            "UPDATE credential SET kind = 'certificate' WHERE certificate IS NOT NULL",
            # The OAuth 2.0 client's non-secret settings as JSON: grant, token URL, client id, scope, held secrets.
            "ALTER TABLE credential ADD COLUMN oauth TEXT",
            "ALTER TABLE credential ADD COLUMN allow_plaintext INTEGER NOT NULL DEFAULT 0",
            # The cached access token (encrypted like every secret); replacing the credential drops it.
            "ALTER TABLE credential ADD COLUMN token BLOB",
        ),
    ),
)


def latest_version(migrations: Sequence[Migration] | None = None) -> int:
    """The schema version this release writes."""
    return (migrations or MIGRATIONS)[-1].version


def file_version(conn: sqlite3.Connection) -> tuple[int, bool]:
    """(the file's schema version, whether it is written in the file); 0.1.0's files say 0 but are 1."""
    (stamped,) = conn.execute("PRAGMA user_version").fetchone()
    if stamped:
        return stamped, True
    has_tables = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    return (1 if has_tables else 0), False


def migrate(
    conn: sqlite3.Connection,
    db: Path,
    *,
    read_only: bool,
    begin: Callable[[], object],
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Bring the file to this release's schema in one transaction; return the version it was at."""
    migrations = migrations or MIGRATIONS
    latest = latest_version(migrations)
    found, stamped = file_version(conn)
    _refuse_newer(db, found, latest)
    if found == latest and (stamped or read_only):
        return found
    if read_only:
        raise StoreError(
            f"{db} needs upgrading from schema version {found} to {latest}, but the home cannot be written",
            cause=StoreFault.READ_ONLY,
            path=str(db),
        )
    begin()  # BEGIN IMMEDIATE: another process may be migrating the same file right now
    try:
        found, stamped = file_version(conn)  # what the file says now that we hold the write lock
        _refuse_newer(db, found, latest)
        for migration in migrations:
            if migration.version > found:
                for step in migration.steps:
                    if isinstance(step, str):
                        conn.execute(step)
                    else:
                        step(conn)
        conn.execute(f"PRAGMA user_version = {int(latest)}")
    except sqlite3.Error:
        conn.execute("ROLLBACK")
        raise  # the caller says what SQLite's error means (disk full, damaged ...)
    except Exception as e:
        conn.execute("ROLLBACK")
        raise StoreError(
            f"cannot upgrade {db} to schema version {latest} ({type(e).__name__}: {e}); the file was not changed",
            cause=StoreFault.IO,
            path=str(db),
        ) from None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found


def _refuse_newer(db: Path, found: int, latest: int) -> None:
    if found > latest:
        raise StoreError(
            f"{db} was written by a newer release of jcsh (schema version {found}; this release knows up to "
            f"{latest}); upgrade jcsh to use this home — the file was not changed",
            cause=StoreFault.NEWER,
            path=str(db),
        )
