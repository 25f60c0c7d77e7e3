"""Why an SMTP connection failed, in words, with the exit code it means."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable

from jcsh.runtime.errors import ConnectFailed, JcshError, LimitHit
from jcsh.runtime.mail.result import refusal
from jcsh.runtime.mail.transcript import ReadTimeout, RecordingSMTP, RecordingSMTP_SSL, Transcript

__all__ = ["explain_failure", "peer_certificate"]

_TLS_HINTS = {
    "WRONG_VERSION_NUMBER": " (the server did not answer TLS: is this a plain or STARTTLS port?)",
    "UNEXPECTED_EOF": " (the server hung up: no TLS version or cipher in common? see ssl.protocols)",
    "PROTOCOL_VERSION": " (no TLS version in common: see ssl.protocols and `jcsh tls protocols`)",
    "UNSUPPORTED_PROTOCOL": " (no TLS version in common: see ssl.protocols and `jcsh tls protocols`)",
    "HANDSHAKE_FAILURE": " (no cipher or version in common)",
}


def explain_failure(
    e: Exception, *, stage: str, where: str, security: str, peer_der: Callable[[], bytes | None]
) -> JcshError:
    """The error for a network or TLS exception at `stage` (trust, TLS, connection: 3; timeout: 4)."""
    if isinstance(e, ssl.SSLCertVerificationError):
        from jcsh.runtime.tls.trust import explain_verify_error

        why = explain_verify_error(e, peer_der())
        return ConnectFailed(f"the certificate of {where} is not trusted: {why}; nothing was sent", kind="trust")
    if isinstance(e, ReadTimeout | TimeoutError):
        hint, what = "", f"during {stage}"
        if stage == "connecting":
            what = "waiting for the greeting" if isinstance(e, ReadTimeout) else "connecting"
            if isinstance(e, ReadTimeout) and security != "TLS":
                hint = " (is this an implicit-TLS port such as 465? then set ConnectionSecurity TLS)"
        return LimitHit(f"timed out {what} with {where}: {e}{hint}", kind="timeout")
    if isinstance(e, ssl.SSLError):
        reason = str(e.reason or e)
        hint = next((h for key, h in _TLS_HINTS.items() if key in reason.upper()), "")
        return ConnectFailed(f"TLS handshake with {where} failed: {reason}{hint}; nothing was sent", kind="tls")
    if isinstance(e, smtplib.SMTPServerDisconnected):
        tail = "; the message was probably not delivered" if stage == "DATA" else ""
        return ConnectFailed(f"{where} closed the connection during {stage}{tail}")
    if isinstance(e, smtplib.SMTPResponseException):
        return refusal(stage, e.smtp_code, e.smtp_error)
    if isinstance(e, OSError):
        return ConnectFailed(f"cannot connect to {where}: {e.strerror or e}")
    return ConnectFailed(f"SMTP with {where} failed during {stage}: {e}")


def peer_certificate(host: str, port: int, security: str, timeouts: dict[str, float]) -> bytes | None:
    """The server's certificate over a second, unverified connection (to describe a refused one)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    quiet = Transcript(False)
    client: RecordingSMTP
    if security == "TLS":
        client = RecordingSMTP_SSL(quiet, context=ctx, local_hostname="localhost", **timeouts)
    else:
        client = RecordingSMTP(quiet, local_hostname="localhost", **timeouts)
    client._host = host  # smtplib's TLS server_hostname (SNI)
    try:
        client.connect(host, port)
        if security != "TLS":
            client.ehlo()
            client.starttls(context=ctx)
        return client.sock.getpeercert(binary_form=True) if isinstance(client.sock, ssl.SSLSocket) else None
    except Exception:  # only a description is at stake
        return None
    finally:
        client.close()
