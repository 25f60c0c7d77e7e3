"""`secret.key`: reading and writing it safely, checking it against the store, and recovering a rekey
that stopped part-way (`secret.key.new` / `secret.key.old` left beside it)."""

from __future__ import annotations

import os
from pathlib import Path

from jcsh.runtime.errors import StoreError
from jcsh.runtime.home import KEY_NAME, os_fault
from jcsh.runtime.store import Store, StoreFault

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.fernet_key import FernetKey

__all__ = [
    "CHECK",
    "read_key",
    "write_key",
    "fernet_of",
    "opens",
    "pending_key",
    "previous_key",
    "recover_rekey",
    "check_key",
    "sync_folder",
]

CHECK = b"jcsh key check"  # encrypted into meta 'key_check': tells a right key from a wrong one
_MAX_KEY = 1024  # a Fernet key is 44 bytes; anything much larger is not a key file


def pending_key(home: Path) -> Path:
    return home / (KEY_NAME + ".new")


def previous_key(home: Path) -> Path:
    return home / (KEY_NAME + ".old")


def read_key(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_KEY + 1)
    except OSError as e:
        raise os_fault(e, path, writing=False) from None
    if len(data) > _MAX_KEY:
        raise StoreError(f"{path} is not a valid key file (over {_MAX_KEY} bytes)", cause=StoreFault.DAMAGED)
    return data.strip()


def write_key(path: Path, key: bytes, *, exclusive: bool = False) -> None:
    """Write a key file (0600) and make it durable before anything depends on it."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        try:
            path.unlink()
        except OSError:
            pass
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that renames and new files in it survive a crash."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fernet_of(path: Path, key: bytes | None = None) -> FernetKey:
    from jcsh.runtime.fernet_key import FernetKey

    try:
        return FernetKey(read_key(path) if key is None else key)
    except ValueError:
        raise StoreError(f"{path} is not a valid key file", cause=StoreFault.DAMAGED, path=str(path)) from None


def opens(fernet: FernetKey, token: bytes) -> bool:
    from jcsh.runtime.fernet_key import InvalidToken

    try:
        fernet.decrypt(token)
    except InvalidToken:
        return False
    return True


def _matches(path: Path, check: bytes | None) -> bool:
    try:
        fernet = fernet_of(path)
    except StoreError:
        return False
    return check is None or opens(fernet, check)


def recover_rekey(store: Store, home: Path) -> str | None:
    """Finish or roll back a rekey that stopped part-way; one line saying which (None: nothing to do).

    Whichever of secret.key, .new, .old decrypts the store's key check is the key: it becomes
    secret.key and the others go. The rekey commits only after .new is on disk, so one always does.
    """
    key, new, old = home / KEY_NAME, pending_key(home), previous_key(home)
    if not (new.exists() or old.exists()):
        return None
    check = store.meta("key_check")
    match = next((p for p in (key, new, old) if p.exists() and _matches(p, check)), None)
    if match is None:
        raise StoreError(
            f"a `credential rekey` stopped part-way and none of {key.name}, {new.name}, {old.name} in {home} "
            "decrypts the secrets; restore the home from a backup (`jcsh restore`); nothing was changed",
            cause=StoreFault.DAMAGED,
            path=str(key),
        )
    try:
        if match == key:
            message = (
                f"a `credential rekey` stopped before its commit and was rolled back: {key} still holds the key"
                if new.exists()
                else f"a `credential rekey` that stopped part-way was finished: {key} holds the new key"
            )
        elif match == new:
            os.replace(new, key)
            message = f"a `credential rekey` that stopped part-way was finished: {key} now holds the new key"
        else:
            os.replace(old, key)
            message = f"a `credential rekey` that stopped part-way was rolled back: {key} holds the old key again"
        for leftover in (new, old):
            if leftover.exists():
                leftover.unlink()
        sync_folder(home)
    except OSError as e:
        raise os_fault(e, key, writing=True) from None
    return message


def check_key(store: Store, key: bytes | None, *, what: str) -> int:
    """Raise StoreError unless key decrypts the key check and every secret of store; how many secrets."""
    check = store.meta("key_check")
    rows = [row for row in store.credentials() if row.secret is not None]
    if key is None:
        if check is None and not rows:
            return 0
        raise StoreError(f"{what} holds encrypted secrets but no key to decrypt them", cause=StoreFault.MISSING)
    from jcsh.runtime.fernet_key import FernetKey

    try:
        fernet = FernetKey(key)
    except ValueError:
        raise StoreError(f"the key of {what} is not a valid key", cause=StoreFault.DAMAGED) from None
    if check is not None and not opens(fernet, check):
        raise StoreError(f"the key of {what} does not match its secrets", cause=StoreFault.DAMAGED)
    for row in rows:
        if not opens(fernet, row.secret or b""):
            raise StoreError(
                f"the key of {what} does not decrypt the secret of {row.protocol} {row.endpoint} {row.virtual_user}",
                cause=StoreFault.DAMAGED,
            )
    return len(rows)
