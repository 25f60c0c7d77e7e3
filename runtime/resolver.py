"""The DNS resolver jcsh uses: `$JCSH_NAMESERVERS` (`host[:port][,...]`, IPv6 as `[::1]:53`) when set,
else the system's; every outcome of a query turned into (records, kind, message).

Shared by mail detection, the doctor's DNS checks and the TLS probe's DANE and MTA-STS checks. A
plain answer is read by runtime/dns_wire.py; anything else is asked again through dnspython.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence

from jcsh.runtime.errors import ConfigError
from jcsh.runtime.hosts import bare_host, host_port, shown_host
from jcsh.runtime.records import NamedTuple

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    import dns.resolver

__all__ = [
    "HostLookup",
    "Found",
    "Lookup",
    "resolve_host",
    "parse_nameservers",
    "NAMESERVERS_ENV",
    "DEFAULT_LIFETIME",
    "RESOLV_CONF",
]

NAMESERVERS_ENV = "JCSH_NAMESERVERS"
DEFAULT_LIFETIME = 5.0
RESOLV_CONF = "/etc/resolv.conf"  # where dnspython reads the system's configuration (not on Windows)


class HostLookup(NamedTuple):
    """The addresses of one host, or why there are none (kind: nxdomain|no-address|timeout|temporary)."""

    host: str
    addresses: tuple[str, ...]
    kind: str | None = None
    message: str | None = None


class Found(NamedTuple):
    """One query's records (empty on failure), the error kind and message, and whether the answer had AD."""

    records: list[Any]
    kind: str | None
    message: str | None
    authenticated: bool = False


class _Servers(NamedTuple):
    """Where plain queries go without dnspython: the servers in dnspython's order, and how it would ask."""

    servers: list[tuple[str, int]]
    shown: str
    rotate: bool
    edns: bool


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


def _system_servers() -> _Servers | None:
    """/etc/resolv.conf read as dnspython reads it, when it is plain; None leaves it to dnspython.

    dnspython keeps the `nameserver` addresses in order and, of the options, `rotate` and `edns0`
    change how it asks (`timeout` is set by Lookup, `ndots` and the search list do not apply with
    search=False). A missing file, no server, a scoped or odd address, or a `domain`/`search` name
    dnspython might reject: dnspython builds the resolver, and its error stays the one reported.
    """
    from jcsh.runtime.dns_wire import plain_name

    servers: list[str] = []
    rotate = edns = False
    try:
        with open(RESOLV_CONF, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if not line or line[0] in "#;":
            continue
        tokens = line.split()
        if len(tokens) < 2:
            continue
        if tokens[0] == "nameserver":
            servers.append(tokens[1])
        elif tokens[0] in ("domain", "search"):
            if not all(plain_name(t) for t in tokens[1:]):
                return None
        elif tokens[0] == "options":
            rotate = rotate or "rotate" in tokens[1:]
            edns = edns or "edns0" in tokens[1:]
    for server in servers:
        if "%" in server:  # a scoped IPv6 address: dnspython's rules for those are its own
            return None
        try:
            ipaddress.ip_address(server)
        except ValueError:
            return None
    if not servers:
        return None
    return _Servers([(a, 53) for a in servers], "the system resolver (" + ", ".join(servers) + ")", rotate, edns)


def _servers() -> _Servers | None:
    text = os.environ.get(NAMESERVERS_ENV, "").strip()
    if not text:
        return _system_servers()
    servers = parse_nameservers(text)  # ConfigError before any query, as before
    return _Servers(servers, ", ".join(_show(a, p) for a, p in servers), False, False)


class Lookup:
    """Queries through one resolver ($JCSH_NAMESERVERS or the system's), each outcome turned into
    (records, kind, message); with dnssec, the queries ask for the AD bit.

    A query goes first to the first server as dnspython would send it (dns_wire, no dnspython
    import); only an answer that is not plain, or none within the per-server wait, is asked again
    through dnspython with the time left, so every unusual outcome is dnspython's as before.
    """

    def __init__(self, lifetime: float, *, dnssec: bool = False, deadline: float | None = None) -> None:
        self.lifetime = lifetime
        self.dnssec = dnssec
        self.deadline = deadline  # time.monotonic() no query may outlast (a script's time limit)
        self._plain = _servers()
        self._resolver: dns.resolver.Resolver | None = None
        if self._plain is None:
            self._resolver, self.shown = _resolver(lifetime, dnssec)
        else:
            self.shown = self._plain.shown

    @property
    def resolver(self) -> dns.resolver.Resolver:
        """dnspython's resolver, built when a query needs it."""
        if self._resolver is None:
            self._resolver, _ = _resolver(self.lifetime, self.dnssec)
        return self._resolver

    def query(self, name: str, rdtype: str) -> tuple[list[Any], str | None, str | None]:
        found = self.records(name, rdtype)
        return found.records, found.kind, found.message

    def records(self, name: str, rdtype: str) -> Found:
        """The records of one query, its error kind and message, and whether the answer was authenticated (AD)."""
        return self.records_many([(name, rdtype)])[0]

    def records_many(self, questions: Sequence[tuple[str, str]]) -> list[Found]:
        """Several queries at once, each outcome as records() gives it: the plain ones cost one round trip in all."""
        lifetime = self._lifetime()
        if lifetime is None:
            return [Found([], "timeout", _late(name, rdtype)) for name, rdtype in questions]
        out: list[Found] = []
        for (name, rdtype), plain in zip(questions, self._ask_plain(questions, lifetime), strict=True):
            if isinstance(plain, Found):
                out.append(plain)
                continue
            answer, kind, message = self._resolve(name, rdtype, plain)
            if answer is None:
                out.append(Found([], kind, message))
                continue
            import dns.flags

            out.append(Found(list(answer), None, None, bool(answer.response.flags & dns.flags.AD)))
        return out

    def answer(self, name: str, rdtype: str) -> tuple[dns.resolver.Answer | None, str | None, str | None]:
        """dnspython's whole answer (its `response` holds the header flags), or None with the error kind and message."""
        lifetime = self._lifetime()
        if lifetime is None:
            return None, "timeout", _late(name, rdtype)
        return self._resolve(name, rdtype, lifetime)

    def _lifetime(self) -> float | None:
        """The time a query may take now, or None when the script's time limit has already passed."""
        lifetime = self.lifetime
        if self.deadline is not None:
            import time

            lifetime = min(lifetime, self.deadline - time.monotonic())
            if lifetime <= 0:
                return None
        return lifetime

    def _ask_plain(self, questions: Sequence[tuple[str, str]], lifetime: float) -> list[float | Found]:
        """Each question's outcome from a plain answer, else the time left for dnspython to ask it again.

        The servers are tried as dnspython tries them: in order (shuffled with `options rotate`),
        each for at most the per-server timeout, round after round with a growing pause, until a
        reply comes or the lifetime is spent; the questions of one call travel together.
        """
        from jcsh.runtime.dns_wire import NoReply, Unclear, ask_all, plain_name

        out: list[float | Found] = [lifetime] * len(questions)
        if self._plain is None:
            return out
        pending = {}
        for i, (name, _) in enumerate(questions):
            labels = plain_name(name) if isinstance(name, str) else None
            if labels is not None:
                pending[i] = labels
        if not pending:
            return out
        import time

        servers = self._plain.servers
        if self._plain.rotate:  # dnspython shuffles the servers for each query
            import random

            servers = random.sample(servers, len(servers))
        start = time.monotonic()
        per_server = min(2.0, self.lifetime)  # dnspython's timeout (see _resolver)
        backoff = 0.1
        while pending:
            for server in servers:
                left = lifetime - (time.monotonic() - start)
                if left <= 0 or not pending:
                    break
                asked = list(pending)
                replies = ask_all(
                    server,
                    [(pending[i], questions[i][1]) for i in asked],
                    min(per_server, left),
                    dnssec=self.dnssec,
                    edns=self._plain.edns,
                )
                for i, reply in zip(asked, replies, strict=True):
                    if isinstance(reply, NoReply):
                        continue
                    del pending[i]
                    name, rdtype = questions[i]
                    if isinstance(reply, Unclear):
                        rest = lifetime - (time.monotonic() - start)
                        out[i] = rest if rest > 0 else Found([], "timeout", self._timeout(name, rdtype))
                    elif reply.nxdomain:
                        out[i] = Found([], "nxdomain", f"{name} does not exist (NXDOMAIN)")
                    elif not reply.records:
                        out[i] = Found([], "no-answer", f"{name} has no {rdtype} record")
                    else:
                        out[i] = Found(list(reply.records), None, None, reply.authenticated)
            left = lifetime - (time.monotonic() - start)
            if not pending or left <= 0:
                break
            time.sleep(min(backoff, left))
            backoff = min(backoff * 2, 2.0)
        for i in pending:
            out[i] = Found([], "timeout", self._timeout(*questions[i]))
        return out

    def _timeout(self, name: str, rdtype: str) -> str:
        return f"no answer from {self.shown} within {self.lifetime:g} s for the {rdtype} record of {name}"

    def _resolve(
        self, name: str, rdtype: str, lifetime: float
    ) -> tuple[dns.resolver.Answer | None, str | None, str | None]:
        import dns.exception
        import dns.resolver

        try:
            return self.resolver.resolve(name, rdtype, search=False, lifetime=lifetime), None, None
        except dns.resolver.NXDOMAIN:
            return None, "nxdomain", f"{name} does not exist (NXDOMAIN)"
        except dns.resolver.NoAnswer:
            return None, "no-answer", f"{name} has no {rdtype} record"
        except dns.exception.Timeout:
            return None, "timeout", self._timeout(name, rdtype)
        except dns.resolver.NoNameservers as e:
            return None, "temporary", f"temporary DNS failure for the {rdtype} record of {name}: {_failures(e)}"
        except dns.exception.DNSException as e:
            return None, "temporary", f"DNS failure for the {rdtype} record of {name}: {e}"

    def addresses(self, host: str) -> HostLookup:
        return self.addresses_many([host])[0]

    def addresses_many(self, hosts: Sequence[str]) -> list[HostLookup]:
        """The A and AAAA records of each host, all asked at once."""
        found = self.records_many([(host, rdtype) for host in hosts for rdtype in ("A", "AAAA")])
        return [_host_lookup(host, found[2 * i : 2 * i + 2]) for i, host in enumerate(hosts)]


def _late(name: str, rdtype: str) -> str:
    return f"the script's time limit ran out before the {rdtype} record of {name} was asked"


def _host_lookup(host: str, found: Sequence[Found]) -> HostLookup:
    """A host's addresses from its A and AAAA outcomes; with none, the worst reason why."""
    addresses = [r.address for f in found for r in f.records]
    if addresses:
        return HostLookup(host, tuple(addresses))
    kinds = [(f.kind, f.message or "") for f in found if f.kind]
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

    from jcsh.runtime.dns_wire import plain_name

    # a plain name as bytes: getaddrinfo runs every str through the idna codec (~10 ms to import),
    # which leaves such a name as it is
    asked: str | bytes = host.encode("ascii") if plain_name(host) is not None else host
    try:
        found = socket.getaddrinfo(asked, None, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return HostLookup(host, (), "nxdomain" if e.errno == socket.EAI_NONAME else "temporary", e.strerror)
    return HostLookup(host, tuple(dict.fromkeys(str(info[4][0]) for info in found)))
