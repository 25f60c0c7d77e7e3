"""What the SMTP dialogue of a probe showed: banner, extensions before and after TLS, refusals."""

from __future__ import annotations

from collections.abc import Sequence

from jcsh.runtime.records import NamedTuple
from jcsh.runtime.tls.checks.render import shown

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.tls.attempt import Attempt

__all__ = ["SmtpFacts", "Negotiated", "smtp_facts", "negotiated", "render_smtp"]


class Negotiated(NamedTuple):
    version: str | None
    cipher: str
    cipher_protocol: str
    bits: int

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


class SmtpFacts(NamedTuple):
    banner: str | None
    ehlo: dict[str, str] | None
    starttls_offered: bool | None
    starttls_reply: str | None
    ehlo_tls: dict[str, str] | None
    auth: tuple[str, ...]
    size: int | None
    replies: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "auth": list(self.auth), "replies": list(self.replies)}


def negotiated(best: Attempt | None) -> Negotiated | None:
    if best is None or best.cipher is None:
        return None
    cipher, protocol, bits = best.cipher
    return Negotiated(best.version, cipher, protocol, bits)


def smtp_facts(attempts: Sequence[Attempt], best: Attempt | None) -> SmtpFacts:
    first = next((a for a in attempts if a.banner is not None), None)
    plain_ehlo = next((a.ehlo for a in attempts if a.ehlo is not None), None)
    tls_ehlo = (
        best.ehlo_tls
        if best is not None and best.ehlo_tls is not None
        else next((a.ehlo_tls for a in attempts if a.ehlo_tls is not None), None)
    )
    extensions = tls_ehlo if tls_ehlo is not None else plain_ehlo or {}
    size = extensions.get("SIZE", "")
    replies: list[str] = []
    for att in attempts:
        replies += [r for r in att.replies if r not in replies]
    return SmtpFacts(
        banner=first.banner if first else None,
        ehlo=plain_ehlo,
        starttls_offered=None if plain_ehlo is None else "STARTTLS" in plain_ehlo,
        starttls_reply=next((a.starttls_reply for a in attempts if a.starttls_reply), None),
        ehlo_tls=tls_ehlo,
        auth=tuple(extensions.get("AUTH", "").split()),
        size=int(size) if size.isdigit() else None,
        replies=tuple(replies),
    )


def render_smtp(s: SmtpFacts) -> list[str]:
    lines = []
    if s.banner:
        lines.append(f"smtp       {s.banner}")
    # AUTH and SIZE often appear only after STARTTLS, so both answers are shown.
    for label, ehlo in (("ehlo     ", s.ehlo), ("after tls", s.ehlo_tls)):
        if ehlo is not None:
            lines.append(f"  {label} " + " ".join(f"{k} {v}".strip() for k, v in ehlo.items()))
    if s.starttls_offered is False:
        lines.append("  STARTTLS not offered")
    lines += [f"  reply    {reply}" for reply in s.replies]
    return [shown(line) for line in lines]
