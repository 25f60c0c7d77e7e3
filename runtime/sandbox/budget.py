"""What one script run may use of the host: registry writes, answer sizes, network connections.

A run is a script (`jcsh run`, `-c`, stdin, `%run`) or one statement at the REPL. Going over a
budget raises LimitHit (kind "limit", exit 4) before the write or connection that would pass it.
Connections are counted where they are made (an audit hook on `socket.connect` in this process),
so every path counts: sending, reconnecting, each TLS version a probe tries, a token fetch.
"""

from __future__ import annotations

import _thread
import sys
from typing import Any

from jcsh.runtime.errors import LimitHit
from jcsh.runtime.records import NamedTuple

__all__ = ["Budgets", "RunBudget", "DEFAULT_BUDGETS", "ANSWER_BYTES"]

# The largest answer a worker can be sent is one frame (protocol.MAX_FRAME, 8 MiB); leave room
# for the envelope and JSON escapes.
ANSWER_BYTES = 6 << 20
_SMALLER_SUBTREE = "walk or list a smaller subtree (or use `jcsh registry export`)"


class Budgets(NamedTuple):
    """The limits of one run."""

    registry_bytes: int = 16 << 20  # value bytes written, and growth of the database
    registry_entries: int = 20_000  # distinct paths written
    answer_entries: int = 100_000  # entries in one registry.walk / registry.list answer
    connections: int = 64


DEFAULT_BUDGETS = Budgets()


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


class RunBudget:
    """The budget of the current run: reset at its start, spent by the host's requests."""

    def __init__(self, budgets: Budgets = DEFAULT_BUDGETS) -> None:
        self.budgets = budgets
        self._lock = _thread.allocate_lock()  # probes connect from several threads
        self.start()

    def start(self) -> None:
        """A new run: everything is available again."""
        self.value_bytes = 0
        self.paths: set[str] = set()
        self.connections = 0
        self.over: str | None = None  # why a connection was refused during the current call
        self._base_size: int | None = None

    # -- registry ---------------------------------------------------------------------------

    def registry_write(self, path: str, value: str, size_now: int) -> None:
        """Account for a write before it is made; LimitHit when it would pass the budget.

        `size_now` is the database's size in bytes now: the first write of the run takes it as the
        base, so that long paths and many entries cannot grow the file past the budget either.
        """
        b = self.budgets
        size = len(value.encode("utf-8", "surrogatepass"))
        if self.value_bytes + size > b.registry_bytes:
            raise LimitHit(
                f"registry.set({path!r}): this run has written {_mib(self.value_bytes)} of registry values; "
                f"a script may write at most {_mib(b.registry_bytes)} per run"
            )
        if path not in self.paths and len(self.paths) >= b.registry_entries:
            raise LimitHit(
                f"registry.set({path!r}): this run has written {len(self.paths)} registry entries; "
                f"a script may write at most {b.registry_entries} per run"
            )
        if self._base_size is None:
            self._base_size = size_now
        # The write stores the value, and the path (with new parents) about four times: table and index.
        cost = size + 4 * len(path.encode("utf-8")) * path.count("/")
        if size_now - self._base_size + cost > b.registry_bytes:
            raise LimitHit(
                f"registry.set({path!r}): the registry has grown by {_mib(size_now - self._base_size)} "
                f"during this run; a script may grow it by at most {_mib(b.registry_bytes)} per run"
            )
        self.value_bytes += size
        self.paths.add(path)

    def answer(self, call: str, entries: int, size: int, hint: str = _SMALLER_SUBTREE) -> None:
        """A registry answer of `entries` entries and about `size` bytes; LimitHit when too large."""
        if entries > self.budgets.answer_entries:
            raise LimitHit(f"{call}: more than {self.budgets.answer_entries} entries; {hint}")
        if size > ANSWER_BYTES:
            raise LimitHit(f"{call}: the answer would be over {_mib(ANSWER_BYTES)}; {hint}")

    # -- network ----------------------------------------------------------------------------

    def open_connections(self) -> _Metered:
        """`with budget.open_connections():` counts (and past the budget refuses) each connection made.

        Nothing is refused up front: a call on a connection already open (a session's next message,
        its QUIT) needs no new one.
        """
        return _Metered(self)

    def _connection(self) -> None:
        with self._lock:
            if self.connections >= self.budgets.connections:
                self.over = self._connections_spent()
                raise LimitHit(self.over)
            self.connections += 1

    def _connections_spent(self) -> str:
        return f"this run has opened {self.connections} network connections; a script may open at most " + str(
            self.budgets.connections
        )


class _Metered:
    """While active, every TCP/UDP connection this process makes is charged to one run."""

    def __init__(self, budget: RunBudget) -> None:
        self.budget = budget

    def __enter__(self) -> RunBudget:
        global _active
        _install()
        self.budget.over = None
        _active = self.budget
        return self.budget

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        global _active
        _active = None
        over, self.budget.over = self.budget.over, None
        if over is not None and (kind is None or issubclass(kind, Exception)):
            # The refused connection may have come back as data (a probe's failed attempt, a send's
            # result) or as another error: the call as a whole hit the budget.
            raise LimitHit(over) from None


# The run whose connections are being counted. Process-wide (not per thread) on purpose: a probe
# connects from a pool of threads. A cancelled REPL command finishing in the background while a
# statement runs is counted too, which can only make the budget stricter.
_active: RunBudget | None = None
_installed = False
_NET_FAMILIES = (2, 10)  # AF_INET, AF_INET6


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    budget = _active
    if budget is not None and getattr(args[0], "family", None) in _NET_FAMILIES:
        budget._connection()


def _install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)  # audit hooks cannot be removed: installed once, on first use
        _installed = True
