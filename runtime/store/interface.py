"""The store interface: the Protocol a backend implements, the rows it trades in, the faults it names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path

from jcsh.runtime.annotations import Protocol
from jcsh.runtime.records import NamedTuple

__all__ = [
    "Store",
    "StoreFault",
    "Child",
    "Entry",
    "Extent",
    "CredentialRow",
    "Identity",
    "parent_of",
]


class StoreFault(StrEnum):
    """Why a store cannot be used: `error.cause` in `--json`, and in scripts."""

    DISK_FULL = "disk-full"
    READ_ONLY = "read-only"
    PERMISSION = "permission-denied"
    MISSING = "missing"
    REPLACED = "replaced"
    DAMAGED = "damaged"
    LOCKED = "locked"
    NEWER = "newer-release"
    IO = "io-error"


class Entry(NamedTuple):
    """A registry entry that exists; its value may be None (an entry that only has children)."""

    value: str | None


class Child(NamedTuple):
    """One child in a listing."""

    path: str
    name: str
    value: str | None
    has_children: bool


class Extent(NamedTuple):
    """How much a subtree or a listing holds, counted without reading it into memory."""

    entries: int
    bytes: int  # UTF-8 bytes of the paths and values


class Identity(NamedTuple):
    """What names a credential: protocol + endpoint + virtual user (case-sensitive)."""

    protocol: str
    endpoint: str
    virtual_user: str


class CredentialRow(NamedTuple):
    """A credential as stored: the secret is the encrypted token, never plaintext."""

    protocol: str
    endpoint: str
    virtual_user: str
    real_user: str | None
    secret: bytes | None
    certificate: str | None
    kind: str = "password"  # password | certificate | oauth2
    oauth: str | None = None  # an OAuth 2.0 client's settings as JSON (never a secret)
    allow_plaintext: bool = False  # may its secret cross an unencrypted connection (`--allow-plaintext`)
    token: bytes | None = None  # the cached access token, encrypted

    @property
    def identity(self) -> Identity:
        return Identity(self.protocol, self.endpoint, self.virtual_user)


def parent_of(path: str) -> str:
    """'/a/b' for '/a/b/c'; the parent of a top-level entry is '/'."""
    return path.rpartition("/")[0] or "/"


class Store(Protocol):
    """A registry tree, protocols, credentials and a few meta values, with transactions."""

    location: Path  # the file (or, for a server, what names it) that messages show
    read_only: bool

    # -- transactions and health --------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction, all or nothing; nested uses join the outer one."""

    def reading(self) -> AbstractContextManager[None]:
        """A consistent view across several reads (an export); nested uses join the outer one."""

    def confirm_sound(self) -> None:
        """Raise StoreError (damaged) unless the store is sound; cheap after the first call."""

    def check(self) -> list[str]:
        """Every problem a full check finds (empty: sound); never raises for damage it can name."""

    def schema_version(self) -> int: ...

    def backup(self, target: Path) -> None:
        """A consistent copy of the whole store as one new file (committed changes all included)."""

    def close(self) -> None: ...

    # -- the registry tree --------------------------------------------------------------------

    def entry(self, path: str) -> Entry | None: ...

    def children(self, path: str) -> Iterator[Child]:
        """The direct children of path, by name."""

    def subtree(self, path: str) -> Iterator[tuple[str, str | None]]:
        """Every descendant of path (not path itself) as (path, value), streamed in export order:
        sorted per path segment, each entry before its children."""

    def count_below(self, path: str) -> int: ...

    def extent(self, path: str, *, children: bool, most: int) -> Extent:
        """The entries of path's subtree (path included), or of its children, and their bytes,
        counting at most `most` + 1 of them."""

    def stored_bytes(self) -> int:
        """The size of the whole store in bytes, changes not yet folded in included."""

    def put_entries(self, rows: Iterable[tuple[str, str | None]]) -> None:
        """Add entries (path, value); an existing entry takes the new value unless it is None."""

    def put_tree_entries(self, rows: Iterable[tuple[str, str, str | None]]) -> None:
        """put_entries with each row's parent given by the caller: (path, parent_of(path), value)."""

    def delete_subtree(self, path: str) -> None:
        """Remove path and everything below it ('/' : every entry)."""

    # -- protocols and credentials ------------------------------------------------------------

    def protocols(self) -> list[str]: ...

    def has_protocol(self, name: str) -> bool: ...

    def add_protocol(self, name: str) -> None: ...

    def remove_protocol(self, name: str) -> None: ...

    def protocol_users(self, name: str) -> int:
        """How many credentials use the protocol."""

    def credential(self, identity: Identity) -> CredentialRow | None: ...

    def credentials(self, protocol: str | None = None) -> list[CredentialRow]:
        """By protocol, endpoint, virtual user."""

    def put_credential(self, row: CredentialRow) -> None:
        """Add or replace the credential with this identity."""

    def delete_credential(self, identity: Identity) -> bool: ...

    def set_secret(self, identity: Identity, secret: bytes) -> None: ...

    def set_token(self, identity: Identity, token: bytes | None) -> None:
        """Cache (or, with None, drop) a credential's encrypted access token."""

    # -- meta values (the key check) ----------------------------------------------------------

    def meta(self, key: str) -> bytes | None: ...

    def set_meta(self, key: str, value: bytes) -> None: ...
