"""Export order (sorted per path segment, each entry before its children) from the SQLite primary
key's plain string order, streamed."""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterator

__all__ = ["export_order"]

_RANGE = "SELECT path, value FROM entry WHERE path >= ? AND path < ? ORDER BY path"


def export_order(conn: sqlite3.Connection, lo: str, hi: str) -> Iterator[tuple[str, str | None]]:
    """The rows in [lo, hi) in export order.

    The two orders differ only where a name continues with a character below "/" (" !#$%&'()*+,-."):
    plain order puts "a-b" between "a" and "a/x". When that happens, a's subtree is read with its
    own cursor first, and the main cursor jumps over it when it gets there. Memory stays bounded
    by the depth of the tree, not its size.
    """
    skips: list[tuple[str, str]] = []  # ranges already given, as a heap
    open_: list[str] = []  # the chain of entries being walked, each with its "/"
    start = lo
    while True:
        resume = None
        for path, value in conn.execute(_RANGE, (start, hi)):
            while skips and path >= skips[0][1]:
                heapq.heappop(skips)
            if skips and path >= skips[0][0]:
                resume = heapq.heappop(skips)[1]
                break
            while open_ and not path.startswith(open_[-1]):
                done = open_.pop()[:-1]
                if path.startswith(done) and path[len(done)] < "/":  # done's subtree sorts after path
                    below = (done + "/", done + "0")
                    yield from export_order(conn, *below)
                    heapq.heappush(skips, below)
            yield path, value
            open_.append(path + "/")
        if resume is None:
            return
        start = resume
