"""Shared helpers of the sandbox tests: run code and capture it, and watch for effects outside."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from jcsh.runtime.sandbox.client import RunResult, Session

__all__ = ["Ran", "run", "Outside", "processes_of"]


@dataclass
class Ran:
    result: RunResult
    chunks: list[tuple[str, str]] = field(default_factory=list)

    @property
    def out(self) -> str:
        return "".join(t for s, t in self.chunks if s == "out")

    @property
    def err(self) -> str:
        return "".join(t for s, t in self.chunks if s == "err")

    @property
    def text(self) -> str:
        """Everything the script showed: output, errors, the error report and the value."""
        return "\n".join(filter(None, [self.out, self.err, self.result.error, self.result.value]))


def run(session: Session, code: str, **kwargs: object) -> Ran:
    """Run code in session, capturing stdout and stderr."""
    ran = Ran(RunResult(False, -1))

    def collect(stream: str, text: str) -> None:
        ran.chunks.append((stream, text))

    ran.result = session.run(code, on_output=collect, **kwargs)
    return ran


def processes_of(pid: int) -> list[int]:
    """Processes (other than pid) that are pid's children, or in its process group or session."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pid:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid, pgrp, sid = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
        if state != "Z" and pid in (ppid, pgrp, sid):
            found.append(int(entry))
    return found


class Outside:
    """What a payload must not touch: sentinel paths, a secret file, a listening socket."""

    SECRET = "s3cr3t-the-worker-must-not-read-this"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sentinel = folder / "sentinel"
        self.sentinel2 = folder / "sentinel2"
        self.secret = folder / "secret.txt"
        self.secret.write_text(self.SECRET)
        self.victim = folder / "victim.txt"
        self.victim.write_text("keep me")
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]

    def fill(self, code: str) -> str:
        return (
            code.replace("SENTINEL2", str(self.sentinel2))
            .replace("SENTINEL", str(self.sentinel))
            .replace("SECRETFILE", str(self.secret))
            .replace("VICTIM", str(self.victim))
            .replace("PORT", str(self.port))
        )

    def assert_untouched(self, ran: Ran, worker_pid: int | None) -> None:
        """Nothing happened outside the worker."""
        assert not self.sentinel.exists() and not self.sentinel2.exists(), "a file was written"
        assert self.victim.read_text() == "keep me", "a file was changed"
        assert sorted(p.name for p in self.folder.iterdir()) == ["secret.txt", "victim.txt"], "the folder changed"
        assert self.SECRET not in ran.text, "a file was read"
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            pass
        else:
            conn.close()
            raise AssertionError("a connection reached the test's listening socket")
        if worker_pid is not None:
            assert processes_of(worker_pid) == [], "the worker started a process"

    def close(self) -> None:
        self.listener.close()
