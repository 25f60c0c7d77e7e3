"""The wall-clock deadline of each step of an SMTP dialogue, however the server paces its bytes."""

from __future__ import annotations

import time

from jcsh.runtime.errors import ErrorKind, LimitHit
from jcsh.runtime.records import NamedTuple

__all__ = ["Timeouts", "Deadline", "StepTimeout"]


class StepTimeout(LimitHit):
    """A step of the dialogue did not finish within its deadline (exit 4)."""

    def __init__(self, message: str, *, step: str, spent: float, by_cap: bool) -> None:
        super().__init__(message, kind=ErrorKind.TIMEOUT)
        self.step, self.spent, self.by_cap = step, spent, by_cap


class Timeouts(NamedTuple):
    """Seconds for the TCP connect, for each reply, for each write; and an outer monotonic deadline.

    A step (a command and its whole reply, the message and its final reply, the connect and the
    greeting) ends within the larger of the timeouts that apply to it; inside it, waiting for a
    reply is bounded by `read`, writing by `write`.
    """

    connect: float
    read: float
    write: float
    cap: float | None = None  # a script's time limit: no step runs past it

    @property
    def step(self) -> float:
        return max(self.read, self.write)

    def deadline(self, step: str, seconds: float | None = None) -> Deadline:
        return Deadline(step, self.step if seconds is None else seconds, self.cap)


class Deadline:
    """The wall-clock end of one step; `step` names it in messages (it may be renamed on the way)."""

    __slots__ = ("at", "by_cap", "limit", "seconds", "started", "step")

    def __init__(
        self, step: str, seconds: float, cap: float | None = None, *, limit: str = "each step may take"
    ) -> None:
        self.step, self.seconds, self.limit = step, seconds, limit
        self.started = time.monotonic()
        self.at = self.started + seconds
        self.by_cap = cap is not None and cap < self.at
        if cap is not None and self.by_cap:
            self.at = cap

    def left(self) -> float:
        return self.at - time.monotonic()

    def narrowed(self, seconds: float, limit: str) -> Deadline:
        """This deadline, or a nearer one `seconds` from now (a read or write timeout inside the step)."""
        if time.monotonic() + seconds >= self.at:
            return self
        return Deadline(self.step, seconds, limit=limit)

    def expired(self, where: str) -> StepTimeout:
        spent = time.monotonic() - self.started
        if self.by_cap:
            text = f"the script's time limit ran out during {self.step} with {where} (after {spent:.1f} s)"
        else:
            text = f"timed out during {self.step} with {where} after {spent:.1f} s ({self.limit} {self.seconds:g} s)"
        return StepTimeout(text, step=self.step, spent=spent, by_cap=self.by_cap)
