"""Mail server detection from a domain, following RFC 5321 section 5.1 (dnspython).

MX records in order of preference, every candidate reported, the most preferred one that has
an address record chosen; no MX but an address record: the domain is its own server (implicit
MX); a null MX (RFC 7505) means no mail. NXDOMAIN, no answer at all, a timeout and a temporary
failure are each their own error, and a temporary failure never falls back to the address record.
Lookups go to `$JCSH_NAMESERVERS` (`host[:port][,host[:port]...]`, IPv6 as `[::1]:53`) when set.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jcsh.runtime.errors import ConfigError
from jcsh.runtime.hosts import bare_host, host_port, shown_host

if TYPE_CHECKING:
    import dns.resolver

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

NAMESERVERS_ENV = "JCSH_NAMESERVERS"
DEFAULT_LIFETIME = 5.0


@dataclass(frozen=True)
class Candidate:
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


@dataclass(frozen=True)
class HostLookup:
    """The addresses of one host, or why there are none (kind: nxdomain|no-address|timeout|temporary)."""

    host: str
    addresses: tuple[str, ...]
    kind: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Detection:
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


def parse_nameservers(text: str) -> list[tuple[str, int]]:
    """`host[:port][,host[:port]...]` -> [(address, port)]; IPv6 bare or as `[addr]:port`."""
    servers = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, port = item, "53"
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ConfigError(f"${NAMESERVERS_ENV}: {item!r} is not [IPv6]:port")
            port = rest[1:] or "53"
        elif item.count(":") == 1:
            host, port = item.split(":")
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:
            raise ConfigError(
                f"${NAMESERVERS_ENV}: {host!r} is not an IP address (name servers are given by address)"
            ) from None
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"${NAMESERVERS_ENV}: {port!r} is not a port number (1-65535)")
        servers.append((address, int(port)))
    if not servers:
        raise ConfigError(f"${NAMESERVERS_ENV} is set but names no server")
    return servers


def _show(address: str, port: int) -> str:
    return shown_host(address) if port == 53 else host_port(address, port)


def _resolver(lifetime: float, dnssec: bool = False) -> tuple[dns.resolver.Resolver, str]:
    import dns.nameserver
    import dns.resolver

    text = os.environ.get(NAMESERVERS_ENV, "").strip()
    if text:
        servers = parse_nameservers(text)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in servers]
        shown = ", ".join(_show(a, p) for a, p in servers)
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise ConfigError(f"no system resolver is configured; set ${NAMESERVERS_ENV}") from None
        shown = "the system resolver (" + ", ".join(str(n) for n in resolver.nameservers) + ")"
    resolver.lifetime = lifetime
    resolver.timeout = min(2.0, lifetime)
    resolver.cache = None
    if dnssec:  # ask the resolver to say (AD bit) whether it validated the answer
        import dns.flags

        resolver.use_edns(0, dns.flags.DO, 1232)
        resolver.flags = dns.flags.RD | dns.flags.AD
    return resolver, shown


class Lookup:
    """Queries through one resolver ($JCSH_NAMESERVERS or the system's), each outcome turned into
    (records, kind, message); with dnssec, the queries ask for the AD bit."""

    def __init__(self, lifetime: float, *, dnssec: bool = False) -> None:
        self.resolver, self.shown = _resolver(lifetime, dnssec)
        self.lifetime = lifetime

    def query(self, name: str, rdtype: str) -> tuple[list[Any], str | None, str | None]:
        answer, kind, message = self.answer(name, rdtype)
        return (list(answer) if answer is not None else []), kind, message

    def answer(self, name: str, rdtype: str) -> tuple[dns.resolver.Answer | None, str | None, str | None]:
        """The whole answer (its `response` holds the header flags), or None with the error kind and message."""
        import dns.exception
        import dns.resolver

        try:
            return self.resolver.resolve(name, rdtype, search=False), None, None
        except dns.resolver.NXDOMAIN:
            return None, "nxdomain", f"{name} does not exist (NXDOMAIN)"
        except dns.resolver.NoAnswer:
            return None, "no-answer", f"{name} has no {rdtype} record"
        except dns.exception.Timeout:
            return (
                None,
                "timeout",
                (f"no answer from {self.shown} within {self.lifetime:g} s for the {rdtype} record of {name}"),
            )
        except dns.resolver.NoNameservers as e:
            return None, "temporary", f"temporary DNS failure for the {rdtype} record of {name}: {_failures(e)}"
        except dns.exception.DNSException as e:
            return None, "temporary", f"DNS failure for the {rdtype} record of {name}: {e}"

    def addresses(self, host: str) -> HostLookup:
        found: list[str] = []
        kinds: list[tuple[str, str]] = []
        for rdtype in ("A", "AAAA"):
            records, kind, message = self.query(host, rdtype)
            found += [r.address for r in records]
            if kind:
                kinds.append((kind, message or ""))
        if found:
            return HostLookup(host, tuple(found))
        for worst in ("timeout", "temporary", "nxdomain"):  # a temporary failure outranks "no record"
            for kind, message in kinds:
                if kind == worst:
                    return HostLookup(host, (), kind, message)
        return HostLookup(host, (), "no-address", f"{host} has no address record (A or AAAA)")


def _failures(err: Exception) -> str:
    parts = []
    for item in getattr(err, "kwargs", {}).get("errors") or []:
        label, what = str(item[0]), item[3]
        if label.startswith("Do53:") and "@" in label:  # dnspython's "Do53:ADDR@PORT"
            address, _, port = label[5:].rpartition("@")
            label = _show(address, int(port)) if port.isdigit() else label
        reason = what if isinstance(what, str) else type(what).__name__
        parts.append(f"{label} answered {reason}")
    return "; ".join(parts) or "every name server failed"


def resolve_host(host: str, *, lifetime: float = DEFAULT_LIFETIME) -> HostLookup:
    """The addresses of a server jcsh will connect to (an IP literal is its own).

    Through `$JCSH_NAMESERVERS` when set (split DNS, tests); otherwise through the system
    resolver, as the connection itself will be (so /etc/hosts counts: `localhost` resolves).
    """
    inner = bare_host(host)
    try:
        return HostLookup(host, (str(ipaddress.ip_address(inner)),))
    except ValueError:
        pass
    if os.environ.get(NAMESERVERS_ENV, "").strip():
        return Lookup(lifetime).addresses(host.rstrip("."))
    import socket

    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return HostLookup(host, (), "nxdomain" if e.errno == socket.EAI_NONAME else "temporary", e.strerror)
    return HostLookup(host, tuple(dict.fromkeys(str(info[4][0]) for info in found)))


def detect(domain: str, *, lifetime: float = DEFAULT_LIFETIME) -> Detection:
    """Find the mail server of domain (RFC 5321 5.1); never raises for DNS outcomes."""
    import dns.name

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
    try:
        dns.name.from_text(domain)
    except Exception as e:  # dnspython raises several label errors; all mean the same here
        return Detection(domain, None, None, (), "bad-domain", f"{domain!r} is not a valid domain name ({e})")
    lookup = Lookup(lifetime)

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
    for preference, host in mx:
        if host == ".":
            candidates.append(Candidate(host, preference, (), "null MX mixed with other MX records; skipped"))
            continue
        got = lookup.addresses(host)
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
