"""Why a statement or script was stopped before it finished: the sandbox's stop reasons."""

from __future__ import annotations

from enum import StrEnum

from jcsh.runtime.errors import ErrorKind

__all__ = ["StopReason", "LIMITS"]


class StopReason(StrEnum):
    """What ended a run early; the first four are limits (`RunResult.limit`, JSON `limit`)."""

    TIMEOUT = "timeout"  # the wall-clock limit (--timeout)
    OUTPUT = "output"  # the output size limit
    MEMORY = "memory"  # the memory rlimit
    BUDGET = "budget"  # a script's budget (mails, connections, bytes)
    INTERRUPTED = "interrupted"  # Ctrl-C
    BROKEN = "broken"  # nobody reads the output any more (a closed pipe)

    @property
    def error_kind(self) -> ErrorKind:
        """The `error.kind` a run stopped this way reports: one timeout kind in every command."""
        if self is StopReason.TIMEOUT:
            return ErrorKind.TIMEOUT
        if self is StopReason.INTERRUPTED:
            return ErrorKind.INTERRUPTED
        if self is StopReason.BROKEN:
            return ErrorKind.FAILED
        return ErrorKind.LIMIT


LIMITS = frozenset({StopReason.TIMEOUT, StopReason.OUTPUT, StopReason.MEMORY, StopReason.BUDGET})
