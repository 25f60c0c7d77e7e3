"""Sandbox cases: statement round trip in a warm session; a guarded CPU loop against plain Python."""

from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import sys
import time
from typing import Any

from bench.fixtures import Fixtures, have_module
from bench.harness import Case, CaseError, Row, Side, Unavailable, absolute_row, alternate, ratio_row

__all__ = ["CASES", "LOOP", "open_session"]

ROUND_TRIP_LIMIT_S = 0.002  # issue 6: median under 2 ms
LOOP_LIMIT = 2.0  # issue 6: within 2x plain Python
LOOP_ITERATIONS = 1_000_000
GET_LIMIT = 1.5  # issue 15: within 1.5x a bare two-process JSON round trip
GET_CALLS = 2000
GET_PATH = "/bench/get/key"

# attribute reads and writes on a script object and an item read, every iteration: the writes go
# through the write guard, the item read through _getitem_; reads of public names are checked at
# compile time. A last expression so the value comes back.
LOOP = """\
class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y
p = Point(3.0, 4.0)
d = {{"k": 2.0}}
total = 0.0
for i in range({n}):
    p.x = p.y + d["k"]
    total += p.x * p.y
total
"""


def open_session(fx: Fixtures, *, restricted: bool = True) -> tuple[Any, Any]:
    """A started sandbox Session on a scratch home, and the registry to close after it."""
    if not (have_module("jcsh.runtime.sandbox.client") and have_module("jcsh.runtime.sandbox.host")):
        raise Unavailable("runtime/sandbox/client.py and host.py are not there yet")
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import open_registry
    from jcsh.runtime.sandbox.client import Session
    from jcsh.runtime.sandbox.host import Host

    home = fx.folder("sandbox-home")
    reg = open_registry(home)
    out = io.StringIO()
    host = Host(reg, CredentialStore(reg, home), home, out=out, err=out)
    session = Session(host, timeout=120, restricted=restricted)
    session.start()
    return session, reg


def _statement(session: Any, source: str, *, interactive: bool = False) -> Any:
    result = session.run(source, interactive=interactive)
    if not result.ok:
        raise CaseError(f"sandbox refused {source.splitlines()[0]!r}: {result.error}")
    return result


def round_trip(fx: Fixtures) -> list[Row]:
    session, reg = open_session(fx)
    try:
        for _ in range(50):  # the first waits for the worker; the rest warm both sides' caches
            _statement(session, "x = 1")

        def once() -> float:
            start = time.perf_counter()
            _statement(session, "x = 1")
            return time.perf_counter() - start

        side = Side("jcsh", once)
        alternate([side], fx.settings.runs(500, quick=50), warmup=0)
    finally:
        session.close()
        reg.close()
    return [
        absolute_row(
            "statement round trip",
            side,
            ROUND_TRIP_LIMIT_S,
            "< 2 ms",
            note="Session.run('x = 1') in a warm session: parent -> worker -> reply",
        )
    ]


def guarded_loop(fx: Fixtures) -> list[Row]:
    n = LOOP_ITERATIONS // (10 if fx.settings.quick else 1)
    source = LOOP.format(n=n)
    expected: dict[str, Any] = {}
    exec(compile(source, "<plain>", "exec"), expected)
    want = repr(expected["total"])
    sessions = [open_session(fx), open_session(fx, restricted=False)]
    try:

        def sandboxed(session: Any) -> Any:
            def once() -> float:
                start = time.perf_counter()
                result = _statement(session, source, interactive=True)
                elapsed = time.perf_counter() - start
                if result.value != want:
                    raise CaseError(f"the sandboxed loop gave {result.value!r}, not {want}")
                return elapsed

            return once

        code = compile(source, "<plain>", "exec")

        def plain() -> float:
            start = time.perf_counter()
            exec(code, {})
            return time.perf_counter() - start

        jcsh = Side("jcsh", sandboxed(sessions[0][0]))
        python = Side("plain python", plain)
        process_only = Side("sandbox, process layer only", sandboxed(sessions[1][0]))
        alternate([jcsh, python, process_only], fx.settings.runs(7), warmup=1)
    finally:
        for session, reg in sessions:
            session.close()
            reg.close()
    title = "guarded CPU loop"
    note = (
        f"{n:,} iterations of `p.x = p.y + d['k']; total += p.x * p.y` (p a script class instance) at "
        "module level; plain python = exec in the harness; the process-layer row runs the worker without "
        "RestrictedPython (guard cost apart)"
    )
    return [ratio_row(title, jcsh, python, LOOP_LIMIT, note=note), ratio_row(title, jcsh, process_only, None)]


# The baseline: a parent and a child process exchanging length-prefixed JSON frames over a socket
# pair, as jcsh's parent and worker do, with nothing else on either side.
ECHO_CHILD = """\
import json, socket, struct, sys
sock = socket.socket(fileno=int(sys.argv[1]))
header = struct.Struct(">I")
encode = json.JSONEncoder(separators=(",", ":")).encode
buf = b""
def frame():
    global buf
    while True:
        if len(buf) >= 4:
            end = 4 + header.unpack_from(buf)[0]
            if len(buf) >= end:
                body, buf = buf[4:end], buf[end:]
                return body
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
while True:
    call = json.loads(frame())
    body = encode({"t": "reply", "id": call["id"], "ok": "value of the bench"}).encode()
    sock.sendall(header.pack(len(body)) + body)
"""


class _EchoPeer:
    """The bare round trip: send a call frame to the child, read its reply frame, `calls` times.

    Both ends make jcsh's frames (compact JSON, so the same sizes), with one shared encoder and a
    frame read whole from one recv when it came whole, as jcsh's channel does.
    """

    def __init__(self, fx: Fixtures, calls: int) -> None:
        script = fx.scratch / "echo_child.py"
        script.write_text(ECHO_CHILD)
        self.sock, child = socket.socketpair()
        self.proc = subprocess.Popen([sys.executable, str(script), str(child.fileno())], pass_fds=[child.fileno()])
        child.close()
        self.calls = calls
        self.header = struct.Struct(">I")
        self.encode = json.JSONEncoder(separators=(",", ":")).encode
        self.buf = b""

    def _frame(self) -> bytes:
        while True:
            if len(self.buf) >= 4:
                end = 4 + self.header.unpack_from(self.buf)[0]
                if len(self.buf) >= end:
                    body, self.buf = self.buf[4:end], self.buf[end:]
                    return body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CaseError("the JSON echo child hung up")
            self.buf += chunk

    def __call__(self) -> float:
        start = time.perf_counter()
        for i in range(self.calls):
            body = self.encode({"t": "call", "id": i, "m": "registry.get", "a": {"path": GET_PATH}}).encode()
            self.sock.sendall(self.header.pack(len(body)) + body)
            reply = json.loads(self._frame())
            if reply.get("ok") != "value of the bench":
                raise CaseError(f"the JSON echo child replied {reply!r}")
        return (time.perf_counter() - start) / self.calls

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(timeout=10)


def registry_get(fx: Fixtures) -> list[Row]:
    calls = 200 if fx.settings.quick else GET_CALLS
    session, reg = open_session(fx)
    reg.set(GET_PATH, "value of the bench")
    peer = _EchoPeer(fx, calls)
    try:
        loop = f"n = 0\nfor i in range({calls}):\n    n += len(registry.get({GET_PATH!r}))\nn\n"
        want = repr(calls * len("value of the bench"))
        _statement(session, loop, interactive=True)  # the worker is up and its caches warm

        def jcsh_calls() -> float:
            start = time.perf_counter()
            result = _statement(session, loop, interactive=True)
            elapsed = time.perf_counter() - start
            if result.value != want:
                raise CaseError(f"the registry.get loop gave {result.value!r}, not {want}")
            return elapsed / calls

        jcsh = Side("jcsh", jcsh_calls)
        bare = Side("JSON round trip, 2 processes", peer)
        # A sample is ~50 ms a side: 21 of them cost ~2 s and keep one burst of another process's
        # work on the 2 CPUs from deciding the median (7 gave 1.0-2.0x for the same code at load 5-6).
        alternate([jcsh, bare], fx.settings.runs(21), warmup=1)
    finally:
        peer.close()
        session.close()
        reg.close()
    note = (
        f"per call, {calls:,} calls: `registry.get` in a script (worker -> parent, read from the store, reply) "
        "vs a parent and a python child exchanging length-prefixed JSON frames over a socket pair"
    )
    return [ratio_row("`registry.get` from a script", jcsh, bare, GET_LIMIT, note=note)]


CASES = [
    Case("roundtrip", "statement round trip", (("—", "< 2 ms"),), round_trip),
    Case(
        "loop",
        "guarded CPU loop",
        (("plain python", f"<= {LOOP_LIMIT:g}x"), ("sandbox, process layer only", "report")),
        guarded_loop,
    ),
    Case(
        "regget",
        "`registry.get` from a script",
        (("JSON round trip, 2 processes", f"<= {GET_LIMIT:g}x"),),
        registry_get,
    ),
]
