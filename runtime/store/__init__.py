"""The store seam: what the registry and the credentials need from a storage backend.

Like prompt_toolkit's `History`, the interface is small and abstract, and a backend module
implements it: `runtime/store/sqlite.py` (one SQLite file in the home folder) is the only one
today; a shared PostgreSQL registry would be a second module beside it and nothing else would
change. Every SQLite-specific line (every `import sqlite3`) lives in this package.

Backends report every fault as `StoreError` (exit 74) with a `cause` from `StoreFault`, never as
their driver's exception, and never as "not found": a lookup that finds nothing asks
`confirm_sound()` first.
"""

from __future__ import annotations

from pathlib import Path

from jcsh.runtime.store.interface import (
    Child,
    CredentialRow,
    Entry,
    Extent,
    Identity,
    Store,
    StoreFault,
    parent_of,
)

__all__ = [
    "Store",
    "StoreFault",
    "Child",
    "Entry",
    "Extent",
    "CredentialRow",
    "Identity",
    "parent_of",
    "open_store",
]


def open_store(home: Path) -> Store:
    """The store of a home folder, migrated to this release's schema (created when missing)."""
    from jcsh.runtime.store.sqlite import open_sqlite

    return open_sqlite(home)
