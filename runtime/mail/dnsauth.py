"""Does the sender domain's SPF authorize the relay, and what does its DMARC policy do (pyspf, dmarc)?"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jcsh.runtime.resolver import DEFAULT_LIFETIME, Lookup, resolve_host

__all__ = ["SpfVerdict", "SpfCheck", "DmarcPolicy", "DnsAuth", "check_dns_auth", "find_dmarc"]

_SPF_LOCK = threading.Lock()  # pyspf looks names up through a module-level function: one evaluation at a time
_TREE_WALK_LIMIT = 8  # DMARCbis: at most this many `_dmarc` lookups, however deep the domain


class SpfVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    PERMERROR = "permerror"
    TEMPERROR = "temperror"


@dataclass(frozen=True)
class SpfCheck:
    """check_host() of RFC 7208 for one relay address."""

    address: str
    verdict: SpfVerdict
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "result": self.verdict.value, "explanation": self.explanation}


@dataclass(frozen=True)
class DmarcPolicy:
    """The DMARC record that applies to a domain: where it was found, and its policy."""

    domain: str  # the From domain
    found_at: str | None = None  # the domain whose _dmarc record applies (an ancestor for a subdomain)
    record: str | None = None
    policy: str | None = None  # none | quarantine | reject: what applies to mail from `domain`
    pct: int | None = None
    rua: tuple[str, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "found_at": self.found_at,
            "record": self.record,
            "policy": self.policy,
            "pct": self.pct,
            "rua": list(self.rua),
            "error": self.error,
        }


@dataclass(frozen=True)
class DnsAuth:
    """SPF and DMARC of a sender domain, judged for the relay that sends its mail."""

    domain: str
    relay: str
    spf_record: str | None
    spf: tuple[SpfCheck, ...]
    dmarc: DmarcPolicy
    relay_error: str | None = None
    spf_error: str | None = None
    private: tuple[str, ...] = field(default=())  # relay addresses receivers never see

    @property
    def authorized(self) -> bool:
        return bool(self.spf) and all(c.verdict is SpfVerdict.PASS for c in self.spf)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "relay": self.relay,
            "spf": {
                "record": self.spf_record,
                "authorized": self.authorized,
                "checks": [c.to_json() for c in self.spf],
                "error": self.spf_error or self.relay_error,
            },
            "dmarc": self.dmarc.to_json(),
        }


def check_dns_auth(sender: str, relay: str, *, lifetime: float = DEFAULT_LIFETIME) -> DnsAuth:
    """SPF of sender's domain evaluated for each address of relay, and the domain's DMARC policy.

    Every lookup goes through $JCSH_NAMESERVERS when set; nothing but DNS leaves the machine.
    """
    domain = sender.rpartition("@")[2].strip().rstrip(".").lower()
    lookup = Lookup(lifetime)
    texts, spf_error = _txt(lookup, domain)
    spf_records = [t for t in texts if t.lower().startswith("v=spf1")]
    if len(spf_records) > 1:
        spf_error = f"{domain} publishes {len(spf_records)} SPF records: receivers treat that as a permanent error"
    dmarc = find_dmarc(domain, lookup)
    found = resolve_host(relay, lifetime=lifetime)
    if not found.addresses:
        return DnsAuth(
            domain, relay, _first(spf_records), (), dmarc, f"cannot resolve {relay}: {found.message}", spf_error
        )
    checks = tuple(_spf(address, sender, relay, lookup, lifetime) for address in found.addresses)
    private = tuple(a for a in found.addresses if not ipaddress.ip_address(a).is_global)
    return DnsAuth(domain, relay, _first(spf_records), checks, dmarc, None, spf_error, private)


def _first(items: list[str]) -> str | None:
    return items[0] if items else None


def _txt(lookup: Lookup, name: str) -> tuple[list[str], str | None]:
    records, kind, message = lookup.query(name, "TXT")
    if kind in ("nxdomain", "no-answer"):
        return [], None
    if kind:
        return [], message
    return [b"".join(r.strings).decode("utf-8", "replace") for r in records], None


def _spf(address: str, sender: str, helo: str, lookup: Lookup, lifetime: float) -> SpfCheck:
    import spf

    with _SPF_LOCK:
        saved = spf.DNSLookup
        spf.DNSLookup = _through(lookup, spf)
        try:
            # querytime bounds the whole evaluation (RFC 7208 4.6.4 suggests 20 s); 10 lookups at most.
            q = spf.query(i=address, s=sender, h=helo, timeout=lifetime, querytime=max(lifetime * 2, 1.0))
            result, _code, explanation = q.check()
        finally:
            spf.DNSLookup = saved
    try:
        verdict = SpfVerdict(result)
    except ValueError:  # pyspf's pre-RFC 7208 names
        verdict = {"error": SpfVerdict.TEMPERROR, "unknown": SpfVerdict.PERMERROR}.get(result, SpfVerdict.PERMERROR)
    return SpfCheck(address, verdict, str(explanation))


def _through(lookup: Lookup, spf: Any) -> Any:
    """pyspf's DNSLookup hook answered by our resolver ($JCSH_NAMESERVERS), with pyspf's return shapes."""

    def dns_lookup(name: str, qtype: str, tcpfallback: bool = True, timeout: float = 30) -> list[Any]:
        answer, kind, message = lookup.answer(name, qtype)
        if answer is None:
            if kind in ("nxdomain", "no-answer"):
                return []
            raise spf.TempError(f"DNS {message}")
        out: list[Any] = []
        for rdata in answer:
            if qtype in ("A", "AAAA"):
                out.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                out.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                out.append(((name, qtype), rdata.target.to_text(True)))
            elif qtype in ("TXT", "SPF"):
                out.append(((name, qtype), rdata.strings))
        return out

    return dns_lookup


def find_dmarc(domain: str, lookup: Lookup | None = None) -> DmarcPolicy:
    """The DMARC record for mail from domain: its own `_dmarc`, else the nearest ancestor's (DMARCbis tree walk)."""
    from dmarc import DMARC, Error

    lookup = lookup or Lookup(DEFAULT_LIFETIME)
    labels = domain.split(".")
    candidates = [domain]
    start = max(1, len(labels) - (_TREE_WALK_LIMIT - 1))  # DMARCbis: a long name jumps to its last 7 labels
    candidates += [".".join(labels[i:]) for i in range(start, len(labels) - 1)]
    for at in candidates:
        texts, error = _txt(lookup, f"_dmarc.{at}")
        if error:
            return DmarcPolicy(domain, at, error=error)
        records = [t for t in texts if t.startswith("v=DMARC1")]
        if not records:
            continue
        if len(records) > 1:
            return DmarcPolicy(
                domain, at, records[0], error=f"_dmarc.{at} holds {len(records)} DMARC records: none applies"
            )
        try:
            parsed = DMARC().parse_record(records[0], domain=domain, org_domain=at)
        except Error as e:
            return DmarcPolicy(domain, at, records[0], error=f"the DMARC record of {at} is malformed: {e}")
        applied = parsed.p if at == domain or parsed.sp.value is None else parsed.sp
        return DmarcPolicy(domain, at, records[0], applied.value, parsed.pct, tuple(parsed.rua))
    return DmarcPolicy(domain)
