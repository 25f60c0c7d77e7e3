"""The SMTP dialogue as `->`/`<-` lines, with everything the client says during AUTH redacted."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable

    from jcsh.runtime.smtp.reply import Reply

__all__ = ["Transcript"]

_REDACTED = "<redacted>"


class Transcript:
    """Lines of one dialogue; redacts the AUTH line's data and every client line while AUTH goes on."""

    def __init__(self, enabled: bool, on_line: Callable[[str], None] | None = None) -> None:
        self.enabled = enabled or on_line is not None
        self.lines: list[str] = []
        self.on_line = on_line  # `-v`: told each line as it is recorded (redacted like the rest)
        self._in_auth = False

    def sent(self, line: str) -> None:
        """One command line the client sent."""
        text = line.rstrip("\r\n")
        if text[:5].upper() == "AUTH ":
            self._in_auth = True
            words = text.split()
            text = " ".join(words[:2] + ([_REDACTED] if len(words) > 2 else []))
        elif self._in_auth:
            text = _REDACTED
        self._add(f"-> {text}")

    def message(self, size: int) -> None:
        """The message after DATA: its size, never its text."""
        self._add(f"-> [message: {size} bytes]")
        self._add("-> .")

    def chunk(self, size: int) -> None:
        """A BDAT chunk of the message: its size, never its text."""
        self.lines.append(f"-> [message chunk: {size} bytes]")

    def received(self, reply: Reply) -> None:
        """One whole reply, a line per line as the server sent it."""
        if reply.code != 334:
            self._in_auth = False
        last = len(reply.lines) - 1
        for i, line in enumerate(reply.lines or ("",)):
            sep = " " if i >= last else "-"
            self._add(f"<- {reply.code}{sep}{line}".rstrip())

    def event(self, text: str) -> None:
        if self.enabled:
            self._add(f"-- {text}")

    def _add(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line)

    def take(self) -> list[str]:
        """The lines recorded since the last take."""
        lines, self.lines = self.lines, []
        return lines
