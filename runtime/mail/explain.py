"""Why an SMTP connection failed, in words, with the exit code it means."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from jcsh.runtime.errors import ConnectFailed, JcshError
from jcsh.runtime.smtp.dial import connect
from jcsh.runtime.smtp.wire import Timeouts, Wire

__all__ = ["explain_failure", "peer_certificate"]

_TLS_HINTS = {
    "WRONG_VERSION_NUMBER": " (the server did not answer TLS: is this a plain or STARTTLS port?)",
    "UNEXPECTED_EOF": " (the server hung up: no TLS version or cipher in common? see ssl.protocols)",
    "PROTOCOL_VERSION": " (no TLS version in common: see ssl.protocols and `jcsh tls protocols`)",
    "UNSUPPORTED_PROTOCOL": " (no TLS version in common: see ssl.protocols and `jcsh tls protocols`)",
    "HANDSHAKE_FAILURE": " (no cipher or version in common)",
}


def explain_failure(e: Exception, *, stage: str, where: str, peer_der: Callable[[], bytes | None]) -> JcshError:
    """The error for an ssl or socket exception at `stage` (trust, TLS, connection: all exit 3)."""
    if isinstance(e, ssl.SSLCertVerificationError):
        from jcsh.runtime.tls.trust import explain_verify_error

        why = explain_verify_error(e, peer_der())
        return ConnectFailed(f"the certificate of {where} is not trusted: {why}; nothing was sent", kind="trust")
    if isinstance(e, ssl.SSLError):
        reason = str(e.reason or e)
        hint = next((h for key, h in _TLS_HINTS.items() if key in reason.upper()), "")
        return ConnectFailed(f"TLS handshake with {where} failed: {reason}{hint}; nothing was sent", kind="tls")
    if isinstance(e, OSError) and stage == "connect":
        return ConnectFailed(f"cannot connect to {where}: {e.strerror or e}")
    if isinstance(e, OSError):
        return ConnectFailed(f"the connection with {where} failed during {stage}: {e.strerror or e}")
    return ConnectFailed(f"SMTP with {where} failed during {stage}: {type(e).__name__}: {e}")


def peer_certificate(host: str, port: int, security: str, timeouts: Timeouts) -> bytes | None:
    """The server's certificate over a second, unverified connection (to describe a refused one)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        wire = connect(host, port, timeouts, timeouts.deadline("connect", max(timeouts.read, timeouts.connect)))
    except Exception:  # only a description is at stake
        return None
    try:
        if security != "TLS" and not _starttls_agreed(wire):
            return None
        wire.start_tls(ctx, host, timeouts.deadline("the TLS handshake", timeouts.read))
        return wire.tls.getpeercert(binary_form=True) if wire.tls is not None else None
    except Exception:
        return None
    finally:
        wire.close()


def _starttls_agreed(wire: Wire) -> bool:
    greeting = wire.read_reply(wire.deadline("the greeting"), greeting=True)
    return greeting.code == 220 and wire.command("EHLO localhost").code == 250 and wire.command("STARTTLS").code == 220
