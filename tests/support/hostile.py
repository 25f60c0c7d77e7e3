"""A hostile SMTP server on loopback: raw sockets, one named fault each, and a measured jcsh run.

    with Hostile("drip-ehlo") as server:
        ran = measured([..., "testmail", "--to", TO, "--timeout", "1"])
    assert ran.code == 4 and ran.seconds < 1 + 2 and ran.peak_mb < 200

Every connection gets its own thread (the probe opens several at once). A fault that keeps the
client waiting keeps going until the client hangs up or the server is stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from tests.support.mailconf import RawServer

__all__ = ["Hostile", "FAULTS", "ESCAPES", "measured", "Measured", "raw_controls"]

# OSC 52 (write the clipboard), OSC 0 (window title), CSI 2J (clear), a bidi override, 8-bit CSI.
ESCAPES = "\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\u009b31m"
_ESC = ESCAPES.encode()
CRLF = b"\r\n"
# Made once: building them per connection took long enough on a loaded machine to trip a 0.5 s step.
_LONG_LINE = b"250-" + b"a" * 1_000_000 + b"\r\n250 ok"
_MANY_LINES = b"".join(b"250-EXT%d\r\n" % i for i in range(100_000)) + b"250 END"

FAULTS = {
    "greeting-flood": "220- lines without end, before any greeting is complete",
    "drip-greeting": "the greeting one byte at a time, never finished",
    "drip-ehlo": "the EHLO reply one byte at a time, never finished",
    "drip-final": "the reply after the message's final dot one byte at a time",
    "long-line": "an EHLO reply line of 1 MB",
    "many-lines": "an EHLO reply of 100,000 lines",
    "code-25": "EHLO answered `25 ok`",
    "code-abc": "EHLO answered `abc ok`",
    "code-2200": "EHLO answered `2200 x`",
    "mixed-codes": "EHLO answered 250- then 251",
    "early-reply": "a reply to a command not yet sent, right after the greeting",
    "greeting-421": "421 as the greeting",
    "greeting-554": "554 as the greeting",
    "starttls-454": "454 to STARTTLS",
    "no-starttls": "EHLO without STARTTLS",
    "plain-after-starttls": "220 to STARTTLS, then plain text",
    "drip-handshake": "220 to STARTTLS, then a TLS record one byte at a time, never finished",
    "stall-final": "no reply after the message's final dot",
    "not-smtp": "an HTTP answer instead of a greeting",
    "escape-banner": "a 554 greeting full of terminal escapes",
    "escape-ehlo": "EHLO lines full of terminal escapes (before and after STARTTLS)",
    "escape-starttls": "454 to STARTTLS, full of terminal escapes",
    "escape-refusal": "550 to RCPT, full of terminal escapes",
    "escape-cert": "STARTTLS with a certificate whose subject is full of terminal escapes",
}


class _Peer:
    """One client connection (upgraded in place by STARTTLS)."""

    def __init__(self, sock: socket.socket, stopped: threading.Event, drip: float) -> None:
        self.sock: socket.socket = sock
        self.stopped = stopped
        self.drip_every = drip
        self._pending = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\n" not in self._pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line + b"\n"

    def drip(self, start: bytes) -> None:
        """Send `start`, then one byte at a time, never a line end, until the client gives up."""
        self.send(start)
        while not self.stopped.wait(self.drip_every):
            self.send(b"x")

    def hold(self) -> None:
        """Say nothing more until the client hangs up or the server stops."""
        self.sock.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                if not self.sock.recv(65536):
                    return
            except TimeoutError:
                continue


class Hostile(RawServer):
    """A TCP server on 127.0.0.1 that misbehaves as `fault` (one of FAULTS) on every connection."""

    def __init__(self, fault: str, *, cert: tuple[Path, Path] | None = None, drip: float = 0.05) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        super().__init__(self._handle, concurrent=True)
        self.fault = fault
        self.drip = drip
        self._tls: ssl.SSLContext | None = None
        if cert is not None:  # (chain, key) for STARTTLS
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*cert)

    def __enter__(self) -> Hostile:
        super().__enter__()
        return self

    def _handle(self, conn: socket.socket) -> None:
        peer = _Peer(conn, self.stopped, self.drip)
        try:
            getattr(self, "_" + self.fault.replace("-", "_"))(peer)
        finally:
            peer.sock.close()  # after STARTTLS, the TLS socket

    # -- a dialogue that goes wrong at one point --------------------------------------------------

    def _dialogue(
        self,
        peer: _Peer,
        *,
        greeting: bytes = b"220 hostile.test ESMTP",
        ehlo: bytes | Callable[[_Peer], None] = b"250-hostile.test\r\n250 SIZE 1000000",
        starttls: Callable[[_Peer], None] | None = None,
        rcpt: bytes = b"250 2.1.5 ok",
        final: Callable[[_Peer], None] | None = None,
    ) -> None:
        peer.send(greeting + CRLF)
        while line := peer.line():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                ehlo(peer) if callable(ehlo) else peer.send(ehlo + CRLF)
            elif verb == b"STAR" and starttls is not None:
                starttls(peer)
            elif verb in (b"MAIL", b"RSET"):
                peer.send(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                peer.send(rcpt + CRLF)
            elif verb == b"DATA":
                peer.send(b"354 go ahead\r\n")
                while peer.line() not in (b".\r\n", b""):
                    pass
                final(peer) if final is not None else peer.send(b"250 2.0.0 queued as HOSTILE\r\n")
            elif verb == b"QUIT":
                peer.send(b"221 bye\r\n")
                return
            else:
                peer.send(b"502 5.5.2 not here\r\n")

    def _upgrade(self, peer: _Peer) -> None:
        assert self._tls is not None, "this fault needs cert=(chain, key)"
        peer.send(b"220 2.0.0 go ahead\r\n")
        peer.sock = self._tls.wrap_socket(peer.sock, server_side=True)

    _EHLO_STARTTLS = b"250-hostile.test\r\n250 STARTTLS"

    def _greeting_flood(self, peer: _Peer) -> None:
        flood = b"220-flood\r\n" * 4096
        while not self.stopped.is_set():
            peer.send(flood)

    def _drip_greeting(self, peer: _Peer) -> None:
        peer.drip(b"220 ")

    def _drip_ehlo(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=lambda p: p.drip(b"250-hostile.test\r\n250 "))

    def _drip_final(self, peer: _Peer) -> None:
        self._dialogue(peer, final=lambda p: p.drip(b"250 "))

    def _stall_final(self, peer: _Peer) -> None:
        self._dialogue(peer, final=lambda p: p.hold())

    def _long_line(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=_LONG_LINE)

    def _many_lines(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=_MANY_LINES)

    def _code_25(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=b"25 ok")

    def _code_abc(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=b"abc ok")

    def _code_2200(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=b"2200 x")

    def _mixed_codes(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=b"250-hostile.test\r\n251 STARTTLS")

    def _early_reply(self, peer: _Peer) -> None:
        self._dialogue(peer, greeting=b"220 hostile.test ESMTP\r\n250 2.0.0 nobody asked")

    def _greeting_421(self, peer: _Peer) -> None:
        peer.send(b"421 4.3.2 hostile.test too busy, try later\r\n")

    def _greeting_554(self, peer: _Peer) -> None:
        peer.send(b"554 5.7.1 hostile.test does not want you\r\n")

    def _starttls_454(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=self._EHLO_STARTTLS, starttls=lambda p: p.send(b"454 4.7.0 TLS not available\r\n"))

    def _no_starttls(self, peer: _Peer) -> None:
        self._dialogue(peer)

    def _plain_after_starttls(self, peer: _Peer) -> None:
        def agree_then_plain(p: _Peer) -> None:
            p.send(b"220 2.0.0 go ahead\r\n")
            p.sock.recv(65536)  # the ClientHello, answered in plain text
            p.send(b"250 hostile.test speaks plain text\r\n")
            p.hold()

        self._dialogue(peer, ehlo=self._EHLO_STARTTLS, starttls=agree_then_plain)

    def _drip_handshake(self, peer: _Peer) -> None:
        def agree_then_drip(p: _Peer) -> None:
            p.send(b"220 2.0.0 go ahead\r\n")
            p.sock.recv(65536)  # the ClientHello
            p.drip(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB, one byte at a time

        self._dialogue(peer, ehlo=self._EHLO_STARTTLS, starttls=agree_then_drip)

    def _not_smtp(self, peer: _Peer) -> None:
        peer.send(b"HTTP/1.0 400 Bad Request\r\nServer: hostile\r\n\r\n")

    def _escape_banner(self, peer: _Peer) -> None:
        peer.send(b"554 5.7.1 " + _ESC + b" go away\r\n")

    def _escape_ehlo(self, peer: _Peer) -> None:
        ehlo = b"250-hostile.test " + _ESC + b"\r\n250-X-" + _ESC + b"\r\n250 STARTTLS"
        self._dialogue(peer, ehlo=ehlo, starttls=self._upgrade)

    def _escape_starttls(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=self._EHLO_STARTTLS, starttls=lambda p: p.send(b"454 4.7.0 " + _ESC + CRLF))

    def _escape_refusal(self, peer: _Peer) -> None:
        self._dialogue(peer, rcpt=b"550 5.1.1 " + _ESC + b" no such user")

    def _escape_cert(self, peer: _Peer) -> None:
        self._dialogue(peer, ehlo=self._EHLO_STARTTLS, starttls=self._upgrade)


def raw_controls(data: bytes) -> list[str]:
    """Terminal controls found raw in output: ESC, BEL, C1 (as UTF-8) and bidi overrides or isolates."""
    text = data.decode("utf-8", "replace")
    return sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            if ch in "\x1b\x07" or 0x80 <= ord(ch) <= 0x9F or 0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069
        }
    )


class Measured(NamedTuple):
    code: int
    out: bytes
    err: bytes
    seconds: float
    peak_mb: float  # the process's peak resident memory, its reaped children included

    @property
    def text(self) -> str:
        return (self.out + self.err).decode("utf-8", "replace")


# Run argv from a small process and report its RUSAGE_CHILDREN: a child's ru_maxrss starts at its
# parent's size when forked (Linux keeps the old mm's high-water mark across exec), and pytest's own
# process is hundreds of MB by the end of the suite; this one is a few.
_MEASURE = """
import os, resource, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
status = os.waitpid(pid, 0)[1]
os.write(int(sys.argv[1]), str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss).encode())
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def measured(argv: Sequence[str], *, timeout: float = 30, env: dict[str, str] | None = None) -> Measured:
    """Run argv to its end: exit code, output, wall time, and its peak memory from getrusage(RUSAGE_CHILDREN)."""
    import sys

    report_r, report_w = os.pipe()
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _MEASURE, str(report_w), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            pass_fds=(report_w,),
            start_new_session=True,  # a timeout kills jcsh too, not only the measuring process
        )
    finally:
        os.close(report_w)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    seconds = time.monotonic() - started
    with os.fdopen(report_r, "rb") as report:
        maxrss = report.read()
    return Measured(proc.returncode, out, err, seconds, int(maxrss or 0) / 1024)
