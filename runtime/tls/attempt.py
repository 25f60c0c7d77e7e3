"""One probe connection: connect, the SMTP dialogue up to STARTTLS (or TLS first), one handshake."""

from __future__ import annotations

import os
import select
import smtplib
import socket
import ssl
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from jcsh.runtime.greeting import not_smtp
from jcsh.runtime.hosts import host_port

__all__ = ["Attempt", "Fatal", "Run", "run_attempt", "DATA_OUTCOMES"]

# Outcomes that say something about the server; the others ("connect", "timeout", "not-tls",
# "tls-first") mean it was never reached as an SMTP/TLS peer on this connection.
DATA_OUTCOMES = frozenset({"accepted", "refused", "unverified", "no-starttls", "starttls-refused", "session-refused"})


class Fatal(Exception):
    """This connection could not reach the server at all; outcome says how."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


@dataclass
class Attempt:
    """One connection with one client context, and what it saw."""

    label: str  # a version name, or "trust" for the verifying handshake
    context: ssl.SSLContext | Future[ssl.SSLContext]  # a Future while the system CAs still load
    outcome: str = "pending"
    reason: str = ""
    banner: str | None = None
    ehlo: dict[str, str] | None = None  # extensions before TLS (STARTTLS mode)
    starttls_reply: str | None = None
    ehlo_tls: dict[str, str] | None = None  # extensions over TLS
    replies: list[str] = field(default_factory=list)  # the server's refusals, verbatim
    version: str | None = None
    cipher: tuple[str, str, int] | None = None
    chain: list[bytes] = field(default_factory=list)  # DER, leaf first, as the server sent it
    verify_error: ssl.SSLCertVerificationError | None = None

    def ssl_context(self) -> ssl.SSLContext:
        return self.context.result() if isinstance(self.context, Future) else self.context

    def done(self, outcome: str, reason: str = "") -> None:
        self.outcome, self.reason = outcome, reason


class Run:
    """What the attempts of one probe share: the target, one deadline, and a way to stop them all."""

    GRACE = 1.5  # seconds without a greeting before checking whether the port speaks TLS first

    def __init__(
        self,
        host: str,
        port: int,
        mode: str,
        servername: str,
        timeout: float,
        local_hostname: str,
        tls_check: ssl.SSLContext,
        started: float | None = None,
    ) -> None:
        self.host, self.port, self.mode, self.servername = host, port, mode, servername
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.tls_check = tls_check
        self.deadline = (started if started is not None else time.monotonic()) + timeout
        self.where = host_port(host, port)
        self.fatal: Fatal | None = None
        self.tls_check_once = threading.Lock()
        # A pipe every waiting attempt selects on: one byte wakes them all when the probe is decided.
        self._wake_r, self._wake_w = os.pipe()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def arm(self, sock: socket.socket) -> None:
        """Give the next socket operation the time left, or time out now."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError("deadline passed")
        sock.settimeout(left)

    def abort(self, fatal: Fatal) -> None:
        self.fatal = fatal
        os.write(self._wake_w, b"!")

    def wait_readable(self, sock: socket.socket, until: float) -> bool:
        """Whether sock has something to read (or hit EOF) before `until`; raises when the probe is decided."""
        left = max(0.0, min(until, self.deadline) - time.monotonic())
        waited: list[socket.socket | int] = [sock, self._wake_r]
        readable, _, _ = select.select(waited, [], [], left)
        if self._wake_r in readable and self.fatal is not None:
            raise self.fatal
        return sock in readable

    def close(self) -> None:
        os.close(self._wake_r)
        os.close(self._wake_w)


def run_attempt(run: Run, att: Attempt) -> Attempt:
    """Run one attempt to its end; never raises (a Fatal becomes the outcome)."""
    try:
        if run.mode == "implicit":
            _implicit(run, att)
        else:
            _starttls(run, att)
    except Fatal as f:
        att.done(f.outcome, f.message)
    except (ConnectionError, smtplib.SMTPServerDisconnected) as e:  # reset or closed before the handshake ended
        att.done(
            "refused", f"the server closed the connection during the handshake ({getattr(e, 'strerror', None) or e})"
        )
    except Exception as e:  # a surprise on one connection must not take the others down
        att.done("connect", f"{type(e).__name__}: {e}")
    return att


def _connect(run: Run) -> socket.socket:
    try:
        return socket.create_connection((run.host, run.port), timeout=max(run.remaining(), 0.001))
    except socket.gaierror as e:
        raise Fatal("connect", f"cannot resolve {run.host}: {e.strerror}") from None
    except TimeoutError:
        raise Fatal("timeout", f"no connection to {run.where} within {run.timeout:g} s") from None
    except ConnectionRefusedError:
        raise Fatal("connect", f"connection refused by {run.where} (nothing listens there)") from None
    except OSError as e:
        raise Fatal("connect", f"cannot connect to {run.where}: {e.strerror or e}") from None


def _starttls(run: Run, att: Attempt) -> None:
    conn: socket.socket = _connect(run)
    try:
        _await_greeting(run, conn)
        smtp = _smtp(run, conn)
        try:  # the greeting's first line as sent, for when it is not SMTP (smtplib drops 4 bytes)
            first = conn.recv(120, socket.MSG_PEEK).split(b"\r\n")[0].decode("ascii", "replace")
        except OSError:
            first = ""
        code, msg = _call(run, conn, smtp.getreply, "the greeting")
        if not 200 <= code <= 599:  # smtplib reads a line without a reply code as -1
            raise Fatal("not-smtp", not_smtp(run.where, first).message)
        att.banner = _line(code, msg)
        if code != 220:
            att.replies.append(att.banner)
            return att.done("session-refused", f"the server refused the session: {att.banner}")
        code, msg = _call(run, conn, smtp.ehlo, "EHLO")
        if code != 250:
            att.replies.append(_line(code, msg))
            return att.done("no-starttls", f"the server refused EHLO: {_line(code, msg)}")
        att.ehlo = _features(smtp)
        if not smtp.has_extn("starttls"):
            return att.done("no-starttls", "no STARTTLS offered")
        code, msg = _call(run, conn, lambda: smtp.docmd("STARTTLS"), "STARTTLS")
        att.starttls_reply = _line(code, msg)
        if code != 220:
            att.replies.append(att.starttls_reply)
            return att.done("starttls-refused", f"the server refused STARTTLS: {att.starttls_reply}")
        smtp.file = None  # anything the server sent before the upgrade is dropped, never read as a reply
        conn = att.ssl_context().wrap_socket(conn, server_hostname=run.servername, do_handshake_on_connect=False)
        if not _handshake(run, att, conn, implicit=False):
            return None
        # Start over on the TLS channel, as smtplib.starttls does, and ask EHLO again.
        smtp.sock, smtp.helo_resp, smtp.ehlo_resp, smtp.esmtp_features, smtp.does_esmtp = conn, None, None, {}, False
        _after_tls(run, att, smtp, conn, greet=False)
    finally:
        conn.close()
    return None


def _implicit(run: Run, att: Attempt) -> None:
    conn: socket.socket = _connect(run)
    try:
        conn = att.ssl_context().wrap_socket(conn, server_hostname=run.servername, do_handshake_on_connect=False)
        if _handshake(run, att, conn, implicit=True):
            _after_tls(run, att, _smtp(run, conn), conn, greet=True)
    finally:
        conn.close()


def _after_tls(run: Run, att: Attempt, smtp: smtplib.SMTP, conn: socket.socket, *, greet: bool) -> None:
    """The SMTP facts over TLS; trouble here is reported, the handshake still counts."""
    try:
        if greet:
            code, msg = _call(run, conn, smtp.getreply, "the greeting")
            att.banner = _line(code, msg)
            if code != 220:
                att.replies.append(att.banner)
                return
        code, msg = _call(run, conn, smtp.ehlo, "EHLO")
        if code == 250:
            att.ehlo_tls = _features(smtp)
        else:
            att.replies.append(_line(code, msg))
        smtp.send("QUIT\r\n")  # a courtesy; the reply is not worth a round trip
    except Fatal as f:
        att.replies.append(f"after the handshake: {f.message}")
    except (OSError, smtplib.SMTPException):
        pass


def _await_greeting(run: Run, conn: socket.socket) -> None:
    if run.wait_readable(conn, time.monotonic() + min(run.GRACE, run.timeout / 3)):
        return
    # Silence so far: a port that speaks TLS from the first byte waits for our ClientHello.
    # One attempt finds out on a connection of its own; the others keep waiting meanwhile.
    if run.tls_check_once.acquire(blocking=False) and _speaks_tls(run):
        run.abort(
            Fatal(
                "tls-first",
                f"{run.where} sent no SMTP greeting but answers a TLS handshake: it speaks "
                "TLS from the first byte (implicit TLS, like port 465); probe it with --implicit",
            )
        )
    if run.wait_readable(conn, run.deadline):
        return
    raise Fatal("timeout", f"{run.where} accepted the connection but sent no SMTP greeting within {run.timeout:g} s")


def _speaks_tls(run: Run) -> bool:
    try:
        raw = _connect(run)
    except Fatal:
        return False
    try:
        with run.tls_check.wrap_socket(raw, server_hostname=run.servername, do_handshake_on_connect=False) as conn:
            run.arm(conn)
            conn.do_handshake()
            return True
    except (OSError, ssl.SSLError):
        return False


def _handshake(run: Run, att: Attempt, conn: ssl.SSLSocket, *, implicit: bool) -> bool:
    """One TLS handshake; records version, cipher and chain, or why it failed."""
    try:
        run.arm(conn)
        conn.do_handshake()
    except ssl.SSLCertVerificationError as e:
        att.verify_error = e
        att.done("unverified", str(e.verify_message))
        return False
    except ssl.SSLError as e:
        if implicit and e.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST"):
            raise Fatal(
                "not-tls",
                f"{run.where} answered in plain text, not TLS: it is not an implicit-TLS port "
                "(25 and 587 speak STARTTLS); probe it with --starttls",
            ) from None
        if isinstance(e, ssl.SSLEOFError) or e.reason == "UNEXPECTED_EOF_WHILE_READING":
            att.done("refused", "refused by the server (it closed the connection during the handshake)")
        else:
            att.done("refused", f"refused by the server ({e.reason or e})")
        return False
    except TimeoutError:
        raise Fatal("timeout", f"no TLS handshake with {run.where} within {run.timeout:g} s") from None
    except OSError as e:
        att.done("refused", f"the server closed the connection during the handshake ({e.strerror or e})")
        return False
    att.version = conn.version()
    att.cipher = conn.cipher()
    att.chain = _chain(conn)
    att.done("accepted")
    return True


def _chain(conn: ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent, leaf first (Python 3.13 has it public, 3.10-3.12 privately)."""
    getter = getattr(conn, "get_unverified_chain", None) or getattr(
        getattr(conn, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is not None:
        der = getattr(ssl._ssl, "ENCODING_DER", 2)  # type: ignore[attr-defined]
        return [c if isinstance(c, bytes) else c.public_bytes(der) for c in getter() or []]
    leaf = conn.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _smtp(run: Run, conn: socket.socket) -> smtplib.SMTP:
    smtp = smtplib.SMTP(local_hostname=run.local_hostname, timeout=run.timeout)
    smtp.sock = conn  # smtplib reads replies whole (multi-line) once it holds the connected socket
    return smtp


def _call(run: Run, conn: socket.socket, step: object, what: str) -> tuple[int, str]:
    """One SMTP exchange within the deadline; Fatal when the server hangs up or goes quiet."""
    try:
        run.arm(conn)
        code, msg = step()  # type: ignore[operator]
    except TimeoutError:
        raise Fatal("timeout", f"{run.where} sent no reply to {what} within {run.timeout:g} s") from None
    except smtplib.SMTPServerDisconnected as e:
        if isinstance(e.__context__, TimeoutError):
            raise Fatal("timeout", f"{run.where} sent no reply to {what} within {run.timeout:g} s") from None
        raise Fatal("connect", f"{run.where} closed the connection instead of {what}") from None
    except OSError as e:
        raise Fatal("connect", f"{run.where} failed during {what}: {e.strerror or e}") from None
    return code, msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


def _line(code: int, msg: str) -> str:
    return f"{code} " + " / ".join(msg.splitlines())


def _features(smtp: smtplib.SMTP) -> dict[str, str]:
    return {name.upper(): value.strip() for name, value in smtp.esmtp_features.items()}
