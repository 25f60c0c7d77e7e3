"""`jcsh backup FILE` and `jcsh restore FILE`: the whole home as one file, and back."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING

from jcsh.runtime.errors import StoreError, UsageError
from jcsh.shell.commands import syntax
from jcsh.shell.context import Context

if TYPE_CHECKING:
    from jcsh.runtime.store import Store

__all__ = ["cmd_backup", "cmd_restore"]


def _verify(what: str) -> Callable[[Store, bytes | None], int]:
    from jcsh.runtime.keyfile import check_key

    def verify(store: Store, key: bytes | None) -> int:
        return check_key(store, key, what=what)

    return verify


def _backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the backup file to write (mode 0600, replaced whole); - for stdout")


@syntax("backup", "a consistent snapshot of the home (registry, credentials, key) as one file", _backup_arguments)
def cmd_backup(ctx: Context, args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from jcsh.runtime import __version__
    from jcsh.runtime.home import os_fault
    from jcsh.runtime.keyfile import sync_folder
    from jcsh.runtime.store.backup import snapshot, write_archive

    to_stdout = args.file == "-"
    if to_stdout and ctx.json:
        raise UsageError("--json and `backup -` both want standard output; give a FILE")
    if to_stdout and ctx.out.isatty():
        raise UsageError("standard output is a terminal: give a FILE, or redirect it (`jcsh backup - > FILE`)")
    target = Path(args.file).absolute()
    if not to_stdout and not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: the folder {target.parent} does not exist")
    registry = ctx.registry
    where = None if to_stdout else target.parent
    try:
        folder = Path(tempfile.mkdtemp(prefix=".jcsh-backup-", dir=where))
    except OSError as e:
        raise os_fault(e, where or Path(tempfile.gettempdir()), writing=True) from None
    try:
        snap = snapshot(registry.store, ctx.home, folder, _verify(f"the home {ctx.home}"))
        if to_stdout:
            size = write_archive(snap, ctx.out.buffer, version=__version__)
        else:
            partial = folder / "backup"
            try:
                with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                    size = write_archive(snap, f, version=__version__)
                    os.fsync(f.fileno())
                os.replace(partial, target)  # whole or not at all: an old backup is never half overwritten
            except OSError as e:
                raise os_fault(e, target, writing=True) from None
            sync_folder(target.parent)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    data = {"file": args.file if to_stdout else str(target), "database_bytes": size, **snap.summary._asdict()}
    text = f"backed up {ctx.home} to {'standard output' if to_stdout else target}: {snap.summary.line()}"
    if to_stdout:
        ctx.warn(text)  # stdout holds the backup itself
    else:
        ctx.emit(data, text)
    return 0


def _restore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a file written by `jcsh backup`; - reads stdin")
    p.add_argument("--force", action="store_true", help="replace the registry and key the home already holds")


@syntax(
    "restore",
    "put a backup into an empty home (--home DIR; --force replaces what is there), checked before it commits",
    _restore_arguments,
)
def cmd_restore(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.store.backup import close_staged, holds, install, open_staged, staging, summary, unpack
    from jcsh.runtime.store.sqlite import store_timeout

    home = ctx.home
    verify = _verify(f"the backup {args.file}")
    present = holds(home, verify)
    if present and not args.force:
        raise UsageError(
            f"{home} already holds {present}; restore into an empty home (--home DIR), or add --force to "
            "replace it (`jcsh backup FILE` first keeps a copy)"
        )
    name = "standard input" if args.file == "-" else args.file
    with staging(home) as folder:
        with _source(ctx, args.file) as source:
            manifest = unpack(source, name, folder)
        try:
            store = open_staged(folder)
        except StoreError as e:
            raise StoreError(f"{name}: {e.message}", cause=e.cause) from None
        try:
            key_file = folder / "secret.key"
            key = key_file.read_bytes().strip() if key_file.exists() else None
            found = summary(store, key, verify)
        except StoreError as e:
            store.close()
            raise UsageError(f"{name} cannot be restored: {e.message}; the home was not changed") from None
        close_staged(store)
        install(folder, home, timeout=store_timeout())
    data = {
        "home": str(home),
        "file": args.file,
        "created": manifest.get("created"),
        "jcsh": manifest.get("jcsh"),
        "replaced": bool(present),
        **found._asdict(),
    }
    made = f"made {manifest.get('created')} by jcsh {manifest.get('jcsh')}"
    ctx.emit(data, f"restored {found.line()} into {home} from {name} ({made})")
    return 0


def _source(ctx: Context, name: str) -> AbstractContextManager[IO[bytes]]:
    if name == "-":
        if ctx.interactive:
            raise UsageError("standard input is a terminal: give a FILE, or redirect it (`jcsh restore - < FILE`)")
        raw = getattr(ctx.stdin, "buffer", None)
        if raw is None:
            raise UsageError("standard input gives no bytes to restore from; give a FILE")
        return nullcontext(raw)
    try:
        return open(name, "rb")
    except OSError as e:
        raise UsageError(f"cannot read {name}: {e.strerror}") from None
