"""What this machine supports: TLS versions proven by a real in-memory handshake at each one."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

from jcsh.runtime.records import NamedTuple
from jcsh.runtime.tls.trust import restrict_versions

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ProtocolReport", "supported_protocols", "NEWEST_FIRST", "HAS_FLAG"]

NEWEST_FIRST: tuple[str, ...] = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3")
HAS_FLAG = {
    "TLSv1.3": "HAS_TLSv1_3",
    "TLSv1.2": "HAS_TLSv1_2",
    "TLSv1.1": "HAS_TLSv1_1",
    "TLSv1": "HAS_TLSv1",
    "SSLv3": "HAS_SSLv3",
}


class ProtocolReport(NamedTuple):
    """The versions a handshake succeeded at (newest first), the client defaults, and why others failed."""

    names: list[str]
    default_enabled: list[str]
    openssl: str
    reasons: dict[str, str]  # missing version -> why

    def line(self) -> str:
        """The space-separated line the product's snippet prints."""
        return " ".join(self.names)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocols": list(self.names),
            "default_enabled": list(self.default_enabled),
            "openssl": self.openssl,
            "python_ssl_flags": {name: bool(getattr(ssl, flag, False)) for name, flag in HAS_FLAG.items()},
            "reasons": dict(self.reasons),
        }


@functools.cache
def supported_protocols() -> ProtocolReport:
    """Every version this Python/OpenSSL can negotiate, found once per process."""
    # imported here: a probe reads the answer from its cache and never needs them
    import tempfile

    from jcsh.runtime.tls.selfsigned import generate_self_signed

    with tempfile.TemporaryDirectory(prefix="jcsh-tls-") as folder:
        cert, key = generate_self_signed(Path(folder), ("localhost",), days=1, stem="probe")
        names: list[str] = []
        defaults: list[str] = []
        reasons: dict[str, str] = {}
        default_client = _default_client()
        for name in NEWEST_FIRST:
            if not getattr(ssl, HAS_FLAG[name], False):
                reasons[name] = f"not built into this OpenSSL (ssl.{HAS_FLAG[name]} is false)"
                continue
            server = _server_context(name, cert, key)
            try:
                _handshake(_client_context(name), server)
            except (ssl.SSLError, OSError) as e:
                reasons[name] = f"a handshake at exactly {name} failed: {_short(e)}"
                continue
            names.append(name)
            try:
                _handshake(default_client, server)
                defaults.append(name)
            except (ssl.SSLError, OSError):
                pass  # supported, but a verifying client leaves it off by default
    return ProtocolReport(names, defaults, ssl.OPENSSL_VERSION, reasons)


def _pin(ctx: ssl.SSLContext, name: str) -> ssl.SSLContext:
    restrict_versions(ctx, [name])
    return ctx


def _server_context(name: str, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return _pin(ctx, name)


def _client_context(name: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return _pin(ctx, name)


def _default_client() -> ssl.SSLContext:
    # create_default_context() is this plus the system CAs (~30 ms to load), which change
    # neither the versions nor the ciphers offered; the throwaway certificate is not verified.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> str | None:
    """Run a full handshake between two in-memory ends; the negotiated version, or ssl.SSLError."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    ends = [(client, c_out, s_in), (server, s_out, c_in)]
    done = [False, False]
    for _ in range(16):
        for i, (obj, outgoing, peer_incoming) in enumerate(ends):
            if not done[i]:
                try:
                    obj.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
                finally:
                    # Hand over what this end wrote even when it failed: the alert tells the peer.
                    data = outgoing.read()
                    if data:
                        peer_incoming.write(data)
        if all(done):
            return client.version()
    raise ssl.SSLError("handshake did not complete")


def _short(e: BaseException) -> str:
    return str(getattr(e, "reason", None) or e)
