"""`jcsh registry get|set|ls|rm|export|import|check`: the registry tree, and the store's health."""

from __future__ import annotations

import argparse
import gc
import json

from jcsh.runtime.errors import UsageError
from jcsh.shell.commands import read_text, syntax
from jcsh.shell.context import Context
from jcsh.shell.render import one_line

__all__ = ["cmd_registry"]


def _arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = sub.add_parser("get", help="print the value at PATH")
    a.add_argument("path", metavar="PATH")
    a = sub.add_parser("set", help="set PATH to VALUE (missing parents are created)")
    a.add_argument("path", metavar="PATH")
    a.add_argument("value", metavar="VALUE")
    a = sub.add_parser("ls", help="children of PATH with their values (-r: the whole subtree)")
    a.add_argument("path", metavar="PATH", nargs="?", default="/")
    a.add_argument("-r", "--recursive", action="store_true")
    a = sub.add_parser("rm", help="remove PATH (-r: with everything below it)")
    a.add_argument("path", metavar="PATH")
    a.add_argument("-r", "--recursive", action="store_true")
    a = sub.add_parser("export", help="the subtree at PATH as JSON on stdout")
    a.add_argument("path", metavar="PATH", nargs="?", default="/")
    a = sub.add_parser("import", help="merge an export document (all or nothing)")
    a.add_argument("file", metavar="FILE", help="an export document; - reads stdin")
    a.add_argument("--replace", action="store_true", help="replace the subtree instead of merging")
    sub.add_parser("check", help="check the whole store (SQLite's integrity check, the key): ok, or what is damaged")


def _read_document(ctx: Context, name: str) -> object:
    from jcsh.runtime.bounded import IMPORT
    from jcsh.runtime.registry import MAX_JSON_DEPTH

    text = read_text(ctx, name, bounds=IMPORT)
    # A parse makes only new containers and no cycle, yet each 700 of them start a young collection
    # and their growing count full ones over everything parsed so far: a third of the parse of a
    # million entries (1.3-1.5 s against 1.8-2.8 s with the collector on). The collector is off for
    # the parse only, and back as it was however the parse ends.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{name} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise UsageError(f"{name} is nested deeper than {MAX_JSON_DEPTH} levels, the limit of an import") from None
    finally:
        if enabled:
            gc.enable()


@syntax("registry", "the registry tree: get, set, ls, rm, export, import, check", _arguments)
def cmd_registry(ctx: Context, args: argparse.Namespace) -> int:
    action = args.action
    if action == "check":
        return _check(ctx)
    reg = ctx.registry
    if action == "get":
        value = reg.get(args.path)
        ctx.emit({"path": args.path, "value": value}, value, exact=True)  # `$(jcsh registry get ...)`
    elif action == "set":
        reg.set(args.path, args.value)
        ctx.emit({"path": args.path, "value": args.value}, None)
    elif action == "ls" and args.recursive:
        rows = reg.walk(args.path)
        base = 0 if args.path == "/" else args.path.count("/")
        lines = []
        for entry_path, entry_value in rows:
            depth = entry_path.count("/") - base
            name = entry_path.rsplit("/", 1)[1] if entry_path != args.path else entry_path
            # One entry a line: a value's own newlines and tabs are escaped too.
            lines.append("  " * depth + one_line(name) + ("" if entry_value is None else f" = {one_line(entry_value)}"))
        data = {"path": args.path, "entries": [{"path": p, "value": v} for p, v in rows]}
        ctx.emit(data, "\n".join(lines))
    elif action == "ls":
        children = reg.children(args.path)
        data = {
            "path": args.path,
            "children": [
                {"name": c.name, "path": c.path, "value": c.value, "has_children": c.has_children} for c in children
            ],
        }
        text = "\n".join(
            one_line(c.name) + ("/" if c.has_children else "") + ("" if c.value is None else f" = {one_line(c.value)}")
            for c in children
        )
        ctx.emit(data, text)
    elif action == "rm":
        removed = reg.delete(args.path, recursive=args.recursive)
        ctx.emit({"path": args.path, "removed": removed}, None)
    elif action == "export":
        reg.write_export(ctx.document_output(), args.path)  # streamed: a million entries in ~20 MiB
    elif action == "import":
        count = reg.import_(_read_document(ctx, args.file), replace=args.replace)
        ctx.emit({"imported": count, "replace": args.replace}, None)
    return 0


def _check(ctx: Context) -> int:
    """SQLite's integrity check, the tree's own consistency, and the key against every secret."""
    from jcsh.runtime.errors import ExitStatus, StoreError
    from jcsh.runtime.home import DB_NAME, KEY_NAME
    from jcsh.runtime.keyfile import check_key, read_key

    db = ctx.home / DB_NAME
    data: dict[str, object] = {"path": str(db), "schema_version": None, "entries": None, "credentials": None}
    try:
        store = ctx.registry.store
        problems = store.check()
        if not problems:
            key = ctx.home / KEY_NAME
            data["secrets"] = check_key(store, read_key(key) if key.exists() else None, what=str(db))
            data.update(schema_version=store.schema_version(), entries=store.count_below("/"))
            data["credentials"] = len(store.credentials())
    except StoreError as e:
        if e.cause not in ("damaged", "missing", "newer-release"):
            raise  # it could not be checked at all (locked, no permission ...): that is not an answer
        problems = [e.message]
    data.update(ok=not problems, problems=problems)
    if problems:
        text = f"{db} is damaged:\n" + "\n".join(f"  {p}" for p in problems)
    else:
        counts = f"{data['entries']} entries, {data['credentials']} credentials"
        text = f"{db}: ok (schema version {data['schema_version']}, {counts})"
    ctx.emit(data, text)
    return int(ExitStatus.STORE) if problems else 0
