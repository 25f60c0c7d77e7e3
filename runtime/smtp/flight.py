"""Commands whose replies are owed, read in order: a whole group per write when the server pipelines."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jcsh.runtime.smtp.reply import WIRE_ERRORS

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.smtp.reply import Reply
    from jcsh.runtime.smtp.wire import Wire

__all__ = ["Flight"]


class Flight:
    """A transaction's commands (RFC 2920): with `pipelining` a group goes in one write and its
    replies are read one by one in order; without, each command goes out when its reply is asked for.

    Items are command lines (`str`) and, after a BDAT line, its chunk (`bytes`).
    """

    def __init__(self, wire: Wire, pipelining: bool) -> None:
        self.wire = wire
        self.pipelining = pipelining
        self.pending: list[str] = []  # sent, reply not read yet
        self._queued: list[str | bytes] = []  # not sent yet (no pipelining)

    def send(self, items: Sequence[str | bytes], step: str) -> None:
        """The group in one write when pipelining, else its first command (the rest on demand)."""
        if self.pipelining:
            self._write(list(items), step)
        else:
            self._queued.extend(items)
            self._send_next(step)

    def next_command(self) -> str:
        """The command whose reply comes next."""
        if self.pending:
            return self.pending[0]
        return next((i for i in self._queued if isinstance(i, str)), "")

    def reply(self, step: str) -> Reply:
        """The next reply owed (sending the next queued command first when not pipelining)."""
        if not self.pending:
            self._send_next(step)
        reply = self.wire.read_reply(self.wire.deadline(step))
        self.pending.pop(0)
        return reply

    def ask(self, line: str, step: str) -> Reply:
        """The reply to `line`: already in flight or queued, or sent now."""
        if not self.pending and not self._queued:
            self._write([line], step)
        return self.reply(step)

    def drain(self, dead: Callable[[], None]) -> list[Reply]:
        """Read the replies still owed (they answer nothing now); on a 421 or a wire failure call `dead`."""
        self._queued.clear()
        replies: list[Reply] = []
        while self.pending:
            try:
                reply = self.reply(f"the reply to {self.pending[0].split(' ', 1)[0]}")
            except WIRE_ERRORS:
                self.pending.clear()
                dead()
                break
            replies.append(reply)
            if reply.code == 421:
                self.pending.clear()
                dead()
                break
        return replies

    def _send_next(self, step: str) -> None:
        if not self._queued:
            return
        group = [self._queued.pop(0)]
        while self._queued and isinstance(self._queued[0], bytes):  # a BDAT's chunk goes with it
            group.append(self._queued.pop(0))
        self._write(group, step)

    def _write(self, items: list[str | bytes], step: str) -> None:
        self.wire.send_lines(items, self.wire.deadline(step))
        self.pending.extend(i for i in items if isinstance(i, str))
