"""The servers the mail cases talk to: `jcsh sink` in its own process, or a real MTA (--mta)."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import NamedTuple

from bench.harness import CaseError

__all__ = ["MailServer", "MtaOptions", "SinkProcess", "parse_host_port"]

_LISTENING = re.compile(rb"listening on (\S+):(\d+) ")
_START_TIMEOUT = 30.0


def parse_host_port(text: str, option: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) -> (host, port); ValueError says what is wrong."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{option} {text!r} is not HOST:PORT")
    return host, int(port)


class MtaOptions(NamedTuple):
    """A real MTA to measure against: its STARTTLS port, and optionally a submission port with AUTH."""

    host: str
    port: int
    ca: Path
    auth_port: int | None = None
    user: str | None = None
    password_file: Path | None = None

    def password(self) -> str:
        if self.password_file is None:
            raise CaseError("--mta-auth-port needs --mta-user and --mta-password-file")
        return self.password_file.read_text(encoding="utf-8").strip()


class SinkProcess:
    """`jcsh sink` running in its own process; counts the messages it prints as they arrive.

    The sink never shares the harness's interpreter: an aiosmtpd thread in the harness would take
    the GIL from the very process that times every peer's handshake.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cert: Path) -> None:
        self.cert_path = cert
        self.host = "127.0.0.1"
        self.port = 0
        self._cond = threading.Condition()
        self._received = 0
        self._plain = 0  # messages that came without TLS (a case that expects TLS fails on them)
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT
        for line in self._proc.stdout:  # the banner comes first; a sink that fails ends stdout
            found = _LISTENING.search(line)
            if found:
                self.port = int(found.group(2))
                break
            if time.monotonic() > deadline:
                break
        if not self.port:
            self.stop()
            err = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
            raise CaseError(f"jcsh sink did not start: {err.splitlines()[-1:] or 'no output'}")
        self._reader = threading.Thread(target=self._read, name="bench-sink-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if b" -> " not in line:  # one line per message: "[time] from -> to | Subject: ... | TLSv1.3 | id"
                continue
            with self._cond:
                self._received += 1
                self._plain += b"| no TLS |" in line
                self._cond.notify_all()

    @property
    def received(self) -> int:
        with self._cond:
            return self._received

    def expect(self, start: int, count: int, who: str, timeout: float = 10.0) -> None:
        """Wait until `count` messages arrived after `start`, all over TLS; CaseError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._received >= start + count, timeout):
                raise CaseError(f"{who}: the sink got {self._received - start} of {count} message(s)")
            if self._received != start + count or self._plain:
                raise CaseError(f"{who}: the sink got {self._received - start} message(s), not {count} over TLS")

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)  # `jcsh sink` stops cleanly on SIGTERM
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


class MailServer(NamedTuple):
    """What a mail case connects to, and how it checks that the messages arrived."""

    label: str  # "sink" or "MTA"
    host: str
    port: int
    cafile: Path
    user: str | None = None
    password: str | None = None
    sink: SinkProcess | None = None  # None: a real MTA, where each side's own exit status is the check

    def mark(self) -> int:
        return self.sink.received if self.sink is not None else 0

    def expect(self, start: int, count: int, who: str) -> None:
        if self.sink is not None:
            self.sink.expect(start, count, who)
