"""The parent's side of the sandbox: spawn the worker, run statements, enforce the limits, respawn.

The parent owns the terminal, the stores and the network; the worker only sends requests, which
`Host` checks and carries out. Nothing the worker does can take the parent down: a worker that
dies, hangs, floods or speaks garbage is killed (its whole process group) and replaced.
"""

from __future__ import annotations

import _thread
import sys
import time

from jcsh.runtime.errors import JcshError, UsageError
from jcsh.runtime.sandbox.limits import DEFAULT_LIMITS, cpu_backstop
from jcsh.runtime.sandbox.process import WorkerProcess
from jcsh.runtime.sandbox.protocol import MAX_FRAME, ProtocolError, encode, encode_reply
from jcsh.runtime.sandbox.stop import LIMITS, StopReason

# Kept light on purpose (no typing, dataclasses, threading or re at import time): a command line
# may import this first thing, to start the worker before it parses its own arguments.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from jcsh.runtime.sandbox.host import Host

__all__ = ["Session", "RunResult", "GRACE_SECONDS", "DEFAULT_TIMEOUT", "prestart", "claim_prestarted", "needs_modules"]

DEFAULT_TIMEOUT = 30.0
GRACE_SECONDS = 2.0  # after SIGINT, how long a script gets to stop before its worker is killed
# After its time limit, a script gets less: it must end within its limit plus 1 s, whatever it does.
TIMEOUT_GRACE_SECONDS = 0.8  # counted from the time limit itself
_START_TIMEOUT = 20.0
_BROKEN = "the output was closed (broken pipe), so the script was stopped"
_POLL = 0.25
CPU_MARGIN = 5.0  # the CPU-time backstop is this far above the wall-clock limit and its grace


class RunResult:
    """How a statement or script ended."""

    __slots__ = ("error", "exit_code", "exited", "limit", "namespace_lost", "ok", "value")

    def __init__(
        self,
        ok: bool,
        exit_code: int,
        error: str | None = None,
        value: str | None = None,
        namespace_lost: bool = False,
        exited: bool = False,
        limit: StopReason | None = None,
    ) -> None:
        self.ok = ok
        self.exit_code = exit_code
        self.error = error  # short traceback of the user's code, or what stopped it
        self.value = value  # repr of a final expression (interactive mode)
        self.namespace_lost = namespace_lost  # the worker was replaced: the script's names are gone
        self.exited = exited  # the script called exit() / raised SystemExit
        self.limit = limit  # the limit that ended it (one of stop.LIMITS), else None

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RunResult({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunResult) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)


_prestarted: list[Session] = []


def needs_modules(source: str) -> bool:
    """Whether a script may import a module: only an import statement reaches one."""
    return "import" in source


def prestart(*, modules: bool = True) -> None:
    """Start a worker now, before the caller has parsed its command line; claim it with claim_prestarted().

    Importing this module and calling this costs a few milliseconds; the worker's own start-up
    then overlaps the caller's (`modules=False` when the script is known to import nothing).
    """
    session = Session(None, modules=modules)
    session.start()
    _prestarted.append(session)
    import atexit

    atexit.register(session.close, wait=False)  # unclaimed (a usage error, --help): gone at exit


def claim_prestarted() -> Session | None:
    """The worker prestart() started, if any (each is claimed once)."""
    return _prestarted.pop() if _prestarted else None


class _WorkerGone(Exception):
    """The worker died, would not start, or broke the protocol."""


class Session:
    """One worker and its script namespace; statements run one at a time."""

    def __init__(
        self,
        host: Host | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        output_limit: int = 1 << 20,
        restricted: bool = True,
        namespace: str = "jcsh.stdlib.preload",
        rlimits: dict[str, int] | None = None,
        modules: bool = True,
    ) -> None:
        self.host = host
        self.timeout = float(timeout)
        self.output_limit = int(output_limit)
        self._restricted = bool(restricted)  # False only in tests: the process layer alone
        self._namespace = namespace
        self._rlimits = dict(DEFAULT_LIMITS if rlimits is None else rlimits)
        # False: the worker skips importing the allowlisted modules (for a one-shot script the caller
        # has checked holds no `import`); a later worker of this session (after a reset) loads them.
        self._modules = bool(modules)
        self._worker: WorkerProcess | None = None
        self._ready: dict[str, Any] | None = None
        self._spawn_error: str | None = None
        self._interrupts = 0
        self._lock = _thread.allocate_lock()

    # -- the worker's life ----------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the worker if there is none; does not wait for it to be ready."""
        if self._worker is not None:
            return
        self._ready = None
        self._spawn_error = None
        config = {
            "namespace": self._namespace,
            "restricted": self._restricted,
            "limits": self._rlimits,
            "output_limit": self.output_limit,
            "args": list(self.host.args) if self.host is not None else [],
            "modules": self._modules,
        }
        self._modules = True
        try:
            self._worker = WorkerProcess(config)
        except OSError as e:
            self._spawn_error = f"cannot start {sys.executable}: {e.strerror}"

    @property
    def pid(self) -> int | None:
        """The worker's process id (its process group id too), when there is one."""
        return self._worker.pid if self._worker is not None else None

    def _await_ready(self) -> dict[str, Any]:
        if self._ready is not None:
            return self._ready
        self.start()
        if self._worker is None:
            raise _WorkerGone(self._spawn_error or "the worker did not start")
        deadline = time.monotonic() + _START_TIMEOUT
        while self._ready is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _WorkerGone(f"the worker did not start within {_START_TIMEOUT:g} s")
            message = self._receive(left)
            if message is None:
                continue
            if message["t"] == "ready":
                self._ready = message
            elif message["t"] == "fatal":
                raise _WorkerGone(f"the worker could not start: {message.get('error')}")
        return self._ready

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        assert self._worker is not None
        try:
            return self._worker.channel.recv(timeout)
        except ProtocolError as e:
            self._kill()
            raise _WorkerGone(f"it broke the protocol ({e})") from None
        except (EOFError, OSError):
            raise _WorkerGone(self._kill()) from None

    def _send(self, message: dict[str, Any] | bytes) -> None:
        assert self._worker is not None
        try:
            self._worker.channel.send(message)
        except OSError:
            raise _WorkerGone(self._kill()) from None

    def _kill(self, *, wait: bool = True) -> str:
        """Kill the worker (its whole process group); how it ended."""
        worker, self._worker = self._worker, None
        self._ready = None
        return worker.kill(wait=wait) if worker is not None else "there was no worker"

    def _restart(self) -> None:
        self._kill()
        if self.host is not None:
            self.host.reset()
        self.start()

    # -- running code ---------------------------------------------------------------------------

    def run(
        self,
        source: str,
        *,
        filename: str = "<stdin>",
        interactive: bool = False,
        on_output: Callable[[str, str], None] | None = None,
        args: list[str] | None = None,
    ) -> RunResult:
        """Run source in the worker's namespace; blocks; output streams to on_output(stream, text)."""
        if type(source) is not str:
            raise TypeError("source must be a string")
        request: dict[str, Any] = {
            "t": "run",
            "src": source,
            "file": str(filename),
            "mode": "single" if interactive else "exec",
        }
        if args is not None:
            request["args"] = [str(a) for a in args]
        if len(encode(request)) > MAX_FRAME:
            raise UsageError(f"the script is larger than {MAX_FRAME >> 20} MiB")
        with self._lock:
            self._interrupts = 0
            try:
                self._await_ready()
                if self.host is not None:
                    self.host.begin_run()
                if self.pid is not None:
                    # Should the parent fail to stop the script (stopped, stuck), the kernel does (SIGXCPU).
                    cpu_backstop(self.pid, self.timeout + GRACE_SECONDS + CPU_MARGIN)
                self._send(request)
                return self._wait_done(on_output or self._default_output)
            except KeyboardInterrupt:
                self._restart()
                return RunResult(False, 130, "interrupted before the script started", namespace_lost=True)
            except _WorkerGone as gone:
                self._restart()
                return RunResult(False, 1, f"the script engine stopped: {gone}", namespace_lost=True)

    def _default_output(self, stream: str, text: str) -> None:
        host = self.host
        target = (host.out if stream == "out" else host.err) if host is not None else None
        if target is None:
            target = sys.stdout if stream == "out" else sys.stderr
        from jcsh.runtime.controls import escape_controls

        target.write(escape_controls(text))  # no caller decided how to show it: the safe way
        target.flush()

    def _wait_done(self, emit: Callable[[str, str], None]) -> RunResult:
        deadline = time.monotonic() + self.timeout
        if self.host is not None:
            self.host.deadline = deadline  # a host call (mail, probe) ends by then: it cannot hold the script up
        stop: StopReason | None = None
        kill_at: float | None = None
        seen_interrupts = 0
        used = 0
        while True:
            try:
                now = time.monotonic()
                if self._interrupts != seen_interrupts:
                    seen_interrupts = self._interrupts
                    if stop is None:
                        stop, kill_at = StopReason.INTERRUPTED, now + GRACE_SECONDS
                        self._sigint()
                    else:
                        kill_at = now  # already stopping: another Ctrl-C does not wait
                if stop is None and now >= deadline:
                    stop, kill_at = StopReason.TIMEOUT, deadline + TIMEOUT_GRACE_SECONDS
                    self._sigint()
                if kill_at is not None and now >= kill_at:
                    return self._stopped_by_kill(stop or StopReason.INTERRUPTED)
                wake = now + _POLL
                if stop is None and deadline < wake:
                    wake = deadline
                if kill_at is not None and kill_at < wake:
                    wake = kill_at
                message = self._receive(max(0.0, wake - now))
                if message is None:
                    continue
                kind = message["t"]
                if kind == "call":  # first: a script's requests are most of the messages
                    self._send(self._serve_call(message, refuse=stop is not None))
                    if self.host is not None:
                        deadline += self.host.take_paused()  # time the user spent answering a prompt
                elif kind == "out":
                    stream = "err" if message.get("s") == "err" else "out"
                    text = message.get("d")
                    if type(text) is not str or stop in (StopReason.OUTPUT, StopReason.BROKEN):
                        continue
                    size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
                    if used + size > self.output_limit:
                        text = text[: max(0, self.output_limit - used)]
                        stop, kill_at = StopReason.OUTPUT, now + GRACE_SECONDS
                    used += size
                    try:
                        if text:
                            emit(stream, text)
                    except (OSError, ValueError):  # nobody can read the output (a closed pipe): stop the script
                        if stop is None:
                            stop, kill_at = StopReason.BROKEN, now + GRACE_SECONDS
                            self._sigint()
                elif kind == "limit" and stop is None:
                    stop, kill_at = StopReason.OUTPUT, now + GRACE_SECONDS
                elif kind == "done":
                    return self._result(message, stop)
            except KeyboardInterrupt:
                self._interrupts += 1

    def _sigint(self) -> None:
        if self._worker is not None:
            self._worker.sigint()

    def _stopped_by_kill(self, stop: StopReason) -> RunResult:
        self._restart()
        lost = "its worker was restarted and the namespace was lost"
        if stop == StopReason.TIMEOUT:
            return RunResult(
                False,
                4,
                f"timed out after {self.timeout:g} s; the script did not stop when interrupted, so {lost}",
                namespace_lost=True,
                limit=StopReason.TIMEOUT,
            )
        if stop == StopReason.OUTPUT:
            return RunResult(
                False,
                4,
                f"output limit reached: the script wrote more than {self.output_limit} "
                f"bytes and did not stop, so {lost}",
                namespace_lost=True,
                limit=StopReason.OUTPUT,
            )
        if stop == StopReason.BROKEN:
            return RunResult(False, 1, f"{_BROKEN}; the script did not stop, so {lost}", namespace_lost=True)
        return RunResult(
            False,
            130,
            f"interrupted; the script did not stop within {GRACE_SECONDS:g} s, so {lost}",
            namespace_lost=True,
        )

    def _result(self, message: dict[str, Any], stop: StopReason | None) -> RunResult:
        code = message.get("exit")
        code = code if type(code) is int and 0 <= code <= 255 else 1
        error = message.get("error")
        # Texts stay as the script made them: the shell escapes them where they are shown.
        error = error if type(error) is str else None
        value = message.get("value")
        value = value if type(value) is str else None
        said = message.get("limit")
        limit = StopReason(said) if type(said) is str and said in LIMITS else None
        result = RunResult(
            bool(message.get("ok")) and code == 0, code, error, value, exited=bool(message.get("exited")), limit=limit
        )
        if stop == StopReason.TIMEOUT:
            where = message.get("where")
            at = f" at {where}" if type(where) is str else ""
            return RunResult(False, 4, f"timed out after {self.timeout:g} s{at}", limit=StopReason.TIMEOUT)
        if stop == StopReason.OUTPUT or limit == StopReason.OUTPUT:
            return RunResult(
                False,
                4,
                f"output limit reached: the script wrote more than {self.output_limit} bytes",
                limit=StopReason.OUTPUT,
            )
        if stop == StopReason.INTERRUPTED:
            return RunResult(False, 130, error or "KeyboardInterrupt")
        if stop == StopReason.BROKEN:
            return RunResult(False, 1, _BROKEN)
        return result

    def _serve_call(self, message: dict[str, Any], *, refuse: bool) -> bytes:
        """The reply frame to one request, encoded once (the size check and the send share it)."""
        ident = message.get("id")
        error: dict[str, Any]
        try:
            if refuse:
                raise JcshError("the script is being stopped", kind="limit")
            if self.host is None:
                raise JcshError("this session has no host to serve requests", kind="failed")
            answer = self.host.handle(message.get("m"), message.get("a"))
            try:
                return encode_reply(ident, answer)  # must be JSON and fit a frame
            except ProtocolError:
                raise JcshError(
                    f"the answer to {message.get('m')} is larger than a script may receive", kind="limit"
                ) from None
        except JcshError as e:
            error = {"kind": e.kind, "message": e.message, "code": e.exit_code}
        except KeyboardInterrupt:
            self._interrupts += 1
            error = {"kind": "limit", "message": "interrupted", "code": 130}
        except Exception as e:
            error = {"kind": "failed", "message": f"{type(e).__name__}: {e}", "code": 1}
        return encode({"t": "reply", "id": ident, "err": error})

    # -- the rest of the contract ---------------------------------------------------------------

    def names(self) -> list[str]:
        """The script namespace's names, for completion; evaluates nothing."""
        if not self._lock.acquire(timeout=0.5):
            return []
        try:
            self._await_ready()
            self._send({"t": "names"})
            deadline = time.monotonic() + 2.0
            while (left := deadline - time.monotonic()) > 0:
                message = self._receive(left)
                if message is None:
                    continue
                if message["t"] == "names" and isinstance(message.get("names"), list):
                    return [n for n in message["names"] if type(n) is str and n.isidentifier()]
                if message["t"] == "call":  # a finalizer asking between statements: not now
                    self._send(self._serve_call(message, refuse=True))
            self._restart()  # a worker that cannot answer this is stuck
            return []
        except _WorkerGone:
            self._restart()
            return []
        finally:
            self._lock.release()

    def interrupt(self) -> None:
        """Ask the running statement to stop (thread-safe): SIGINT now, kill after GRACE_SECONDS."""
        self._interrupts += 1

    def reset(self) -> None:
        """A fresh worker with an empty namespace."""
        with self._lock:
            self._restart()

    def close(self, *, wait: bool = True) -> None:
        """Kill the worker and release everything (wait=False: do not reap it, the parent is exiting)."""
        self._kill(wait=wait)
        if self.host is not None:
            self.host.reset()

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def layers(self) -> list[str]:
        """The sandbox layers the worker applied (waits for it to be ready)."""
        try:
            with self._lock:
                return list(self._await_ready().get("layers") or [])
        except _WorkerGone:
            self._restart()
            return []

    @property
    def limits(self) -> dict[str, object]:
        """The limits in force: timeout, output, and the rlimits the worker set."""
        applied: dict[str, object] = {}
        try:
            with self._lock:
                applied = dict(self._await_ready().get("limits") or {})
        except _WorkerGone:
            self._restart()
        return {
            "timeout_seconds": self.timeout,
            "output_bytes": self.output_limit,
            "interrupt_grace_seconds": GRACE_SECONDS,
            "cpu_backstop_seconds": self.timeout + GRACE_SECONDS + CPU_MARGIN,
            **applied,
        }
