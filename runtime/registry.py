"""The registry: a tree of string values in the store, one transaction per change.

An entry has a path (`/configuration/mail/Server`), an optional value and any number of
children. Setting a value creates the missing ancestors without a value. Paths are
case-sensitive. Export gives a canonical JSON document (keys sorted, no timestamps), so
export -> import -> export is byte-identical.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from jcsh.runtime.errors import NotFound, StoreError, UsageError
from jcsh.runtime.home import DB_NAME, KEY_NAME
from jcsh.runtime.store import Child, Extent, Store, StoreFault, open_store, parent_of

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = [
    "Registry",
    "Child",
    "Extent",
    "open_registry",
    "validate_path",
    "validate_value",
    "split_path",
    "MAX_PATH",
    "MAX_VALUE",
    "MAX_JSON_DEPTH",
    "DB_NAME",
]

MAX_PATH = 1024
MAX_VALUE = 64 * 1024
MAX_JSON_DEPTH = 256  # an import document nested deeper is refused (a registry path of 127 segments)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # exactly Unicode's category Cc
_VALUE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # Cc but tab, LF, CR


@functools.cache
def _value_bad() -> re.Pattern[str]:
    """Anything validate_value refuses but the size, in one search (compiled on first use: not at start-up)."""
    return re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@functools.cache
def _name_bad() -> re.Pattern[str]:
    return re.compile("[\x00-\x1f\x7f-\x9f/\ud800-\udfff]")


def validate_path(path: object, *, allow_root: bool = False) -> str:
    """Return the path if it is a valid registry path, else raise UsageError saying why."""
    if not isinstance(path, str):
        raise UsageError(f"registry path must be a string, not {type(path).__name__}")
    shown = path if len(path) <= 80 else path[:77] + "..."
    if not path.startswith("/"):
        raise UsageError(f"registry path must be absolute (start with '/'): {shown!r}")
    if len(path) > MAX_PATH:
        raise UsageError(f"registry path is {len(path)} characters long; the limit is {MAX_PATH}")
    if _CONTROL.search(path):
        raise UsageError(f"registry path contains a control character: {shown!r}")
    if path == "/":
        if allow_root:
            return path
        raise UsageError("the root '/' holds no value; name an entry below it")
    for segment in path[1:].split("/"):
        if segment == "":
            raise UsageError(f"registry path has an empty segment: {shown!r}")
        if segment in (".", ".."):
            raise UsageError(f"registry path has a {segment!r} segment: {shown!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"registry path is not valid Unicode text: {shown!r}") from None
    return path


def validate_value(value: object) -> str:
    """Return the value if it can be stored, else raise UsageError saying why."""
    if not isinstance(value, str):
        raise UsageError(f"registry value must be a string, not {type(value).__name__}")
    if len(value) > MAX_VALUE // 4 or _value_bad().search(value):  # else it fits and is clean: the usual case
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise UsageError("registry value is not valid Unicode text (lone surrogate)") from None
        if size > MAX_VALUE:
            raise UsageError(f"registry value is {size} bytes; the limit is {MAX_VALUE} (64 KiB)")
        bad = _VALUE_CONTROL.search(value)
        if bad:
            # Values are printed by `registry get`/`ls`: an ESC stored here would drive the terminal later.
            raise UsageError(
                f"registry value contains the control character {bad.group()!r} (only tab and line breaks)"
            )
    return value


def split_path(path: str) -> tuple[str, str]:
    """('/a/b', 'c') for '/a/b/c'; the parent of a top-level entry is '/'."""
    parent, _, name = path.rpartition("/")
    return (parent or "/"), name


class Registry:
    """The registry tree over a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def path(self) -> Path:
        return self.store.location

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction (all or nothing); nested uses join the outer one."""
        return self.store.transaction()

    def _missing(self, message: str) -> NotFound:
        self.store.confirm_sound()  # damage must never read as "not found"
        return NotFound(message)

    # -- reading ------------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        validate_path(path, allow_root=True)
        if path == "/" or self.store.entry(path) is not None:
            return True
        self.store.confirm_sound()
        return False

    def value(self, path: str) -> str | None:
        """The value at path, or None when the entry is absent or has no value."""
        validate_path(path)
        row = self.store.entry(path)
        if row is None:
            self.store.confirm_sound()
            return None
        return row.value

    def get(self, path: str) -> str:
        """The value at path; NotFound when the entry is absent or has no value."""
        validate_path(path)
        row = self.store.entry(path)
        if row is None:
            raise self._missing(f"no registry entry at {path}")
        if row.value is None:
            n = len(self.children(path))
            raise NotFound(f"{path} has no value (it has {n} children; see `jcsh registry ls {path}`)")
        return row.value

    def values(self, paths: Sequence[str]) -> dict[str, str | None]:
        """The value at each path (None when the entry is absent or has no value), read now."""
        for path in paths:
            validate_path(path)
        found: dict[str, str | None] = {}
        for path in dict.fromkeys(paths):
            row = self.store.entry(path)
            found[path] = None if row is None else row.value
        return {path: found[path] for path in paths}

    def children(self, path: str = "/") -> list[Child]:
        """The direct children of path, sorted by name."""
        validate_path(path, allow_root=True)
        with self.store.reading():
            if path != "/" and self.store.entry(path) is None:
                raise self._missing(f"no registry entry at {path}")
            found = list(self.store.children(path))
        if not found:
            self.store.confirm_sound()  # an index that lost its rows lists nothing, too
        return found

    def walk(self, path: str = "/") -> list[tuple[str, str | None]]:
        """Every entry of the subtree (path included unless root), parents before children."""
        validate_path(path, allow_root=True)
        with self.store.reading():
            head = self._head(path)
            return head + list(self.store.subtree(path))

    def _head(self, path: str) -> list[tuple[str, str | None]]:
        if path == "/":
            return []
        row = self.store.entry(path)
        if row is None:
            raise self._missing(f"no registry entry at {path}")
        return [(path, row.value)]

    def extent(self, path: str = "/", *, children: bool = False, most: int) -> Extent:
        """The entries of walk(path) (or children(path)) and their bytes, counting at most `most` + 1."""
        validate_path(path, allow_root=True)
        return self.store.extent(path, children=children, most=most)

    def stored_bytes(self) -> int:
        """The size of the store in bytes, changes still in the WAL included."""
        return self.store.stored_bytes()

    # -- writing ------------------------------------------------------------------------------

    def set(self, path: str, value: str) -> None:
        """Set a value, creating missing ancestors without a value."""
        validate_path(path)
        validate_value(value)
        with self.transaction():
            self.store.put_entries([*_ancestors(path), (path, value)])

    def delete(self, path: str, *, recursive: bool = False) -> int:
        """Remove an entry (and with recursive, its subtree); returns how many entries went."""
        validate_path(path)
        with self.transaction():
            if self.store.entry(path) is None:
                raise self._missing(f"no registry entry at {path}")
            below = self.store.count_below(path)
            if below and not recursive:
                raise UsageError(f"{path} has {below} entries below it; use -r to remove them too")
            self.store.delete_subtree(path)
        return below + 1

    # -- export / import ----------------------------------------------------------------------

    def export(self, path: str = "/") -> dict[str, Any]:
        """The subtree as a document: {"path", "value", "children": {name: {"value", "children"}}}."""
        rows = self.walk(path)
        root: dict[str, Any] = {"value": None, "children": {}}
        nodes = {path: root}
        for p, v in rows:
            if p == path:
                root["value"] = v
                continue
            node: dict[str, Any] = {"value": v, "children": {}}
            nodes[parent_of(p)]["children"][p.rpartition("/")[2]] = node
            nodes[p] = node
        return {"path": path, **root}

    def write_export(self, out: TextIO, path: str = "/") -> None:
        """The export document of path, streamed to out as the store gives it (memory stays flat)."""
        from jcsh.runtime.export import write_export

        validate_path(path, allow_root=True)
        with self.store.reading():
            head = self._head(path)
            orphan = write_export(out, path, head[0][1] if head else None, self.store.subtree(path))
        if orphan is not None:
            raise StoreError(
                f"{self.path.name} is damaged (registry entry {orphan} has no parent entry); "
                f"run `jcsh registry check` ({self.path})",
                cause=StoreFault.DAMAGED,
                path=str(self.path),
            )

    def export_json(self, path: str = "/") -> str:
        import io

        buffer = io.StringIO()
        self.write_export(buffer, path)
        return buffer.getvalue()

    def import_(self, document: object, *, replace: bool = False) -> int:
        """Merge (or with replace, substitute) a document's subtree; all or nothing."""
        path, entries, count = _entries(document)
        with self.transaction():
            if replace:
                self.store.delete_subtree(path)
            self.store.put_entries(_ancestors(path))
            self.store.put_tree_entries(entries)  # checked as they are written: a bad one rolls it all back
        return count[0]

    def close(self) -> None:
        self.store.close()


def _ancestors(path: str) -> list[tuple[str, str | None]]:
    """The ancestors of path (not '/'), as rows without a value: adding them keeps any value they have."""
    rows: list[tuple[str, str | None]] = []
    parent = parent_of(path)
    while parent != "/":
        rows.append((parent, None))
        parent = parent_of(parent)
    return rows[::-1]


_NODE_KEYS = frozenset(("path", "value", "children"))
_SHORT_VALUE = MAX_VALUE // 4  # at most 4 bytes a character: a value this long cannot pass the limit


def _entries(document: object) -> tuple[str, Iterator[tuple[str, str, str | None]], list[int]]:
    """The document's path, its entries (path, parent, value) as they are checked, and how many have
    been given so far."""
    if not isinstance(document, dict) or "path" not in document:
        raise UsageError('import document must be a JSON object with "path", "value" and "children"')
    path = validate_path(document["path"], allow_root=True)
    root_value = _node_value(document, path)
    count = [0]
    name_bad, value_bad = _name_bad(), _value_bad()

    def entries() -> Iterator[tuple[str, str, str | None]]:
        # The checks of _node_value/_node_children are inlined for the usual entry: this loop runs
        # once per entry of a million-entry import; anything unusual goes to them for the message.
        if path != "/":
            count[0] += 1
            yield path, parent_of(path), root_value
        stack = [(iter(_node_children(document, path, 1).items()), "" if path == "/" else path, 1)]
        while stack:
            items, base, depth = stack[-1]
            parent = base or "/"
            for name, node in items:
                at = base + "/" + name
                if not name or name in (".", "..") or name_bad.search(name) or len(at) > MAX_PATH:
                    _bad_name(name, base or "/", at)
                if type(node) is not dict or not node.keys() <= _NODE_KEYS:
                    _node_value(node, at)  # raises, saying what is wrong
                value = node.get("value")
                if value is not None and (
                    type(value) is not str or len(value) > _SHORT_VALUE or value_bad.search(value)
                ):
                    _node_value(node, at)
                count[0] += 1
                yield at, parent, value
                children = node.get("children")
                if children:
                    stack.append((iter(_node_children(node, at, depth + 2).items()), at, depth + 2))
                    break
                if children is not None and (type(children) is not dict or depth + 3 > MAX_JSON_DEPTH):
                    _node_children(node, at, depth + 2)
            else:
                stack.pop()

    return path, entries(), count


def _node_value(node: object, at: str) -> str | None:
    if not isinstance(node, dict) or not node.keys() <= _NODE_KEYS:
        raise UsageError(f'import: entry {at} must be an object with "value" and "children"')
    value = node.get("value")
    if value is not None:
        if at == "/":
            raise UsageError("import: the root '/' holds no value")
        try:
            validate_value(value)
        except UsageError as e:
            raise UsageError(f"import: {at}: {e.message}") from None
    return value


def _node_children(node: dict[str, Any], at: str, depth: int) -> dict[str, Any]:
    children = node.get("children", {})
    if not isinstance(children, dict):
        raise UsageError(f'import: "children" of {at} must be an object')
    if "children" in node and depth + 1 > MAX_JSON_DEPTH:
        raise UsageError(f"import: the document is nested deeper than {MAX_JSON_DEPTH} levels (at {at[:80]})")
    return children


def _bad_name(name: str, parent: str, at: str) -> None:
    if "/" in name:
        raise UsageError(f"import: child name {name!r} of {parent} contains '/'")
    try:
        validate_path(at)
    except UsageError as e:
        raise UsageError(f"import: {e.message}") from None


def open_registry(home: Path) -> Registry:
    """Open (creating if needed) the registry in a home folder, safe against concurrent openers."""
    db = home / DB_NAME
    key = home / KEY_NAME
    try:
        lost = key.exists() and (not db.exists() or db.stat().st_size == 0)
    except OSError:
        lost = False  # the store's own open says what is wrong with the folder
    if lost:
        raise StoreError(
            f"{db} is {'empty' if db.exists() else 'missing'} but {key.name} is there: the registry was lost "
            "or replaced; restore it with `jcsh restore FILE` (nothing was changed)",
            cause=StoreFault.MISSING,
            path=str(db),
        )
    return Registry(open_store(home))
