"""A minimal terminal for timing REPLs: a pty that answers cursor-position requests."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence

from bench.harness import CaseError

__all__ = ["time_to_first_result", "strip_ansi"]

_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
_CPR_REQUEST = b"\x1b[6n"
ROWS, COLS = 24, 80


def strip_ansi(data: bytes) -> bytes:
    return _ANSI.sub(b"", data)


def _spawn(argv: Sequence[str], env: dict[str, str], slave: int) -> subprocess.Popen[bytes]:
    # `setsid --ctty` makes the pty the controlling terminal without a preexec_fn (unsafe with threads)
    setsid = shutil.which("setsid")
    prefix = [setsid, "--ctty"] if setsid else []
    return subprocess.Popen(
        [*prefix, *argv], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=not setsid, close_fds=True
    )


def _pump(proc: subprocess.Popen[bytes], master: int, seconds: float, *, until_quiet: float | None = None) -> None:
    """Read (and answer cursor requests) for up to `seconds`, or until quiet that long, or the end."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        wait = min(until_quiet or 0.05, max(0.0, deadline - time.monotonic()))
        if not select.select([master], [], [], wait)[0]:
            if until_quiet is not None:
                return
            continue
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        for _ in range(data.count(_CPR_REQUEST)):
            os.write(master, b"\x1b[%d;1R" % ROWS)


def _finish(proc: subprocess.Popen[bytes], master: int) -> None:
    """Leave politely (Ctrl-D; 'y' for ptpython's confirmation), then by signal to our child."""
    # a Ctrl-D typed while the next prompt is still being drawn can be lost: let it settle first
    _pump(proc, master, 1.0, until_quiet=0.15)
    for keys in (b"\x04", b"y\r"):
        if proc.poll() is not None:
            break
        try:
            os.write(master, keys)
        except OSError:
            break
        _pump(proc, master, 1.0, until_quiet=0.2)
    _pump(proc, master, 1.0)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)  # its own session and group: the process we started, by id
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
    proc.wait()


def time_to_first_result(
    argv: Sequence[str],
    env: dict[str, str],
    prompt: bytes,
    *,
    typed: bytes = b"6*7",
    result: bytes = b"42",
    timeout: float = 20.0,
) -> float:
    """Seconds from spawning argv on a pty to seeing `result` after typing `typed` at `prompt`."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {**env, "TERM": env.get("TERM", "xterm-256color"), "LINES": str(ROWS), "COLUMNS": str(COLS)}
    start = time.perf_counter()
    proc = _spawn(argv, env, slave)
    os.close(slave)
    buf = b""
    answered = 0
    typed_at: int | None = None
    pattern = re.compile(rb"(?<![0-9])" + re.escape(result) + rb"(?![0-9])")
    try:
        while True:
            left = timeout - (time.perf_counter() - start)
            if left <= 0:
                raise CaseError(
                    f"no {'result' if typed_at is not None else 'prompt'} within {timeout:g} s: "
                    f"{strip_ansi(buf)[-200:]!r}"
                )
            if not select.select([master], [], [], left)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program ended
                chunk = b""
            if not chunk:
                raise CaseError(f"{argv[0]} ended before the result: {strip_ansi(buf)[-300:]!r}")
            buf += chunk
            while buf.count(_CPR_REQUEST) > answered:  # a real terminal answers where the cursor is
                os.write(master, b"\x1b[%d;1R" % ROWS)
                answered += 1
            if typed_at is None:
                if prompt.rstrip() in strip_ansi(buf):
                    typed_at = len(buf)
                    os.write(master, typed + b"\r")
            elif pattern.search(strip_ansi(buf[typed_at:]).replace(typed, b"")):
                return time.perf_counter() - start
    finally:
        try:
            _finish(proc, master)
        finally:
            os.close(master)
