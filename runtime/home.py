"""The home folder: where the registry, the key and the history live."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from jcsh.runtime.errors import StoreError
from jcsh.runtime.records import NamedTuple

__all__ = [
    "resolve_home",
    "ensure_home",
    "home_warnings",
    "rekey_leftovers",
    "HomeWarning",
    "os_fault",
    "APP_NAME",
    "DB_NAME",
    "KEY_NAME",
]

APP_NAME = "jcsh"
DB_NAME = "registry.sqlite3"
KEY_NAME = "secret.key"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--home`, else `$JCSH_HOME`, else the platform's user data folder."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get("JCSH_HOME")
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs  # only when needed: it is not free at start-up

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def ensure_home(home: Path) -> Path:
    """Create the folder (mode 0700) if missing; an existing folder keeps its mode."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"the home {home} is not a folder", cause="missing", path=str(home)) from None
    except OSError as e:
        raise os_fault(e, home, writing=True) from None
    return home


def rekey_leftovers(home: Path) -> bool:
    """Did a `credential rekey` stop part-way here (`secret.key.new` or `.old` beside the key)?"""
    return (home / (KEY_NAME + ".new")).exists() or (home / (KEY_NAME + ".old")).exists()


def os_fault(e: OSError, path: Path, *, writing: bool) -> StoreError:
    """An operating-system error on a file of the home, as one line naming the path and the cause."""
    import errno

    verb = "write" if writing else "read"
    number = e.errno
    if number in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(f"cannot write {path}: the disk is full", cause="disk-full", path=str(path))
    if number == errno.EROFS:
        return StoreError(f"cannot write {path}: the home is read-only", cause="read-only", path=str(path))
    if number in (errno.EACCES, errno.EPERM):
        return StoreError(f"cannot {verb} {path}: permission denied", cause="permission-denied", path=str(path))
    if number in (errno.ENOENT, errno.ENOTDIR):
        return StoreError(f"{path} does not exist", cause="missing", path=str(path))
    return StoreError(f"cannot {verb} {path}: {e.strerror or e}", cause="io-error", path=str(path))


class HomeWarning(NamedTuple):
    """Something that makes the home unsafe for passwords, and the command that fixes it."""

    message: str
    fix: str

    def line(self) -> str:
        return f"{self.message}; run `{self.fix}`"


def home_warnings(home: Path) -> list[HomeWarning]:
    """Other users can reach the home or its key, or the key is not mode 0600."""
    found: list[HomeWarning] = []
    try:
        st = home.stat()
    except OSError:
        return found
    me = os.geteuid()
    if st.st_uid != me:
        found.append(
            HomeWarning(
                f"the home {home} is owned by another user ({_owner(st.st_uid)}), who can read its secrets",
                f"chown -R {_owner(me)} {home}",
            )
        )
    if st.st_mode & 0o077:
        found.append(
            HomeWarning(
                f"the home {home} can be opened by its group or others (mode {stat.S_IMODE(st.st_mode):04o})",
                f"chmod 700 {home}",
            )
        )
    key = home / KEY_NAME
    try:
        key_st = key.stat()
    except OSError:
        return found
    if stat.S_IMODE(key_st.st_mode) != 0o600:
        found.append(HomeWarning(f"{key} has mode {stat.S_IMODE(key_st.st_mode):04o}, not 0600", f"chmod 600 {key}"))
    if key_st.st_uid != me and st.st_uid == me:
        found.append(
            HomeWarning(f"{key} is owned by another user ({_owner(key_st.st_uid)})", f"chown {_owner(me)} {key}")
        )
    return found


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"
