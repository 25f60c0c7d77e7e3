"""The cipher suites a server accepts at each TLS version, each tried alone, and whether it imposes its order."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jcsh.runtime.errors import UsageError
from jcsh.runtime.smtp.wire import Timeouts
from jcsh.runtime.tls.attempt import Attempt, Run, run_attempt
from jcsh.runtime.tls.checks.render import shown, table
from jcsh.runtime.tls.trust import restrict_versions

__all__ = [
    "SuiteOutcome",
    "SuiteResult",
    "VersionCiphers",
    "CipherScan",
    "scan_ciphers",
    "candidate_suites",
    "render_ciphers",
    "TLS13_SUITES",
]

# Every TLS 1.3 suite OpenSSL implements (the CCM ones are off by default, so offered only when asked).
TLS13_SUITES = (
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
)
_ALL = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
# Key exchanges that need a pre-shared key or SRP password: no handshake can test them without one.
_UNTESTABLE_KEA = {"kx-psk", "kx-dhe-psk", "kx-rsa-psk", "kx-ecdhe-psk", "kx-srp"}
_MIN_PROTOCOL = {"SSLv3": 0, "TLSv1.0": 1, "TLSv1.2": 3, "TLSv1.3": 4}  # a suite's oldest version
_VERSION_RANK = {"SSLv3": 0, "TLSv1": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}
# Outcomes where the server answered the handshake: anything else says nothing about a suite.
_DATA = frozenset({"accepted", "refused", "unverified"})


class SuiteOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"  # the connection failed before the handshake said anything (connect, timeout, SMTP)


@dataclass(frozen=True)
class SuiteResult:
    name: str
    outcome: SuiteOutcome
    reason: str = ""
    bits: int | None = None


@dataclass(frozen=True)
class VersionCiphers:
    """One version: every suite tried alone, and the server's preference where it imposes one."""

    version: str
    suites: tuple[SuiteResult, ...]
    server_preference: bool | None = None  # None: fewer than two suites accepted, or no answer
    preferred: str | None = None  # the server's choice among everything accepted, when it imposes its order
    note: str | None = None

    @property
    def accepted(self) -> list[str]:
        return [s.name for s in self.suites if s.outcome is SuiteOutcome.ACCEPTED]

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": [s.name for s in self.suites if s.outcome is SuiteOutcome.REJECTED],
            "errors": {s.name: s.reason for s in self.suites if s.outcome is SuiteOutcome.ERROR},
            "server_preference": self.server_preference,
            "preferred": self.preferred,
            "note": self.note,
        }


@dataclass(frozen=True)
class CipherScan:
    host: str
    port: int
    mode: str
    versions: tuple[VersionCiphers, ...]
    elapsed_ms: int
    error: str | None = None  # no suite was tried: the server could not be reached as a TLS peer

    def to_json(self) -> dict[str, Any]:
        return {"versions": {v.version: v.to_json() for v in self.versions}, "error": self.error}


def candidate_suites(version: str) -> list[tuple[str, int]]:
    """(OpenSSL name, bits) of every suite this OpenSSL can offer at version, PSK/SRP left out."""
    if version == "TLSv1.3":
        return [(name, 128 if "128" in name else 256) for name in TLS13_SUITES]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(_ALL)
    rank = _VERSION_RANK[version]
    return [
        (c["name"], c["strength_bits"])
        for c in ctx.get_ciphers()
        if c["protocol"] != "TLSv1.3"
        and c["kea"] not in _UNTESTABLE_KEA
        and _MIN_PROTOCOL.get(c["protocol"], 9) <= rank
    ]


def scan_ciphers(
    host: str,
    port: int,
    versions: Sequence[str],
    *,
    mode: str = "starttls",
    servername: str | None = None,
    timeout: float = 5.0,
    concurrency: int = 8,
    local_hostname: str | None = None,
) -> CipherScan:
    """Try every candidate suite of each version alone (at most `concurrency` connections at once,
    each step of each within `timeout`), then probe the server's order with two accepted suites."""
    started = time.monotonic()
    if not versions:
        raise UsageError("no TLS version to scan the cipher suites of")
    unknown = [v for v in versions if v not in _VERSION_RANK]
    if unknown:
        raise UsageError(f"unknown TLS version {unknown[0]!r}; known: {' '.join(_VERSION_RANK)}")
    target = _Target(host, port, mode, servername or host, timeout, local_hostname or socket.gethostname())
    # One connection first: a server that is down, silent or without STARTTLS costs one deadline, not 150.
    first = _connect(target, _context_any(versions))
    if first.outcome not in _DATA:
        elapsed = round((time.monotonic() - started) * 1000)
        return CipherScan(host, port, mode, (), elapsed, first.reason or first.outcome)
    tls13 = _Tls13Suites.find()
    breaker = _Breaker(max(4, concurrency))
    jobs: list[tuple[str, str, int, ssl.SSLContext | None]] = []
    for version in versions:
        for name, bits in candidate_suites(version):
            jobs.append((version, name, bits, _context(version, [name], tls13)))  # before the threads
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="jcsh-ciphers") as pool:
        results = list(pool.map(lambda job: _try(target, breaker, job[1], job[2], job[3]), jobs))
        by_version: dict[str, list[SuiteResult]] = {v: [] for v in versions}
        for (version, *_), result in zip(jobs, results, strict=True):
            by_version[version].append(result)
        offers = {v: _offers(v, by_version[v], tls13) for v in versions}  # contexts before the threads
        flat = [(v, ctx) for v in versions for ctx in offers[v]]
        picks = list(pool.map(lambda item: _pick(target, item[1]), flat))
    out = []
    for version in versions:
        mine = [pick for (v, _), pick in zip(flat, picks, strict=True) if v == version]
        out.append(_order(version, by_version[version], mine))
    return CipherScan(host, port, mode, tuple(out), round((time.monotonic() - started) * 1000))


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    mode: str
    servername: str
    timeout: float
    local_hostname: str


def _context(version: str, suites: list[str], tls13: _Tls13Suites | None) -> ssl.SSLContext | None:
    """An unverified client context at exactly version offering exactly suites (None: cannot be built)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    restrict_versions(ctx, [version])
    if version == "TLSv1.3":
        if tls13 is None or not tls13.set(ctx, suites):
            return None
    else:
        try:
            ctx.set_ciphers(":".join(suites) + ":@SECLEVEL=0")
        except ssl.SSLError:
            return None
    return ctx


class _Breaker:
    """Stops the scan when the server stops answering: `limit` failed connections in a row."""

    def __init__(self, limit: int) -> None:
        self.limit, self.failures, self.reason = limit, 0, ""
        self._lock = threading.Lock()

    def record(self, ok: bool, reason: str) -> None:
        with self._lock:
            self.failures = 0 if ok else self.failures + 1
            if self.failures >= self.limit and not self.reason:
                self.reason = f"the server stopped answering ({reason})"


def _try(target: _Target, breaker: _Breaker, name: str, bits: int, ctx: ssl.SSLContext | None) -> SuiteResult:
    if ctx is None:
        return SuiteResult(name, SuiteOutcome.ERROR, "this Python cannot offer this suite alone", bits)
    if breaker.reason:
        return SuiteResult(name, SuiteOutcome.ERROR, f"not tried: {breaker.reason}", bits)
    att = _connect(target, ctx)
    if att.outcome == "connect":  # a server limiting connections per client: once more, alone
        att = _connect(target, ctx)
    breaker.record(att.outcome in _DATA, att.reason or att.outcome)
    if att.outcome == "accepted":
        return SuiteResult(name, SuiteOutcome.ACCEPTED, "", bits)
    if att.outcome == "refused":
        return SuiteResult(name, SuiteOutcome.REJECTED, att.reason, bits)
    return SuiteResult(name, SuiteOutcome.ERROR, att.reason or att.outcome, bits)


def _context_any(versions: Sequence[str]) -> ssl.SSLContext:
    """Unverified, the versions asked for, every suite: does the server answer at all?"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    restrict_versions(ctx, list(versions))
    if "TLSv1.3" not in versions or len(versions) > 1:
        ctx.set_ciphers(_ALL)
    return ctx


def _connect(target: _Target, ctx: ssl.SSLContext) -> Attempt:
    """One connection, each step within the timeout: SMTP up to STARTTLS (or TLS first), one handshake."""
    t = target.timeout
    run = Run(target.host, target.port, target.mode, target.servername, Timeouts(t, t, t), target.local_hostname, ctx)
    try:
        return run_attempt(run, Attempt("cipher", ctx))
    finally:
        run.close()


def _offers(version: str, suites: list[SuiteResult], tls13: _Tls13Suites | None) -> list[ssl.SSLContext | None]:
    """Two accepted suites in both orders, then every accepted suite: the contexts of the order test."""
    accepted = [s.name for s in suites if s.outcome is SuiteOutcome.ACCEPTED]
    if len(accepted) < 2:
        return []
    first, second = accepted[0], accepted[-1]
    return [_context(version, offer, tls13) for offer in ([first, second], [second, first], accepted)]


def _pick(target: _Target, ctx: ssl.SSLContext | None) -> str | None:
    """The suite the server chose from what ctx offers (None: no handshake)."""
    if ctx is None:
        return None
    att = _connect(target, ctx)
    return att.cipher[0] if att.outcome == "accepted" and att.cipher else None


def _order(version: str, suites: list[SuiteResult], picks: list[str | None]) -> VersionCiphers:
    """The same choice from both orders of two suites means the server imposes its own order."""
    errors = [s for s in suites if s.outcome is SuiteOutcome.ERROR]
    note = f"{len(errors)} suites could not be tried: {errors[0].reason}" if errors else None
    accepted = [s.name for s in suites if s.outcome is SuiteOutcome.ACCEPTED]
    if len(accepted) < 2:
        return VersionCiphers(version, tuple(suites), None, accepted[0] if accepted else None, note)
    if None in picks[:2]:
        return VersionCiphers(version, tuple(suites), None, None, note)
    imposed = picks[0] == picks[1]
    return VersionCiphers(version, tuple(suites), imposed, picks[2] if imposed else None, note)


class _Tls13Suites:
    """SSL_CTX_set_ciphersuites for Python versions whose ssl module does not expose it (all up to 3.13).

    The SSL_CTX pointer sits right after the object header of an SSLContext; it is used only after
    SSL_CTX_get_options through it agrees with `ctx.options`, so a different layout disables this.
    """

    def __init__(self, setter: Any, getter: Any) -> None:
        self._setter, self._getter = setter, getter

    @classmethod
    def find(cls) -> _Tls13Suites | None:
        try:
            import ctypes

            lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]  # its libssl is searched too
            setter, getter = lib.SSL_CTX_set_ciphersuites, lib.SSL_CTX_get_options
        except (OSError, AttributeError):
            return None
        setter.argtypes, setter.restype = [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int
        getter.argtypes, getter.restype = [ctypes.c_void_p], ctypes.c_uint64
        return cls(setter, getter)

    def set(self, ctx: ssl.SSLContext, suites: list[str]) -> bool:
        native = getattr(ctx, "set_ciphersuites", None)
        if native is not None:  # a future Python
            native(":".join(suites))
            return True
        import ctypes

        pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not pointer or self._getter(pointer) != int(ctx.options):
            return False
        return bool(self._setter(pointer, ":".join(suites).encode()))


def render_ciphers(scan: CipherScan) -> list[str]:
    """Per version: how many suites were accepted, the server's order, then the accepted suites."""
    if scan.error:
        return [f"ciphers    not scanned: {shown(scan.error)}"]
    lines = []
    for v in scan.versions:
        if not v.accepted:
            lines.append(f"ciphers    {v.version:<8} none accepted" + (f" ({shown(v.note)})" if v.note else ""))
            continue
        order = {True: f"server order, prefers {v.preferred}", False: "client order", None: ""}[v.server_preference]
        head = f"ciphers    {v.version:<8} {len(v.accepted)} of {len(v.suites)} accepted"
        lines.append(head + (f", {order}" if order else "") + (f"; {shown(v.note)}" if v.note else ""))
        rows = [
            ["", s.name, f"{s.bits} bits" if s.bits else ""] for s in v.suites if s.outcome is SuiteOutcome.ACCEPTED
        ]
        lines += table(rows).splitlines()
    return lines
