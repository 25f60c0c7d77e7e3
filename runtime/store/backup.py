"""`jcsh backup` and `jcsh restore`: one file with a consistent snapshot of the store and its key.

The file is a tar archive (`tar tvf` lists it): `manifest.json` (format, versions, and the size
and SHA-256 of each member), `secret.key` when the home has one, and `registry.sqlite3` — a copy
made with SQLite's online backup API, so committed changes still in the `-wal` file are in it.
Restore unpacks into a folder inside the home, checks everything there (checksums, SQLite's
integrity check, the schema, the key against every secret), and only then swaps the files in,
putting the old ones back if the swap fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from jcsh.runtime.errors import StoreError, UsageError
from jcsh.runtime.home import DB_NAME, KEY_NAME, os_fault
from jcsh.runtime.keyfile import read_key, sync_folder
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.store.faults import damaged
from jcsh.runtime.store.interface import Store, StoreFault
from jcsh.runtime.store.sqlite import SqliteStore, open_sqlite

__all__ = [
    "FORMAT",
    "Snapshot",
    "Summary",
    "snapshot",
    "write_archive",
    "unpack",
    "install",
    "staging",
    "summary",
    "holds",
    "open_staged",
    "close_staged",
]

FORMAT = "jcsh-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_LIMITS = {MANIFEST: 64 * 1024, KEY_NAME: 1024, DB_NAME: 4 << 30}  # what restore reads of each member
_HOME_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", KEY_NAME, KEY_NAME + ".new", KEY_NAME + ".old")
_CHUNK = 1 << 20

Verify = Callable[[Store, "bytes | None"], int]  # raises StoreError unless the key opens every secret


class Summary(NamedTuple):
    """What a store holds, as the backup's manifest and the commands' output say it."""

    schema_version: int
    entries: int
    credentials: int
    secrets: int

    def line(self) -> str:
        return f"{self.entries} registry entries, {self.credentials} credentials"


class Snapshot(NamedTuple):
    database: Path  # a consistent copy, in a private folder
    key: bytes | None
    summary: Summary


def summary(store: Store, key: bytes | None, verify: Verify) -> Summary:
    """Check a store completely (SQLite's integrity check, the key against every secret) and count it."""
    problems = store.check()
    if problems:
        raise damaged(store.location, problems[0])
    secrets = verify(store, key)
    return Summary(store.schema_version(), store.count_below("/"), len(store.credentials()), secrets)


def snapshot(store: Store, home: Path, folder: Path, verify: Verify) -> Snapshot:
    """Copy the store into folder and read its key; again if a rekey changed the key meanwhile."""
    copy = folder / DB_NAME
    for attempt in range(3):
        for leftover in folder.iterdir():
            leftover.unlink()
        store.backup(copy)
        key_path = home / KEY_NAME
        key = read_key(key_path) if key_path.exists() else None
        snap = open_sqlite(folder)
        try:
            return Snapshot(copy, key, summary(snap, key, verify))
        except StoreError as e:
            if e.cause != StoreFault.DAMAGED or attempt == 2 or "key" not in e.message:
                raise
            time.sleep(0.2)  # a `credential rekey` is swapping the key: take both again
        finally:
            snap.close()
    raise AssertionError("unreachable")


def write_archive(snap: Snapshot, out: IO[bytes], *, version: str) -> int:
    """The backup file onto out (a stream: `-` works); returns how many bytes of store it holds."""
    members: list[tuple[str, bytes | Path]] = []
    if snap.key is not None:
        members.append((KEY_NAME, snap.key + b"\n"))
    members.append((DB_NAME, snap.database))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "jcsh": version,
        **snap.summary._asdict(),
        "members": {name: _describe(data) for name, data in members},
    }
    now = time.time()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n"), *members]:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o600, int(now)
            if isinstance(data, Path):
                info.size = data.stat().st_size
                with open(data, "rb") as f:
                    tar.addfile(info, f)
            else:
                info.size = len(data)
                tar.addfile(info, _Bytes(data))
    out.flush()
    return int(manifest["members"][DB_NAME]["size"])


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._at + size
        chunk, self._at = self._data[self._at : end], min(end, len(self._data))
        return chunk


def _describe(data: bytes | Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    if isinstance(data, bytes):
        digest.update(data)
        size = len(data)
    else:
        with open(data, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


@contextmanager
def staging(home: Path) -> Iterator[Path]:
    """A private folder inside the home (same file system: the swap is a rename), removed afterwards."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=".restore-", dir=home))
    except OSError as e:
        raise os_fault(e, home, writing=True) from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def unpack(source: IO[bytes], name: str, folder: Path) -> dict[str, Any]:
    """Unpack a backup into folder (registry.sqlite3, secret.key) checking every size and checksum;
    UsageError (exit 2) when it is not a whole jcsh backup. Returns the manifest."""
    manifest: dict[str, Any] | None = None
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            for member in tar:
                if member.name not in _LIMITS or not member.isfile() or member.name in seen:
                    raise UsageError(f"{name} is not a jcsh backup: it holds {member.name!r}")
                seen.add(member.name)
                if member.size > _LIMITS[member.name]:
                    raise UsageError(f"{name}: {member.name} is larger than a jcsh backup's can be")
                stream = tar.extractfile(member)
                assert stream is not None  # a regular file, checked above
                if member.name == MANIFEST:
                    manifest = _manifest(stream.read(), name)
                elif manifest is None:
                    raise UsageError(f"{name} is not a jcsh backup: {MANIFEST} does not come first")
                else:
                    _copy_member(stream, member, manifest, folder, name)
    except (tarfile.TarError, EOFError, json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        why = str(e) or type(e).__name__
        if manifest is None:
            raise UsageError(f"{name} is not a jcsh backup ({why})") from None
        raise UsageError(f"{name} is cut short or damaged ({why})") from None
    if manifest is None:
        raise UsageError(f"{name} is not a jcsh backup (no {MANIFEST})")
    missing = set(manifest["members"]) - seen
    if missing or DB_NAME not in seen:
        raise UsageError(f"{name} is cut short: {', '.join(sorted(missing or {DB_NAME}))} is missing")
    return manifest


def _manifest(data: bytes, name: str) -> dict[str, Any]:
    manifest = json.loads(data)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UsageError(f"{name} is not a jcsh backup (its manifest names no {FORMAT!r} format)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UsageError(
            f"{name} is a jcsh backup of format {manifest.get('format_version')!r}; this release reads "
            f"format {FORMAT_VERSION}"
        )
    members = manifest.get("members")
    if not isinstance(members, dict) or not set(members) <= {DB_NAME, KEY_NAME}:
        raise UsageError(f"{name}: the manifest's member list is not valid")
    return manifest


def _copy_member(stream: IO[bytes], member: tarfile.TarInfo, manifest: dict[str, Any], folder: Path, name: str) -> None:
    expected = manifest["members"].get(member.name)
    if not isinstance(expected, dict) or expected.get("size") != member.size:
        raise UsageError(f"{name} is damaged: {member.name} does not match its manifest")
    digest = hashlib.sha256()
    target = folder / member.name
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise os_fault(e, target, writing=True) from None
    if digest.hexdigest() != expected.get("sha256"):
        raise UsageError(f"{name} is damaged: the checksum of {member.name} does not match its manifest")


def install(staged: Path, home: Path, *, timeout: float) -> None:
    """Swap the staged store and key in for the home's own; on failure the home is left as it was.

    The old store is locked meanwhile (writers in other processes wait, then see the new file and
    refuse), and its files go to a folder that is removed afterwards.
    """
    previous = staged / "previous"
    previous.mkdir()
    lock = _lock(home / DB_NAME, timeout)
    moved: list[str] = []
    placed: list[str] = []
    try:
        for name in _HOME_FILES:
            if (home / name).exists():
                os.replace(home / name, previous / name)
                moved.append(name)
        for name in (DB_NAME, KEY_NAME):
            if (staged / name).exists():
                os.replace(staged / name, home / name)
                placed.append(name)
        sync_folder(home)
    except OSError as e:
        for name in placed:
            os.replace(home / name, staged / name)
        for name in moved:
            os.replace(previous / name, home / name)
        raise os_fault(e, home, writing=True) from None
    finally:
        if lock is not None:
            lock.close()  # the file moved away: SQLite neither checkpoints nor deletes by name


def _lock(db: Path, timeout: float) -> sqlite3.Connection | None:
    """The old store's write lock, when it is a database at all (a damaged one is replaced as it is)."""
    if not db.exists() or db.stat().st_size == 0:
        return None
    conn = sqlite3.connect(db, timeout=timeout, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as e:
        conn.close()
        if getattr(e, "sqlite_errorcode", 0) & 0xFF in (5, 6):  # BUSY, LOCKED
            raise StoreError(
                f"{db} is in use by another process (waited {timeout:g} s); stop it and restore again",
                cause=StoreFault.LOCKED,
                path=str(db),
            ) from None
        return None
    return conn


def open_staged(folder: Path) -> SqliteStore:
    """The unpacked store, opened (and brought to this release's schema) for checking."""
    return open_sqlite(folder)


def close_staged(store: SqliteStore) -> None:
    """Close the unpacked store with everything in its one file (no -wal left to lose in the swap)."""
    store.close()
    wal = store.location.with_name(DB_NAME + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise StoreError(f"cannot finish {store.location}: its -wal file was not folded in", cause=StoreFault.IO)


def holds(home: Path, verify: Verify) -> str | None:
    """What the home holds that a restore would replace (None: nothing, so no --force is needed)."""
    present = [name for name in _HOME_FILES if (home / name).exists()]
    if not present:
        return None
    if present != [DB_NAME] or (home / DB_NAME).stat().st_size == 0:
        return "a registry" if DB_NAME in present else f"{present[0]}"
    try:
        store = open_sqlite(home)
    except StoreError as e:
        return f"a registry that cannot be opened ({e.message})"
    try:
        if store.count_below("/") or store.protocols() or store.meta("key_check") is not None:
            return f"a registry ({Summary(0, store.count_below('/'), len(store.credentials()), 0).line()})"
    finally:
        store.close()
    return None  # a store with nothing in it, as any command leaves behind in a new home
