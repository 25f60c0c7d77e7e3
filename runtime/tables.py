"""Aligned text tables, for every layer that renders human output (the shell's and the probe checks')."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

__all__ = ["aligned"]


def aligned(
    rows: Iterable[Sequence[object]], headers: Sequence[str] | None = None, *, cell: Callable[[object], str] = str
) -> str:
    """Left-aligned columns separated by two spaces; `cell` turns each value into its one-line text."""
    body = [[cell("" if c is None else c) for c in row] for row in rows]
    if headers:
        body.insert(0, list(headers))
    if not body:
        return ""
    widths = [max(len(r[i]) for r in body if i < len(r)) for i in range(max(len(r) for r in body))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in body]
    return "\n".join(lines)
