"""The certificate check: the chain the server sent, its host name, and trust under the mail policy."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from jcsh.runtime.errors import JobFailed
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.tls.checks.render import shown
from jcsh.runtime.tls.trust import explain_verify_error

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.tls.attempt import Attempt
    from jcsh.runtime.tls.trust import TrustPolicy

__all__ = ["TrustVerdict", "CertificateResult", "check_certificate", "render_certificate"]


class TrustVerdict(StrEnum):
    TRUSTED = "trusted"
    NOT_TRUSTED = "not trusted"
    SKIPPED = "skipped"  # the policy does not verify this host (DontVerify, ssl.trust)
    UNCHECKED = "unchecked"  # the verifying handshake did not get far enough to say


class CertificateResult(NamedTuple):
    """The leaf's summary (certinfo.summarize), the chain's, and the verdicts."""

    leaf: dict[str, Any]
    chain: tuple[dict[str, Any], ...]
    servername: str
    hostname_match: bool
    verified: bool | None
    trust_error: str | None
    trust_skipped: str | None

    @property
    def verdict(self) -> TrustVerdict:
        if self.trust_skipped:
            return TrustVerdict.SKIPPED
        if self.verified is None:
            return TrustVerdict.UNCHECKED
        return TrustVerdict.TRUSTED if self.verified else TrustVerdict.NOT_TRUSTED

    @property
    def trusted(self) -> bool | None:
        return True if self.trust_skipped else self.verified

    def to_json(self) -> dict[str, Any]:
        return {
            **self.leaf,
            "servername": self.servername,
            "hostname_match": self.hostname_match,
            "trusted": self.trusted,
            "verified": self.verified,
            "trust_error": self.trust_error,
            "trust_skipped": self.trust_skipped,
            "chain": list(self.chain),
        }


def check_certificate(
    chain: Sequence[bytes], trust: Attempt, policy: TrustPolicy, host: str, servername: str
) -> CertificateResult | None:
    """The verdict on the chain a handshake got; `trust` is the verifying attempt."""
    from jcsh.runtime.tls.certinfo import examine

    if not chain:
        return None
    leaf = chain[0]
    try:
        summaries, matches = examine(chain, servername)
    except ValueError as e:  # OpenSSL took the chain; neither certfields nor cryptography reads it
        raise JobFailed(f"the server's certificate chain cannot be read: {e}") from None
    if trust.outcome == "accepted":
        verified, error = True, None
    elif trust.outcome == "unverified" and trust.verify_error is not None:
        verified, error = False, explain_verify_error(trust.verify_error, leaf)
    else:
        verified, error = None, f"could not check: {trust.reason}"
    return CertificateResult(
        leaf=dict(summaries[0]),
        chain=tuple(summaries),
        servername=servername,
        hostname_match=matches,
        verified=verified,
        trust_error=error,
        trust_skipped=policy.skips_verification(host),
    )


def render_certificate(c: CertificateResult) -> list[str]:
    verdict = c.verdict
    if verdict is TrustVerdict.SKIPPED:
        trust = f"not verified ({c.trust_skipped})"
        if c.verified is False:
            trust += f"; would fail: {c.trust_error}"
    elif verdict is TrustVerdict.TRUSTED:
        trust = "trusted"
    else:
        trust = f"NOT trusted: {c.trust_error}"
    leaf = c.leaf
    chain = " <- ".join(link["subject"] for link in c.chain)
    lines = [
        f"certificate {leaf['subject']}",
        f"  issuer    {leaf['issuer']}",
        f"  names     {' '.join(leaf['sans']) or '(no subjectAltName)'}",
        f"  valid     {leaf['not_before'][:10]} to {leaf['not_after'][:10]} ({leaf['days_left']} days left)",
        f"  key       {leaf['key_type']} {leaf['key_size']}, {leaf['signature_algorithm']}",
        f"  sha256    {leaf['sha256']}",
        f"  host      {c.servername} {'matches' if c.hostname_match else 'does NOT match'}",
        f"  trust     {trust}",
        f"  chain     {len(c.chain)} sent: {chain}",
    ]
    return [shown(line) for line in lines]
