"""The registry's export document, written as entries stream in: the bytes of `json.dumps(doc,
indent=2, sort_keys=True, ensure_ascii=False)` without ever holding the document.

Entries must come in export order (sorted per path segment, each before its children), which is
what `Store.subtree` gives. Memory is the depth of the tree, not its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from json.encoder import encode_basestring as _text  # the C encoder json.dumps uses with ensure_ascii=False
from typing import TextIO

__all__ = ["write_export"]

_FLUSH_AT = 4096  # pieces buffered between writes


def _value(value: str | None) -> str:
    return "null" if value is None else _text(value)


class _Open:
    """An entry whose children are being written."""

    __slots__ = ("has_children", "level", "prefix", "value")

    def __init__(self, prefix: str, value: str | None, level: int) -> None:
        self.prefix = prefix  # its path and "/": what every descendant starts with
        self.value = value
        self.level = level  # the indent of its "children" and "value" keys
        self.has_children = False


def write_export(out: TextIO, path: str, value: str | None, rows: Iterable[tuple[str, str | None]]) -> str | None:
    """Write the document of path (whose own value is value) from the rows below it.

    Returns None, or the first row whose parent never came (the store is inconsistent); the
    document is then left unfinished.
    """
    pieces = ['{\n  "children": ']
    add = pieces.append
    top = _Open("/" if path == "/" else path + "/", value, 1)
    stack = [top]
    pending: tuple[str, str | None, str] | None = None  # the last row: a leaf unless the next row is its child
    for row_path, row_value in rows:
        if pending is not None:
            p_path, p_value, p_name = pending
            indent = "  " * (top.level + 1)
            head = (",\n" if top.has_children else "{\n") + indent + _text(p_name) + ": {\n" + indent + '  "children": '
            top.has_children = True
            if row_path.startswith(p_path) and row_path[len(p_path)] == "/":
                add(head)
                top = _Open(p_path + "/", p_value, top.level + 2)
                stack.append(top)
            else:
                add(head + "{},\n" + indent + '  "value": ' + _value(p_value) + "\n" + indent + "}")
        while not row_path.startswith(top.prefix):
            if len(stack) == 1:
                return row_path
            _close(stack.pop(), add)
            top = stack[-1]
        name = row_path[len(top.prefix) :]
        if "/" in name:
            return row_path
        pending = (row_path, row_value, name)
        if len(pieces) > _FLUSH_AT:
            out.write("".join(pieces))
            pieces.clear()
    if pending is not None:
        p_path, p_value, p_name = pending
        indent = "  " * (top.level + 1)
        add((",\n" if top.has_children else "{\n") + indent + _text(p_name) + ": {\n" + indent + '  "children": {},\n')
        add(indent + '  "value": ' + _value(p_value) + "\n" + indent + "}")
        top.has_children = True
    while len(stack) > 1:
        _close(stack.pop(), add)
    add(("\n  }" if stack[0].has_children else "{}") + f',\n  "path": {_text(path)},\n  "value": {_value(value)}\n}}\n')
    out.write("".join(pieces))
    out.flush()
    return None


def _close(node: _Open, add: Callable[[str], None]) -> None:
    indent = "  " * node.level
    close = ("\n" + indent + "}") if node.has_children else "{}"
    add(f'{close},\n{indent}"value": {_value(node.value)}\n{"  " * (node.level - 1)}}}')
