"""What a mail server accepts: each TLS version on its own connection, its certificate, and trust."""

from __future__ import annotations

import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from jcsh.runtime.errors import ConfigError, ConnectFailed, JcshError, LimitHit, TempFailure, UsageError
from jcsh.runtime.hosts import bare_host
from jcsh.runtime.later import Later, run_all
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.smtp.wire import Reply, Timeouts
from jcsh.runtime.tls.attempt import DATA_OUTCOMES, Attempt, Run, keeping, run_attempt
from jcsh.runtime.tls.checks.certificate import CertificateResult, check_certificate
from jcsh.runtime.tls.checks.session import Negotiated, SmtpFacts, negotiated, smtp_facts
from jcsh.runtime.tls.checks.versions import VersionsResult, judge_versions
from jcsh.runtime.tls.protocol_cache import cached_protocols, read_cached_protocols
from jcsh.runtime.tls.protocols import HAS_FLAG
from jcsh.runtime.tls.trust import (
    TrustPolicy,
    client_context,
    protocol_version,
    restrict_versions,
)

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ProbeResult", "probe", "VERSIONS"]

VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# Offer every cipher a version has (at security level 0), so that "refused" means the version,
# not our cipher list: the same question sslyze answers.
_PROBE_CIPHERS = "ALL:@SECLEVEL=0"


class ProbeResult(NamedTuple):
    """Everything one probe found, each check's typed result; `to_json()` is the `tls probe --json` document."""

    host: str
    port: int
    mode: str
    servername: str
    versions: VersionsResult
    negotiated: Negotiated | None
    certificate: CertificateResult | None
    smtp: SmtpFacts
    policy: dict[str, Any]
    elapsed_ms: int
    chain: tuple[bytes, ...] = ()  # DER, leaf first: what the DANE and trust-store checks judge
    extra: tuple[tuple[str, Any], ...] = ()  # further checks' results (name, result with to_json()), in order

    @property
    def protocols(self) -> dict[str, bool]:
        return self.versions.protocols

    @property
    def reasons(self) -> dict[str, str]:
        return self.versions.reasons

    def with_check(self, name: str, result: Any) -> ProbeResult:
        return self._replace(extra=(*self.extra, (name, result)))

    def to_json(self) -> dict[str, Any]:
        doc = {
            "host": self.host,
            "port": self.port,
            "mode": self.mode,
            "servername": self.servername,
            "protocols": self.protocols,
            "reasons": self.reasons,
            "negotiated": self.negotiated.to_json() if self.negotiated else None,
            "certificate": self.certificate.to_json() if self.certificate else None,
            "smtp": self.smtp.to_json(),
            "policy": self.policy,
            "elapsed_ms": self.elapsed_ms,
        }
        for name, result in self.extra:
            doc[name] = result.to_json() if hasattr(result, "to_json") else result
        return doc


def probe(
    host: str,
    port: int = 25,
    *,
    mode: str | None = None,
    servername: str | None = None,
    protocols: tuple[str, ...] | None = None,
    timeout: float | None = None,
    policy: TrustPolicy | None = None,
    local_hostname: str | None = None,
    timeouts: Timeouts | None = None,
    deadline: float | None = None,
    home: Path | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Probe host:port; an error when no TLS handshake completed or the server refused the session.

    `timeout` bounds each step (connect and greeting, each command and its reply, the handshake);
    `timeouts` gives connect, read and write apart instead; `deadline` (time.monotonic()) bounds
    the whole probe on top. TempFailure (75) for a 4xx greeting, ConnectFailed (3) for the other
    refusals and failures, LimitHit (4) when a step ran out of time. With a home, what this
    machine supports is read from its cache (and written there once).
    on_step is told each connection's outcome as it ends (from the probe's threads).
    """
    started = time.monotonic()
    policy = policy or TrustPolicy()
    host = bare_host(host)
    if not host:
        raise UsageError("no host to probe")
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is not 1-65535")
    mode = mode or ("implicit" if port == 465 else "starttls")
    if mode not in ("starttls", "implicit"):
        raise UsageError(f"mode {mode!r} is not starttls or implicit")
    if timeout is not None:
        if not timeout > 0:
            raise UsageError("the timeout must be more than 0 seconds")
        timeouts = Timeouts(timeout, timeout, timeout)
    timeouts = (timeouts or Timeouts(10.0, 10.0, 10.0))._replace(cap=deadline)
    wanted = _wanted(protocols)
    servername = servername or host

    # Contexts are built before the threads: setting old versions touches warning filters.
    tried = [Attempt(name, _pinned(name)) for name in wanted if getattr(ssl, HAS_FLAG[name], False)]
    tls_check = functools.partial(_pinned, None)  # made only for a server that sends no greeting
    run = Run(host, port, mode, servername, timeouts, local_hostname or socket.gethostname(), tls_check)
    strict = policy._replace(verify=True, trust_hosts=(), protocols=())
    # The TLSv1.3 attempt verifies too when that is the very handshake the trust check would make
    # (a verifying client at OpenSSL's defaults negotiates 1.3 with a server that speaks it): one
    # connection fewer per target. Its ClientHello is the unverified 1.3 one byte for byte, and a
    # failed verification comes after the server chose TLS 1.3 and sent its certificates.
    both = next((a for a in tried if a.label == "TLSv1.3"), None) if _verifier_offers_tls13() else None
    try:
        # What this machine supports (unless its cache answers) and the CAs (the first time in a
        # process) are found while the connections wait for the network.
        supported = read_cached_protocols(home) or Later(lambda: cached_protocols(home), "jcsh-probe")
        if both is not None:
            key = (strict, ssl.get_default_verify_paths())
            made = _VERIFYING.get(key)
            both.context = made or Later(lambda: _verifying_tls13(*key), "jcsh-probe")
            attempts = tried
        else:
            attempts = [*tried, Attempt("trust", Later(lambda: _trust_context(strict, servername), "jcsh-probe"))]
        if on_step is not None:
            on_step(f"probing {run.where} ({mode}): {' '.join(a.label for a in tried)} and trust")
        # the attempt doing both is told once it is split into its two checks
        run_all(
            [functools.partial(_attempt_told, run, a, None if a is both else on_step) for a in attempts], "jcsh-probe"
        )
        for att in attempts:
            att.ssl_context()  # a credential that holds no usable certificate is a ConfigError
        here = supported.result() if isinstance(supported, Later) else supported
        if not any(a.outcome in DATA_OUTCOMES for a in attempts):
            if both is not None:
                _told(both, on_step)
                _told(both.clone("trust"), on_step)
            raise _failure(attempts, run.where)
        # A server that limits parallel connections per client drops some: ask those again, one by one.
        for i, att in enumerate(attempts):
            if att.outcome == "connect" and run.in_time():
                attempts[i] = _told(run_attempt(run, Attempt(att.label, att.context)), None if att is both else on_step)
                both = attempts[i] if att is both else both
        if both is not None:
            attempts = _split(run, attempts, both, strict, servername, on_step)
        # A verifying client offers TLS 1.2+ by default; judge an older server's certificate anyway.
        old = [a.label for a in attempts[:-1] if a.outcome == "accepted" and a.label in here.names]
        if attempts[-1].outcome == "refused" and old and run.in_time():
            retry = Attempt("trust", client_context(strict._replace(protocols=tuple(old)), servername))
            attempts[-1] = _told(run_attempt(run, retry), on_step)
    finally:
        run.close()
    refused = any(a.session_refused for a in attempts)
    if refused or not any(a.outcome in ("accepted", "unverified") for a in attempts):
        raise _failure(attempts, run.where)

    by_name = {a.label: a for a in attempts if a.label != "trust"}
    versions = judge_versions(wanted, by_name, here)
    verdicts = versions.protocols
    trust = attempts[-1]
    accepted = [by_name[n] for n in reversed(VERSIONS) if verdicts.get(n)]
    best = accepted[0] if accepted else (trust if trust.outcome == "accepted" else None)
    source = best if best is not None and best.chain else next((a for a in attempts if a.chain), None)
    chain = tuple(source.chain) if source is not None else ()
    return ProbeResult(
        host=host,
        port=port,
        mode=mode,
        servername=servername,
        versions=versions,
        negotiated=negotiated(best),
        certificate=check_certificate(chain, trust, policy, host, servername),
        smtp=smtp_facts(attempts, best),
        policy=_policy_facts(policy, host, verdicts, here.default_enabled),
        elapsed_ms=round((time.monotonic() - started) * 1000),
        chain=chain,
    )


def _split(
    run: Run,
    attempts: list[Attempt],
    both: Attempt,
    strict: TrustPolicy,
    servername: str,
    on_step: Callable[[str], None] | None,
) -> list[Attempt]:
    """The attempts as the version check and the trust check see them: `both` made one handshake for
    TLSv1.3 and for trust; the trust attempt last, as when it has a connection of its own."""
    i = attempts.index(both)
    version, trust = both, both.clone("trust")
    if both.outcome == "unverified":
        # TLS 1.3 was agreed: what the unverified handshake would have completed. Its SMTP facts
        # after TLS come from the other versions' connections, or, with none, from one of its own.
        version = both.clone(both.label)
        version.outcome, version.reason, version.verify_error, version.version = "accepted", "", None, both.label
        trust.version, trust.cipher, trust.chain = None, None, []  # as a verification of its own leaves them
        alone = not any(a.outcome == "accepted" for a in attempts if a is not both)
        if (alone or both.cipher is None) and run.in_time():
            version = run_attempt(run, Attempt(both.label, _pinned(both.label)))
    elif both.outcome == "refused" and run.in_time():
        # no TLS 1.3 there: the trust check needs a handshake of its own (OpenSSL's defaults)
        trust = run_attempt(run, Attempt("trust", _trust_context(strict, servername)))
    attempts = [*attempts[:i], version, *attempts[i + 1 :], trust]
    _told(version, on_step)
    _told(trust, on_step)
    return attempts


def _verifier_offers_tls13() -> bool:
    """Whether a verifying client at OpenSSL's defaults offers TLS 1.3 (openssl.cnf may say otherwise)."""
    if not ssl.HAS_TLSv1_3:
        return False
    if not _DEFAULT_RANGE:
        _pinned("TLSv1.3")  # notes the range a fresh client context has
    bottom, top = _DEFAULT_RANGE[0]
    # MINIMUM_SUPPORTED (-2) sorts below every version; MAXIMUM_SUPPORTED (-1) means the newest
    return top in (ssl.TLSVersion.MAXIMUM_SUPPORTED, ssl.TLSVersion.TLSv1_3) and bottom <= ssl.TLSVersion.TLSv1_3


_VERIFYING: dict[tuple[TrustPolicy, ssl.DefaultVerifyPaths], ssl.SSLContext] = {}


def _verifying_tls13(strict: TrustPolicy, system: ssl.DefaultVerifyPaths) -> ssl.SSLContext:
    """The trust check's context at exactly TLS 1.3, keeping its TLS objects; kept per process for
    the policy and the system CAs ($SSL_CERT_FILE, $SSL_CERT_DIR) it was made with."""
    ctx = _VERIFYING.get((strict, system))
    if ctx is None:
        ctx = keeping(client_context(strict, ""))  # "": a strict policy verifies every host
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3  # not deprecated: no warning filters
        if len(_VERIFYING) >= 8:
            _VERIFYING.clear()
        _VERIFYING[(strict, system)] = ctx
    return ctx


def _attempt_told(run: Run, att: Attempt, on_step: Callable[[str], None] | None) -> Attempt:
    return _told(run_attempt(run, att), on_step)


def _told(att: Attempt, on_step: Callable[[str], None] | None) -> Attempt:
    """Tell on_step (`-v`) how one connection ended: `TLSv1.2: accepted TLSv1.2 ECDHE-...`."""
    if on_step is not None:
        got = att.outcome
        if att.version and att.cipher:
            got += f" {att.version} {att.cipher[0]}"
        on_step(f"{att.label}: {got}" + (f" ({att.reason})" if att.reason else ""))
    return att


@functools.lru_cache(maxsize=8)
def _trust_context(policy: TrustPolicy, servername: str) -> ssl.SSLContext:
    """The verifying context, kept per process: repeated probes skip loading the system CAs."""
    return client_context(policy, servername)


def _wanted(protocols: tuple[str, ...] | None) -> tuple[str, ...]:
    if protocols is None:
        return VERSIONS
    names = []
    for name in protocols:
        try:
            version = protocol_version(name)
        except ConfigError as e:
            raise UsageError(e.message) from None
        names.append(version.name.replace("_", "."))
    if not names:
        raise UsageError("no protocol to probe")
    order = ("SSLv3", *VERSIONS)
    return tuple(sorted(set(names), key=order.index))


_PINNED: dict[str | None, ssl.SSLContext] = {}
_PINNED_LOCK = threading.Lock()
# (minimum, maximum) of a fresh client context, as OpenSSL's configuration sets them: noted from
# the first pinned context before it is pinned (a context costs ~2 million instructions to make)
_DEFAULT_RANGE: list[tuple[ssl.TLSVersion, ssl.TLSVersion]] = []


def _pinned(name: str | None) -> ssl.SSLContext:
    """An unverified client context at exactly one version (None: any version this build can do).

    Made once per process and shared: a client context holds configuration only (Python resumes
    no session unless given one), and making one costs ~0.4 ms, five a target.
    """
    with _PINNED_LOCK:  # also keeps restrict_versions' warning filters to one thread at a time
        ctx = _PINNED.get(name)
        if ctx is None:
            ctx = _PINNED[name] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if not _DEFAULT_RANGE:
                _DEFAULT_RANGE.append((ctx.minimum_version, ctx.maximum_version))
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the verifying handshake is a separate attempt
            restrict_versions(ctx, VERSIONS if name is None else [name])
            if name != "TLSv1.3":
                ctx.set_ciphers(_PROBE_CIPHERS)
        return ctx


def _failure(attempts: list[Attempt], where: str) -> JcshError:
    """The error when the probe completed no handshake or the server refused the session, the most telling first."""
    for att in attempts:
        if att.session_refused:
            assert att.refusal is not None
            after = " after the TLS handshake" if att.outcome == "accepted" else ""
            text = f"{where} refused {att.refused_step}{after}: {_reply(att.refusal)}"
            if 400 <= att.refusal.code < 500:
                return TempFailure(text + " (a temporary refusal: try again later)")
            return ConnectFailed(text)
    for outcome in ("tls-first", "not-tls", "protocol", "starttls-refused", "no-starttls", "refused", "connect"):
        for att in attempts:
            if att.outcome != outcome:
                continue
            if outcome == "starttls-refused":
                return ConnectFailed(f"{where} refused STARTTLS ({att.starttls_reply}): no TLS to probe", kind="tls")
            if outcome == "no-starttls":
                return ConnectFailed(f"{where} does not offer STARTTLS: no TLS to probe", kind="tls")
            if outcome == "refused":
                return ConnectFailed(
                    f"no TLS handshake succeeded with {where} at any version: {att.reason}", kind="tls"
                )
            kind = "protocol" if outcome == "protocol" else None
            return ConnectFailed(att.reason, kind=kind)
    for att in attempts:
        if att.outcome == "timeout":
            return LimitHit(att.reason, kind="timeout")
    return ConnectFailed(attempts[0].reason or "the probe got no answer")


def _reply(reply: Reply) -> str:
    return f"{reply.code} " + " / ".join(reply.lines)


def _policy_facts(policy: TrustPolicy, host: str, verdicts: dict[str, bool], defaults: list[str]) -> dict[str, Any]:
    # The versions a send under this policy could use: accepted by the server and allowed here.
    allowed = policy.protocols or tuple(defaults)
    usable = [n for n, ok in verdicts.items() if ok and n in allowed]
    return {**policy.to_json(), "skips_verification": policy.skips_verification(host), "usable_protocols": usable}
