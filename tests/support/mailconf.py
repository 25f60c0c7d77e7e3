"""Configure the mail module of a test home against a running sink, and small raw SMTP servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

from jcsh.runtime.credentials import SMTP, X509, CredentialStore
from jcsh.runtime.registry import Registry

__all__ = ["MAIL", "configure_mail", "trust", "add_login", "RawServer", "PASSWORD", "write"]

MAIL = "/configuration/mail"
PASSWORD = "pw-Zq7!xK9#only-in-the-store"  # distinctive, so a byte search for it cannot miss


def configure_mail(
    registry: Registry,
    port: int,
    *,
    server: str = "127.0.0.1",
    scope: str | None = None,
    sender: str = "jcsh@example.test",
    **keys: str,
) -> None:
    """Server, Transport smtp, Port and From, plus extra keys: `mail.smtp.x` names go under JavaMail/.

    With scope, Server/Port and the extra keys go under /configuration/mail/<scope>/ instead.
    """
    base = f"{MAIL}/{scope}" if scope else MAIL
    registry.set(f"{MAIL}/Transport", "smtp")
    registry.set(f"{MAIL}/From", sender)
    registry.set(f"{base}/Server", server)
    registry.set(f"{base}/Port", str(port))
    for name, value in keys.items():
        path = f"{base}/JavaMail/{name}" if name.startswith("mail.") else f"{base}/{name}"
        registry.set(path, value)


def trust(credentials: CredentialStore, pem: bytes | str, name: str = "test-root") -> None:
    """Trust a root CA or a self-signed certificate (an X509_TrustedCertificate credential)."""
    if X509 not in credentials.protocols():
        credentials.add_protocol(X509)
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    credentials.add(X509, name, "default", certificate=text)


def add_login(
    credentials: CredentialStore,
    endpoint: str,
    user: str = "bob",
    password: str = PASSWORD,
    *,
    allow_plaintext: bool = False,
) -> None:
    """The smtp credential the mail module logs in with (virtual user default); `allow_plaintext` as
    `credential add --allow-plaintext` (a test server without TLS)."""
    if SMTP not in credentials.protocols():
        credentials.add_protocol(SMTP)
    credentials.add(SMTP, endpoint, "default", real_user=user, secret=password, allow_plaintext=allow_plaintext)


class RawServer:
    """A TCP server on 127.0.0.1 running `script(conn)` per connection: one at a time, or each in a
    thread of its own when `concurrent` (a probe opens several at once)."""

    def __init__(self, script: Callable[[socket.socket], object], *, concurrent: bool = False) -> None:
        self.script = script
        self.concurrent = concurrent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.received = bytearray()
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            if self.concurrent:
                threading.Thread(target=self._run, args=(conn,), daemon=True).start()
            else:
                self._run(conn)

    def _run(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                self.script(conn)
            except OSError:  # ssl.SSLError too: the client hung up, which is how most faults end
                pass

    def read_line(self, conn: socket.socket) -> bytes:
        """One CRLF line from the client (also kept in `received`)."""
        line = bytearray()
        while not line.endswith(b"\r\n"):
            chunk = conn.recv(1)
            if not chunk:
                break
            line += chunk
        self.received += line
        return bytes(line)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self._thread.join(5)
        self.sock.close()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
