"""jcsh under a pseudo-terminal, driven as a user types; the terminal answers cursor-position
requests, as a real one does."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect

__all__ = ["Terminal", "JCSH", "CPR_REQUEST"]

JCSH = str(Path(sys.executable).with_name("jcsh"))
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b[=>78]|\r")
CPR_REQUEST = "\x1b[6n"


class Terminal:
    """jcsh under a pty; `expect` matches the text with terminal escapes removed."""

    def __init__(self, home: Path, *args: str, term: str = "xterm-256color", **env: str) -> None:
        environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PROMPT_TOOLKIT_NO_CPR")}
        environment.update(JCSH_HOME=str(home), TERM=term, **env)
        self.child = pexpect.spawn(
            JCSH,
            list(args),
            env=environment,
            dimensions=(30, 120),
            encoding="utf-8",
            codec_errors="replace",
            timeout=10,
        )
        self.raw = ""
        self.mark = 0

    def _pump(self, timeout: float) -> None:
        data = self.child.read_nonblocking(1 << 16, timeout=timeout)
        # Answer each cursor-position request, including one split across two reads.
        before = self.raw[-len(CPR_REQUEST) + 1 :]
        self.raw += data
        for _ in range((before + data).count(CPR_REQUEST)):
            self.child.send("\x1b[1;1R")

    @property
    def text(self) -> str:
        return _ESCAPES.sub("", self.raw)

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait for `pattern` in the cleaned output after the previous match."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.text, self.mark)
            if found:
                self.mark = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen; the screen ended with:\n{self.text[-1500:]}")
            try:
                self._pump(min(left, 0.2))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                found = re.compile(pattern).search(self.text, self.mark)
                if found:
                    self.mark = found.end()
                    return found
                raise AssertionError(f"jcsh ended before {pattern!r}:\n{self.text[-1500:]}") from None

    def settle(self, seconds: float) -> None:
        """Keep reading (and answering cursor requests) for a while, as a terminal does."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._pump(min(left, 0.1))
            except pexpect.TIMEOUT:
                pass

    def prompt(self) -> None:
        self.expect(r"jcsh> ")

    def run(self, line: str) -> None:
        """Type a line and Enter, after the prompt is there."""
        self.child.send(line + "\r")

    def finish(self, timeout: float = 10.0) -> int:
        """Send Ctrl-D at a fresh prompt and return the exit status."""
        self.child.send("\x04")
        try:
            while True:
                self._pump(timeout)
        except pexpect.EOF:
            pass
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -(self.child.signalstatus or 0)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
