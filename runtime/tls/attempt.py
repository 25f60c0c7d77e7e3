"""One probe connection: connect, the SMTP dialogue up to STARTTLS (or TLS first), one handshake."""

from __future__ import annotations

import os
import select
import ssl
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from jcsh.runtime.annotations import TypeVar
from jcsh.runtime.hosts import host_port
from jcsh.runtime.later import Later
from jcsh.runtime.smtp.dial import connect
from jcsh.runtime.smtp.wire import (
    Deadline,
    NotTls,
    ProtocolError,
    Reply,
    ServerClosed,
    StepTimeout,
    Timeouts,
    Wire,
    Woken,
    shown,
)

__all__ = ["Outcome", "Attempt", "Fatal", "Run", "run_attempt", "keeping", "DATA_OUTCOMES"]


class Outcome(StrEnum):
    """How one connection ended."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"  # the handshake at this version
    UNVERIFIED = "unverified"  # the verifying handshake: the chain failed
    NO_STARTTLS = "no-starttls"
    STARTTLS_REFUSED = "starttls-refused"
    SESSION_REFUSED = "session-refused"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    NOT_TLS = "not-tls"
    TLS_FIRST = "tls-first"
    PROTOCOL = "protocol"


# Outcomes that say something about the server; the others mean it was never reached as an
# SMTP/TLS peer on this connection.
DATA_OUTCOMES = frozenset(
    {
        Outcome.ACCEPTED,
        Outcome.REFUSED,
        Outcome.UNVERIFIED,
        Outcome.NO_STARTTLS,
        Outcome.STARTTLS_REFUSED,
        Outcome.SESSION_REFUSED,
    }
)

T = TypeVar("T")


class Fatal(Exception):
    """This connection could not reach the server at all; outcome says how."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


class Attempt:
    """One connection with one client context, and what it saw."""

    # A plain class: dataclasses costs ~10 ms to import on the probe's path.
    def __init__(self, label: str, context: ssl.SSLContext | Later[ssl.SSLContext]) -> None:
        self.label = label  # a version name, or "trust" for the verifying handshake
        self.context = context  # a Later while the system CAs still load
        self.outcome: str = Outcome.PENDING
        self.reason = ""
        self.banner: str | None = None
        self.ehlo: dict[str, str] | None = None  # extensions before TLS (STARTTLS mode)
        self.starttls_reply: str | None = None
        self.ehlo_tls: dict[str, str] | None = None  # extensions over TLS
        self.replies: list[str] = []  # the server's refusals, verbatim
        self.refusal: Reply | None = None  # the reply that refused the session, EHLO or STARTTLS
        self.refused_step = ""  # "the session", "EHLO" or "STARTTLS"
        self.version: str | None = None
        self.cipher: tuple[str, str, int] | None = None
        self.chain: list[bytes] = []  # DER, leaf first, as the server sent it
        self.verify_error: ssl.SSLCertVerificationError | None = None

    def ssl_context(self) -> ssl.SSLContext:
        return self.context.result() if isinstance(self.context, Later) else self.context

    def clone(self, label: str) -> Attempt:
        """The same connection's findings under another label (one connection, two checks)."""
        twin = Attempt(label, self.context)
        twin.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("label", "replies", "chain")})
        twin.replies, twin.chain = list(self.replies), list(self.chain)
        return twin

    def done(self, outcome: str, reason: str = "") -> None:
        self.outcome, self.reason = outcome, reason

    def refused(self, step: str, reply: Reply) -> None:
        self.refusal, self.refused_step = reply, step
        self.replies.append(_line(reply))

    @property
    def session_refused(self) -> bool:
        """The server refused the session (greeting or EHLO), before or after a handshake."""
        return self.refusal is not None and self.refused_step != "STARTTLS"


class Run:
    """What the attempts of one probe share: the target, the step timeouts, and a way to stop them all."""

    GRACE = 1.5  # seconds without a greeting before checking whether the port speaks TLS first

    def __init__(
        self,
        host: str,
        port: int,
        mode: str,
        servername: str,
        timeouts: Timeouts,
        local_hostname: str,
        tls_check: ssl.SSLContext | Callable[[], ssl.SSLContext],
    ) -> None:
        self.host, self.port, self.mode, self.servername = host, port, mode, servername
        self.timeouts = timeouts
        self.local_hostname = local_hostname
        self.tls_check = tls_check  # the context of the TLS-first check, or what makes it (rarely needed)
        self.where = host_port(host, port)
        self.fatal: Fatal | None = None
        self.tls_check_once = threading.Lock()
        # A pipe every waiting attempt selects on: one byte wakes them all when the probe is decided.
        self._wake_r, self._wake_w = os.pipe()
        # The open connections: abort shuts them down, which returns a recv blocked in the kernel
        # (a Wire waits there, not in a poll of the pipe); under the lock, so no closed descriptor
        # (perhaps another connection's by now) is shut down.
        self._open: set[Wire] = set()
        self._open_lock = threading.Lock()

    def in_time(self) -> bool:
        """Whether a further connection fits (before the caller's overall deadline, if any)."""
        return self.timeouts.cap is None or time.monotonic() < self.timeouts.cap

    def abort(self, fatal: Fatal) -> None:
        self.fatal = fatal
        os.write(self._wake_w, b"!")  # first: a Wire that sees its connection end looks here
        import socket

        with self._open_lock:
            for wire in self._open:
                try:
                    wire.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def release(self, wire: Wire) -> None:
        """Close a connection `open` made."""
        with self._open_lock:
            self._open.discard(wire)
        wire.close()

    def open(self, within: Deadline | None = None) -> tuple[Wire, Deadline]:
        """A connection, and the deadline of its first step (connect and greeting, or connect)."""
        t = self.timeouts
        deadline = t.deadline("connect", max(t.read, t.connect))
        if within is not None and within.at < deadline.at:
            deadline = within
        try:
            wire = connect(self.host, self.port, t, deadline, wake=self._wake_r)
        except StepTimeout as e:
            raise Fatal(Outcome.TIMEOUT, f"no connection to {self.where}: {e.message}") from None
        except OSError as e:
            import socket

            if isinstance(e, socket.gaierror):
                raise Fatal(Outcome.CONNECT, f"cannot resolve {self.host}: {e.strerror}") from None
            if isinstance(e, ConnectionRefusedError):
                raise Fatal(Outcome.CONNECT, f"connection refused by {self.where} (nothing listens there)") from None
            raise Fatal(Outcome.CONNECT, f"cannot connect to {self.where}: {e.strerror or e}") from None
        with self._open_lock:
            if self.fatal is None:
                self._open.add(wire)
                return wire, deadline
        wire.close()  # decided meanwhile: this connection would wait for nothing
        raise self.fatal

    def wait_readable(self, wire: Wire, until: float) -> bool:
        """Whether the server said something (or hung up) before `until`; raises when the probe is decided."""
        left = max(0.0, until - time.monotonic())
        fd = wire.sock.fileno()
        readable, _, _ = select.select([fd, self._wake_r], [], [], left)
        if self._wake_r in readable and self.fatal is not None:
            raise self.fatal
        return fd in readable

    def call(self, what: str, step: Callable[[], T]) -> T:
        """One exchange; Fatal when the server hangs up, breaks the protocol or runs out of time."""
        try:
            return step()
        except Woken:
            raise self.fatal or Fatal(Outcome.CONNECT, "the probe was called off") from None
        except StepTimeout as e:
            raise Fatal(Outcome.TIMEOUT, e.message) from None
        except ProtocolError as e:
            raise Fatal(Outcome.PROTOCOL, e.message) from None
        except ServerClosed:
            raise Fatal(Outcome.CONNECT, f"{self.where} closed the connection instead of answering {what}") from None
        except OSError as e:
            raise Fatal(Outcome.CONNECT, f"{self.where} failed during {what}: {e.strerror or e}") from None

    def close(self) -> None:
        os.close(self._wake_r)
        os.close(self._wake_w)


_made = threading.local()


class _Kept(ssl.SSLObject):
    """A TLS object that stays reachable from its thread after its handshake failed (see `keeping`)."""

    @classmethod
    def _create(cls, *args: object, **kwargs: object) -> ssl.SSLObject:
        made = super()._create(*args, **kwargs)  # type: ignore[misc]
        _made.last = made
        return made


def keeping(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """ctx, its TLS objects kept: after a failed verification, the cipher and the chain the server
    sent are still there (the version check reads them; ssl keeps them from getpeercert)."""
    ctx.sslobject_class = _Kept
    return ctx


def run_attempt(run: Run, att: Attempt) -> Attempt:
    """Run one attempt to its end; never raises (a Fatal becomes the outcome)."""
    try:
        if run.mode == "implicit":
            _implicit(run, att)
        else:
            _starttls(run, att)
    except Fatal as f:
        att.done(f.outcome, f.message)
    except Exception as e:  # a surprise on one connection must not take the others down
        att.done(Outcome.CONNECT, f"{type(e).__name__}: {e}")
    return att


def _starttls(run: Run, att: Attempt) -> None:
    wire, deadline = run.open()
    try:
        _await_greeting(run, wire, deadline)
        deadline.step = "the greeting"
        greeting = run.call("the greeting", lambda: wire.read_reply(deadline, greeting=True))
        att.banner = _line(greeting)
        if greeting.code != 220:
            att.refused("the session", greeting)
            return att.done(Outcome.SESSION_REFUSED, f"the server refused the session: {att.banner}")
        ehlo = run.call("EHLO", lambda: wire.command(f"EHLO {run.local_hostname}"))
        if ehlo.code != 250:
            att.refused("EHLO", ehlo)
            return att.done(Outcome.SESSION_REFUSED, f"the server refused EHLO: {_line(ehlo)}")
        att.ehlo = _features(ehlo)
        if "STARTTLS" not in att.ehlo:
            return att.done(Outcome.NO_STARTTLS, "no STARTTLS offered")
        agreed = run.call("STARTTLS", lambda: wire.command("STARTTLS"))
        att.starttls_reply = _line(agreed)
        if agreed.code != 220:
            att.refused("STARTTLS", agreed)
            return att.done(Outcome.STARTTLS_REFUSED, f"the server refused STARTTLS ({att.starttls_reply})")
        if _handshake(run, att, wire, agreed):
            _after_tls(run, att, wire, greet=False)
    finally:
        run.release(wire)
    return None


def _implicit(run: Run, att: Attempt) -> None:
    wire, _ = run.open()
    try:
        if _handshake(run, att, wire, None):
            _after_tls(run, att, wire, greet=True)
    finally:
        run.release(wire)


def _after_tls(run: Run, att: Attempt, wire: Wire, *, greet: bool) -> None:
    """The SMTP facts over TLS; trouble here is reported, the handshake still counts."""
    try:
        if greet:
            greeting = run.call("the greeting", lambda: wire.read_reply(wire.deadline("the greeting"), greeting=True))
            att.banner = _line(greeting)
            if greeting.code != 220:
                att.refused("the session", greeting)
                return
        ehlo = run.call("EHLO", lambda: wire.command(f"EHLO {run.local_hostname}"))
        if ehlo.code == 250:
            att.ehlo_tls = _features(ehlo)
        else:
            att.replies.append(_line(ehlo))
        # A courtesy; the reply is not worth a round trip, nor is looking for unasked-for bytes first
        # (send_lines would: a read of the TLS object and a recv, each a GIL hand-over among the threads).
        wire.write(b"QUIT\r\n", wire.deadline("QUIT", 0.5))
    except Fatal as f:
        att.replies.append(f"after the handshake: {f.message}")
    except Exception:
        pass


def _await_greeting(run: Run, wire: Wire, deadline: Deadline) -> None:
    if run.wait_readable(wire, min(deadline.at, time.monotonic() + min(run.GRACE, run.timeouts.read / 3))):
        return
    # Silence so far: a port that speaks TLS from the first byte waits for our ClientHello.
    # One attempt finds out on a connection of its own; the others keep waiting meanwhile.
    if run.tls_check_once.acquire(blocking=False) and _speaks_tls(run, deadline):
        run.abort(
            Fatal(
                Outcome.TLS_FIRST,
                f"{run.where} sent no SMTP greeting but answers a TLS handshake: it speaks "
                "TLS from the first byte (implicit TLS, like port 465); probe it with --implicit",
            )
        )
    if run.wait_readable(wire, deadline.at):
        return
    if deadline.by_cap:
        raise Fatal(Outcome.TIMEOUT, deadline.expired(run.where).message)
    spent = time.monotonic() - deadline.started
    raise Fatal(Outcome.TIMEOUT, f"{run.where} accepted the connection but sent no SMTP greeting within {spent:.1f} s")


def _speaks_tls(run: Run, within: Deadline) -> bool:
    """Whether the port answers a TLS handshake, found out before `within` ends."""
    check = Deadline("the TLS check", max(0.0, within.left()))
    try:
        wire, _ = run.open(check)
    except Fatal:
        return False
    try:
        ctx = run.tls_check if isinstance(run.tls_check, ssl.SSLContext) else run.tls_check()
        wire.start_tls(ctx, run.servername, check)
        return True
    except Exception:
        return False
    finally:
        run.release(wire)


def _handshake(run: Run, att: Attempt, wire: Wire, agreed: Reply | None) -> bool:
    """One TLS handshake (after `agreed`, the 220 to STARTTLS); records version, cipher and chain, or why it failed."""
    _made.last = None
    try:
        wire.start_tls(att.ssl_context(), run.servername, wire.deadline("the TLS handshake", run.timeouts.read))
    except ssl.SSLCertVerificationError as e:
        att.verify_error = e
        att.done(Outcome.UNVERIFIED, str(e.verify_message))
        kept = getattr(_made, "last", None)
        if kept is not None:  # the server's choice of cipher and its certificates came before the verdict
            att.cipher = kept.cipher()
            att.chain = _chain(kept)
        return False
    except NotTls as e:
        if agreed is None:
            raise Fatal(
                Outcome.NOT_TLS,
                f"{run.where} answered in plain text, not TLS: it is not an implicit-TLS port "
                "(25 and 587 speak STARTTLS); probe it with --starttls",
            ) from None
        raise Fatal(
            Outcome.NOT_TLS,
            f"{run.where} agreed to STARTTLS ({_line(agreed)}) and then spoke plain text: {shown(e.first, 40)}",
        ) from None
    except ssl.SSLError as e:
        if isinstance(e, ssl.SSLEOFError) or e.reason == "UNEXPECTED_EOF_WHILE_READING":
            att.done(Outcome.REFUSED, "refused by the server (it closed the connection during the handshake)")
        else:
            att.done(Outcome.REFUSED, f"refused by the server ({e.reason or e})")
        return False
    except Woken:
        raise run.fatal or Fatal(Outcome.CONNECT, "the probe was called off") from None
    except StepTimeout as e:
        raise Fatal(Outcome.TIMEOUT, e.message) from None
    except (ServerClosed, OSError) as e:
        att.done(
            "refused", f"the server closed the connection during the handshake ({getattr(e, 'strerror', None) or e})"
        )
        return False
    tls = wire.tls
    assert tls is not None
    att.version = tls.version()
    att.cipher = tls.cipher()
    att.chain = _chain(tls)
    att.done(Outcome.ACCEPTED)
    return True


def _chain(tls: ssl.SSLObject) -> list[bytes]:
    """The certificates the server sent, leaf first (Python 3.13 has it public, 3.10-3.12 privately)."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is not None:
        der = getattr(ssl._ssl, "ENCODING_DER", 2)  # type: ignore[attr-defined]
        return [c if isinstance(c, bytes) else c.public_bytes(der) for c in getter() or []]
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _line(reply: Reply) -> str:
    return f"{reply.code} " + " / ".join(reply.lines)


def _features(ehlo: Reply) -> dict[str, str]:
    from jcsh.runtime.smtp.wire import features

    return {name.upper(): value for name, value in features(ehlo).items()}
