"""The DNS resolver jcsh uses: `$JCSH_NAMESERVERS` (`host[:port][,...]`, IPv6 as `[::1]:53`) when set,
else the system's; every outcome of a query turned into (records, kind, message) (dnspython).

Shared by mail detection, the doctor's DNS checks and the TLS probe's DANE and MTA-STS checks.
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

__all__ = ["HostLookup", "Lookup", "resolve_host", "parse_nameservers", "NAMESERVERS_ENV", "DEFAULT_LIFETIME"]

NAMESERVERS_ENV = "JCSH_NAMESERVERS"
DEFAULT_LIFETIME = 5.0


@dataclass(frozen=True)
class HostLookup:
    """The addresses of one host, or why there are none (kind: nxdomain|no-address|timeout|temporary)."""

    host: str
    addresses: tuple[str, ...]
    kind: str | None = None
    message: str | None = None


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

    def __init__(self, lifetime: float, *, dnssec: bool = False, deadline: float | None = None) -> None:
        self.resolver, self.shown = _resolver(lifetime, dnssec)
        self.lifetime = lifetime
        self.deadline = deadline  # time.monotonic() no query may outlast (a script's time limit)

    def query(self, name: str, rdtype: str) -> tuple[list[Any], str | None, str | None]:
        answer, kind, message = self.answer(name, rdtype)
        return (list(answer) if answer is not None else []), kind, message

    def answer(self, name: str, rdtype: str) -> tuple[dns.resolver.Answer | None, str | None, str | None]:
        """The whole answer (its `response` holds the header flags), or None with the error kind and message."""
        import dns.exception
        import dns.resolver

        lifetime = self.lifetime
        if self.deadline is not None:
            import time

            lifetime = min(lifetime, self.deadline - time.monotonic())
            if lifetime <= 0:
                late = f"the script's time limit ran out before the {rdtype} record of {name} was asked"
                return None, "timeout", late
        try:
            return self.resolver.resolve(name, rdtype, search=False, lifetime=lifetime), None, None
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


def resolve_host(host: str, *, lifetime: float = DEFAULT_LIFETIME, deadline: float | None = None) -> HostLookup:
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
        return Lookup(lifetime, deadline=deadline).addresses(host.rstrip("."))
    import socket

    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return HostLookup(host, (), "nxdomain" if e.errno == socket.EAI_NONAME else "temporary", e.strerror)
    return HostLookup(host, tuple(dict.fromkeys(str(info[4][0]) for info in found)))
