"""Mail server detection from a domain, following RFC 5321 section 5.1 (dnspython).

MX records in order of preference, every candidate reported, the most preferred one that has
an address record chosen; no MX but an address record: the domain is its own server (implicit
MX); a null MX (RFC 7505) means no mail. NXDOMAIN, no answer at all, a timeout and a temporary
failure are each their own error, and a temporary failure never falls back to the address record.
Lookups go through runtime/resolver.py (`$JCSH_NAMESERVERS` when set).
"""

from __future__ import annotations

from jcsh.runtime.records import NamedTuple
from jcsh.runtime.resolver import (
    DEFAULT_LIFETIME,
    NAMESERVERS_ENV,
    HostLookup,
    Lookup,
    parse_nameservers,
    resolve_host,
)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Candidate",
    "Detection",
    "HostLookup",
    "Lookup",
    "detect",
    "resolve_host",
    "parse_nameservers",
    "NAMESERVERS_ENV",
    "DEFAULT_LIFETIME",
]


class Candidate(NamedTuple):
    """One MX host (or the domain itself for an implicit MX) and what its lookup gave."""

    host: str
    preference: int
    addresses: tuple[str, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "preference": self.preference,
            "addresses": list(self.addresses),
            "error": self.error,
        }


class Detection(NamedTuple):
    """The outcome: a server and how it was found, or an error kind and a message saying what happened."""

    domain: str
    server: str | None
    via: str | None  # "mx" | "implicit-mx"
    candidates: tuple[Candidate, ...]
    kind: str | None = None  # nxdomain | null-mx | no-answer | timeout | temporary | no-address | bad-domain
    message: str | None = None
    nameservers: str = "the system resolver"

    @property
    def ok(self) -> bool:
        return self.server is not None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "domain": self.domain,
            "server": self.server,
            "detected_via": self.via,
            "candidates": [c.to_json() for c in self.candidates],
            "nameservers": self.nameservers,
        }
        if self.kind:
            data["error"] = {"kind": self.kind, "message": self.message}
        return data


def detect(domain: str, *, lifetime: float = DEFAULT_LIFETIME, deadline: float | None = None) -> Detection:
    """Find the mail server of domain (RFC 5321 5.1); never raises for DNS outcomes."""
    from jcsh.runtime.dns_wire import plain_name

    domain = domain.strip().rstrip(".")
    if domain.startswith("["):
        return Detection(
            domain,
            None,
            None,
            (),
            "bad-domain",
            f"{domain} is an address literal, not a domain: there is no MX to look up",
        )
    if plain_name(domain) is None:  # escapes, IDNA, odd labels: dnspython judges (~30 ms to import)
        import dns.name

        try:
            dns.name.from_text(domain)
        except Exception as e:  # dnspython raises several label errors; all mean the same here
            return Detection(domain, None, None, (), "bad-domain", f"{domain!r} is not a valid domain name ({e})")
    lookup = Lookup(lifetime, deadline=deadline)

    def fail(kind: str, message: str, candidates: tuple[Candidate, ...] = ()) -> Detection:
        return Detection(domain, None, None, candidates, kind, message, lookup.shown)

    records, kind, message = lookup.query(domain, "MX")
    if kind == "no-answer":
        own = lookup.addresses(domain)
        if own.addresses:
            return Detection(
                domain, domain, "implicit-mx", (Candidate(domain, 0, own.addresses),), nameservers=lookup.shown
            )
        if own.kind in ("timeout", "temporary", "nxdomain"):
            return fail(own.kind, own.message or "")
        return fail(
            "no-answer",
            f"{domain} has neither an MX record nor an address record (no answer)",
            (Candidate(domain, 0, (), own.message),),
        )
    if kind:
        return fail(kind, message or "")
    mx = sorted({(r.preference, r.exchange.to_text(omit_final_dot=True) or ".") for r in records})
    if all(host == "." for _, host in mx):
        return fail(
            "null-mx",
            f"{domain} publishes a null MX (RFC 7505): it accepts no mail, so its mail server cannot be detected",
            tuple(Candidate(".", p, (), "null MX") for p, _ in mx),
        )
    candidates = []
    kinds = set()
    # every host's A and AAAA asked at once: one round trip instead of two a host
    looked = iter(lookup.addresses_many([host for _, host in mx if host != "."]))
    for preference, host in mx:
        if host == ".":
            candidates.append(Candidate(host, preference, (), "null MX mixed with other MX records; skipped"))
            continue
        got = next(looked)
        kinds.add(got.kind)
        candidates.append(Candidate(host, preference, got.addresses, got.message))
    chosen = next((c for c in candidates if c.addresses), None)
    if chosen is not None:
        return Detection(domain, chosen.host, "mx", tuple(candidates), nameservers=lookup.shown)
    temporary = bool(kinds & {"timeout", "temporary"})
    hosts = ", ".join(c.host for c in candidates if c.host != ".")
    if temporary:
        return fail(
            "temporary",
            f"the MX hosts of {domain} ({hosts}) could not be resolved for now (timeout or temporary DNS failure)",
            tuple(candidates),
        )
    return fail("no-address", f"none of the MX hosts of {domain} ({hosts}) has an address record", tuple(candidates))
