"""One HTTP POST to a token endpoint under one deadline and a size limit (parent process only)."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from jcsh.runtime.errors import ConnectFailed, JcshError, LimitHit, UsageError
from jcsh.runtime.hosts import host_port
from jcsh.runtime.records import NamedTuple

__all__ = ["TokenURL", "HttpAnswer", "check_token_url", "post_form", "MAX_ANSWER"]

MAX_ANSWER = 256 * 1024  # a token answer is a few KB; anything near this is not one
_KEPT_HEADERS = ("content-type", "retry-after", "location", "www-authenticate")


class TokenURL(NamedTuple):
    """A checked token URL: https, or http on a loopback address."""

    url: str
    https: bool
    host: str  # bare (an IPv6 address without brackets)
    port: int
    target: str  # path and query, what the request line carries

    @property
    def where(self) -> str:
        return host_port(self.host, self.port)


class HttpAnswer(NamedTuple):
    """The endpoint's answer: status, the few headers that matter (lower-case names), the body."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_url(url: str) -> TokenURL:
    """The URL checked for use as a token endpoint; UsageError (exit 2) says what is wrong."""
    if not url or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise UsageError("the token URL is empty or contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UsageError(f"the token URL {url!r} is not a URL: {e}") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise UsageError(f"the token URL {url!r} must start with https://HOST/")
    if parts.username is not None or parts.password is not None:
        raise UsageError("the token URL must not hold a user or password; the client secret is asked for separately")
    if parts.fragment:
        raise UsageError(f"the token URL {url!r} has a #fragment, which HTTP never sends")
    if parts.scheme == "http" and not _is_loopback(host):
        raise UsageError(
            f"the token URL {url!r} is plain http: the client secret and token would travel unencrypted; "
            "use https:// (plain http is accepted only on a loopback address such as 127.0.0.1 or [::1])"
        )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return TokenURL(url, parts.scheme == "https", host, port or (443 if parts.scheme == "https" else 80), target)


class _Watchdog:
    """Shuts the connection down when the deadline passes, however the endpoint paces its bytes.

    A socket timeout bounds one read; an endpoint that drips a byte a second never trips it.
    shutdown(2) on a duplicate of the socket's descriptor ends every blocked read at once
    (it acts on the connection, not on one descriptor), TLS or not.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._lock = threading.Lock()
        self._guard: socket.socket | None = None
        self._timer: threading.Timer | None = None

    def arm(self, sock: socket.socket) -> None:
        with self._lock:
            self._guard = sock.dup()
        self._timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._guard is not None:
                try:
                    self._guard.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if self._guard is not None:
                self._guard.close()
                self._guard = None


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _resolve(host: str, port: int, deadline: float) -> list[tuple[int, tuple[str, int]]]:
    """getaddrinfo in a thread: a stalled resolver cannot be interrupted, only abandoned."""
    found: list[tuple[int, tuple[str, int]]] = []
    failure: list[OSError] = []

    def run() -> None:
        try:
            for family, _, _, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                found.append((family, (str(address[0]), int(address[1]))))
        except OSError as e:
            failure.append(e)

    worker = threading.Thread(target=run, daemon=True, name="jcsh-resolve")
    worker.start()
    worker.join(_remaining(deadline))
    if worker.is_alive():
        raise TimeoutError("name resolution")
    if failure:
        raise failure[0]
    return found


def _connect(url: TokenURL, deadline: float, dog: _Watchdog) -> socket.socket:
    last: OSError | None = None
    for family, address in _resolve(url.host, url.port, deadline):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
        except TimeoutError:
            sock.close()
            raise
        except OSError as e:
            sock.close()
            last = e
            continue
        dog.arm(sock)
        return sock
    raise last or OSError(f"no address for {url.host}")


def post_form(url: TokenURL, body: bytes, *, context: ssl.SSLContext | None, timeout: float) -> HttpAnswer:
    """POST an urlencoded form; the answer, or ConnectFailed (3), LimitHit (4) for the deadline.

    `timeout` bounds everything: resolving, connecting, the TLS handshake, the request and the
    whole answer. The body read stops at MAX_ANSWER bytes.
    """
    deadline = time.monotonic() + timeout
    dog = _Watchdog(deadline)
    stage = "connecting"
    sock: socket.socket | None = None
    conn: http.client.HTTPConnection | None = None
    try:
        sock = _connect(url, deadline, dog)
        if url.https:
            stage = "the TLS handshake"
            ctx = context or ssl.create_default_context()
            sock.settimeout(_remaining(deadline))
            sock = ctx.wrap_socket(sock, server_hostname=url.host)
        stage = "sending the request"
        conn = http.client.HTTPConnection(url.host, url.port, timeout=_remaining(deadline))
        conn.sock = sock  # connected (and secured) above, under the deadline
        conn.request(
            "POST",
            url.target,
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": "jcsh",
            },
        )
        stage = "waiting for the answer"
        sock.settimeout(_remaining(deadline))
        response = conn.getresponse()
        stage = "reading the answer"
        data = response.read(MAX_ANSWER + 1)
        if dog.fired:
            raise TimeoutError(stage)
        if len(data) > MAX_ANSWER:
            raise ConnectFailed(
                f"the token endpoint {url.where} sent more than {MAX_ANSWER // 1024} KB: not a token answer",
                kind="protocol",
            )
        headers = {k: v for k in _KEPT_HEADERS if (v := response.getheader(k)) is not None}
        return HttpAnswer(response.status, response.reason, headers, data)
    except JcshError:
        raise
    except Exception as e:
        raise _failure(e, url, stage, timeout, dog.fired) from None
    finally:
        dog.disarm()
        if conn is not None:
            conn.close()
        elif sock is not None:
            sock.close()


def _failure(e: Exception, url: TokenURL, stage: str, timeout: float, fired: bool) -> JcshError:
    where = f"the token endpoint {url.where}"
    if fired or isinstance(e, TimeoutError):
        return LimitHit(f"{where} did not answer within {timeout:g} s (stalled during {stage})", kind="timeout")
    if isinstance(e, ssl.SSLCertVerificationError):
        from jcsh.runtime.tls.trust import explain_verify_error

        return ConnectFailed(
            f"the certificate of {where} is not trusted: {explain_verify_error(e, None)}", kind="trust"
        )
    if isinstance(e, ssl.SSLError):
        return ConnectFailed(f"TLS handshake with {where} failed: {e.reason or e}", kind="tls")
    if isinstance(e, http.client.HTTPException):
        return ConnectFailed(f"{where} broke HTTP during {stage}: {type(e).__name__}", kind="protocol")
    if isinstance(e, socket.gaierror):
        return ConnectFailed(f"cannot resolve the token endpoint's host {url.host}: {e.strerror or e}")
    if isinstance(e, OSError):
        return ConnectFailed(f"cannot reach {where} ({stage}): {e.strerror or e}")
    return ConnectFailed(f"{where} failed during {stage}: {type(e).__name__}")
