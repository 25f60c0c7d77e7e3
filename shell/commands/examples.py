"""`jcsh examples [NAME [DIR]]`: the example scripts installed with jcsh, listed or copied out."""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

from jcsh.runtime.errors import JcshError, JobFailed, UsageError
from jcsh.runtime.records import NamedTuple
from jcsh.shell.commands import syntax
from jcsh.shell.context import Context

__all__ = ["cmd_examples", "Example", "installed_examples"]

# Errors of the disk, not of the path the user gave.
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


class Example(NamedTuple):
    """One shipped script: its name (the file name without .jcs), what it does, how to run it."""

    name: str
    path: Path
    description: str
    usage: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "file": self.path.name, "description": self.description, "usage": self.usage}


def _folder() -> Path:
    # Package data beside jcsh/__init__.py (a link to examples/ in the source tree).
    import jcsh

    return Path(jcsh.__file__).resolve().parent / "examples"


def _read(path: Path) -> Example:
    description: list[str] = []
    usage = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("Usage:"):
            usage = " ".join(text[len("Usage:") :].split())
            break
        description.append(text)
    return Example(path.stem, path, " ".join(description), usage or f"jcsh run {path.name}")


def installed_examples() -> list[Example]:
    """Every installed example, by name."""
    try:
        paths = sorted(_folder().glob("*.jcs"))
    except OSError:
        paths = []
    return [_read(p) for p in paths]


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", nargs="?", help="the example to copy (with or without .jcs)")
    p.add_argument("folder", metavar="DIR", nargs="?", default=".", help="where to copy it (default: here)")
    p.add_argument("--force", action="store_true", help="replace DIR/NAME.jcs if it exists (default: refuse)")


@syntax("examples", "the example scripts installed with jcsh; NAME [DIR] copies NAME.jcs into DIR", _arguments)
def cmd_examples(ctx: Context, args: argparse.Namespace) -> int:
    examples = installed_examples()
    if args.name is None:
        if args.force or args.folder != ".":
            raise UsageError("give the NAME of the example to copy")
        width = max((len(e.name) for e in examples), default=0)
        lines = [f"{e.name:{width}}  {e.description}" for e in examples]
        ctx.emit({"examples": [e.to_json() for e in examples]}, "\n".join(lines) or "no examples installed")
        return 0
    wanted = args.name.removesuffix(".jcs")
    found = {e.name: e for e in examples}.get(wanted)
    if found is None:
        known = ", ".join(e.name for e in examples) or "none installed"
        raise UsageError(f"no example named {args.name!r}; examples: {known}")
    target, replaced = _copy(found, Path(args.folder), force=args.force)
    ctx.emit(
        {"name": found.name, "path": str(target), "replaced": replaced},
        f"{target}{' (replaced)' if replaced else ''}\n  run it: jcsh run {target}"
        + (f" {found.usage.split(None, 3)[3]}" if found.usage.count(" ") >= 3 else ""),
    )
    return 0


def _copy(example: Example, folder: Path, *, force: bool) -> tuple[Path, bool]:
    """Write the example into folder; (its path, whether a file was replaced)."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder" if folder.exists() else f"folder {folder} does not exist")
    target = folder / example.path.name
    content = example.path.read_bytes()
    existed = target.exists() or target.is_symlink()
    if existed and not force:
        raise JcshError(f"{target} exists; nothing was written (--force replaces it)", kind="failed")
    # A new file is created exclusively; a replacement is written beside it and renamed over it,
    # so that a failed write never leaves half a script behind.
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp") if existed else target
    try:
        open(partial, "xb").close()  # exclusively: never over a file that appeared meanwhile
        partial.write_bytes(content)
        if existed:
            os.replace(partial, target)
    except OSError as e:
        if e.errno != errno.EEXIST:
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass  # on a read-only file system nothing was created
        message = f"cannot write {target}: {e.strerror}"
        if e.errno in _DISK_ERRORS:
            raise JobFailed(message) from None
        if e.errno == errno.EEXIST:  # created by someone else since we looked
            raise JcshError(f"{target} exists; nothing was written (--force replaces it)", kind="failed") from None
        raise UsageError(message) from None
    return target, existed
