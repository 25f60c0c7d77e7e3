"""A call running on a thread of its own, its result collected later: concurrent.futures without its imports."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from jcsh.runtime.annotations import Generic, TypeVar, cast

__all__ = ["Later", "run_all"]

T = TypeVar("T")


class Later(Generic[T]):
    """fn() started now on a daemon thread; result() waits for it and returns or raises what it did.

    concurrent.futures costs ~15 ms to import (it pulls in logging), a third of a probe's own
    work; the probe needs no pool, only every call started at once and each result collected.
    """

    def __init__(self, fn: Callable[[], T], name: str = "jcsh-later") -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self._value = fn()
        except BaseException as e:  # handed to whoever collects the result
            self._error = e

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


def run_all(calls: Iterable[Callable[[], T]], name: str = "jcsh-later") -> list[T]:
    """Every call at once, the last on the calling thread and each other on its own thread; the
    results in order (the first error raised).

    The caller would only wait: running one call itself spares a thread's start, stack and join
    (a probe of 16 targets starts 16 threads fewer, and 17 fewer joins wake a waiter).
    """
    others = list(calls)
    if not others:
        return []
    last = others.pop()
    started = [Later(call, name) for call in others]
    try:
        mine: T = last()
    except Exception:  # a Ctrl-C (or the sandbox's cut) goes out at once, as it left a join before
        for later in started:  # an earlier call's error comes first, as when every call had a thread
            later.result()
        raise
    return [*(later.result() for later in started), mine]
