"""The result of sending one message, and how a server's refusal becomes an error."""

from __future__ import annotations

from datetime import UTC, datetime

from jcsh.runtime.errors import JcshError, JobFailed, TempFailure

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.smtp.wire import Reply

__all__ = ["SendResult", "refusal", "certificate_fields"]


class SendResult:
    """What happened to one message; `to_json()` is the --json output of `jcsh testmail`."""

    # A plain class, not a dataclass: this is on testmail's start-up path (see docs/decisions.md).
    def __init__(self, server: str | None, port: int | None, security: str | None) -> None:
        self.server = server
        self.port = port
        self.security = security
        self.status = "failed"  # "sent" | "partial" | "failed" | "checked" (--quit-after: nothing sent)
        self.quit_after: str | None = None  # the step a check stopped after (connect, tls, auth, rcpt)
        self.recipients: list[dict[str, str]] | None = None  # a rcpt check's verdict per recipient
        self.tls: dict[str, str] | None = None
        self.verified = False
        self.certificate: dict[str, str] | None = None
        self.authenticated_as: str | None = None
        self.accepted: list[str] = []
        self.refused: dict[str, str] = {}
        self.message_id: str | None = None
        self.final_reply: str | None = None
        self.warnings: list[str] = []
        self.transcript: list[str] | None = None
        self.elapsed_ms = 0
        self.step: str | None = None  # the step of the dialogue that failed
        self.tls_failure: str | None = None  # why TLS was not established, when that is what failed
        self.error: dict[str, str] | None = None
        self.exit_code = 0
        self._explanation: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"SendResult(status={self.status!r}, server={self.server!r}, error={self.error!r})"

    def fail(self, err: JcshError) -> None:
        self.status = "failed"
        self.accepted = []
        self.error = err.to_json()
        self.exit_code = err.exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "server": self.server,
            "port": self.port,
            "security": self.security,
            "tls": self.tls,
            "verified": self.verified,
            "certificate": self.certificate,
            "authenticated_as": self.authenticated_as,
            "accepted": list(self.accepted),
            "refused": dict(self.refused),
            "message_id": self.message_id,
            "final_reply": self.final_reply,
            "warnings": list(self.warnings),
            "transcript": self.transcript,
            "elapsed_ms": self.elapsed_ms,
            "step": self.step,
            "tls_failure": self.tls_failure,
            "error": self.error,
            "explanation": self.explanation(),
            "quit_after": self.quit_after,
            "recipients": self.recipients,
        }

    def explanation(self) -> dict[str, str] | None:
        """The known cause and fix of the failure, else of the first refused recipient explained."""
        if self._explanation is None and (self.error or self.refused):
            from jcsh.runtime.mail.replies import explain  # only when something went wrong

            texts = ([self.error["message"]] if self.error else []) + list(self.refused.values())
            found = next((e for e in (explain(t, server=self.server) for t in texts) if e is not None), None)
            self._explanation = found.to_json() if found else None
        return self._explanation


def refusal(what: str, reply: Reply) -> JcshError:
    """The error for a refused step: 4xx is temporary (exit 75), anything else permanent (exit 1)."""
    text = f"the server refused {what}: {reply}"
    return TempFailure(text) if 400 <= reply.code < 500 else JobFailed(text, kind="refused")


# ssl's names for the attributes cryptography's rfc4514_string() abbreviates; anything else falls back.
_SHORT = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


def _escape(value: str) -> str:
    """RFC 4514 escaping, as cryptography does it."""
    if not value:
        return ""
    for ch in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(ch, "\\" + ch)
    value = value.replace("\0", "\\00")
    if value[0] in ("#", " "):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def _rfc4514(name: tuple[tuple[tuple[str, str], ...], ...]) -> str | None:
    try:
        return ",".join("+".join(f"{_SHORT[k]}={_escape(v)}" for k, v in rdn) for rdn in reversed(name))
    except KeyError:
        return None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _cert_time(text: str) -> datetime:
    """OpenSSL's "Mar  1 12:00:00 2027 GMT" as ssl.cert_time_to_seconds reads it, without its
    time.strptime (which imports _strptime, locale and calendar: ~3 ms of testmail's start-up)."""
    try:
        month, day, clock, year, zone = text.split()
        hour, minute, second = clock.split(":")
        if zone != "GMT":
            raise ValueError(zone)
        return datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError:
        import ssl

        return datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)


def certificate_fields(peer: dict[str, Any], der: bytes | None) -> dict[str, str] | None:
    """Subject, issuer and expiry of the server certificate.

    From ssl's parsed form when verification produced one (no `cryptography` import: it costs a
    command tens of milliseconds), else from the DER via runtime.tls.certinfo.
    """
    subject, issuer = _rfc4514(peer.get("subject", ())), _rfc4514(peer.get("issuer", ()))
    if peer and subject is not None and issuer is not None and peer.get("notAfter"):
        return {"subject": subject, "issuer": issuer, "not_after": _cert_time(peer["notAfter"]).isoformat()}
    if not der:
        return None
    from jcsh.runtime.tls.certinfo import summarize

    info = summarize(der)
    return {"subject": info["subject"], "issuer": info["issuer"], "not_after": info["not_after"]}
