"""`tls probe --mx DOMAIN`: every MX host at once, DANE per host, MTA-STS per domain (MX found as configure does)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from jcsh.runtime.errors import ConnectFailed, JcshError, LimitHit, TempFailure, UsageError
from jcsh.runtime.later import Later
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.tls.checks.render import shown
from jcsh.runtime.tls.scan import Extras, Job, Outcome, first_failure, run_job

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.tls.checks.dane import DaneResult
    from jcsh.runtime.tls.checks.mta_sts import MtaStsResult, TlsRptResult
    from jcsh.runtime.tls.trust import TrustPolicy

__all__ = ["MxHost", "MxReport", "probe_mx", "render_mx"]


class MxHost(NamedTuple):
    host: str
    preference: int
    addresses: tuple[str, ...]
    outcome: Outcome
    covered: bool | None  # by the domain's MTA-STS policy (None: no policy)

    @property
    def dane(self) -> DaneResult | None:
        result = self.outcome.result
        return next((r for n, r in result.extra if n == "dane"), None) if result else None

    def to_json(self) -> dict[str, Any]:
        doc = self.outcome.to_json()
        doc.pop("host", None)
        doc.pop("exit_code", None)
        out = {"host": self.host, "preference": self.preference, "addresses": list(self.addresses)}
        out["exit_code"] = self.outcome.exit_code
        out.update(doc)
        out.setdefault("dane", None)
        out["mta_sts_covered"] = self.covered
        return out


class MxReport(NamedTuple):
    domain: str
    hosts: tuple[MxHost, ...]
    mta_sts: MtaStsResult
    tls_rpt: TlsRptResult

    @property
    def exit_code(self) -> int:
        return first_failure([h.outcome.exit_code for h in self.hosts])

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "hosts": [h.to_json() for h in self.hosts],
            "mta_sts": self.mta_sts.to_json(),
            "tls_rpt": self.tls_rpt.to_json(),
        }


def probe_mx(
    domain: str,
    port: int,
    make_job: Callable[[str, str], Job],
    extras: Extras,
    policy: TrustPolicy,
    *,
    timeout: float = 10.0,
) -> MxReport:
    """Resolve DOMAIN's MX (implicit and null MX as `configure` treats them), then probe every host.

    make_job(address, mx_host) gives the probe of one host: connected by the address our resolver
    found ($JCSH_NAMESERVERS), with the MX name as SNI and the name the certificate must match.
    """
    from jcsh.runtime.mail.detect import detect

    if not 0 < port < 65536:
        raise UsageError(f"port {port} is not 1-65535")
    lifetime = extras.lifetime
    found = detect(domain, lifetime=lifetime)
    if found.kind is not None and not any(c.addresses for c in found.candidates):
        raise _dns_error(found.kind, found.message or f"no mail server found for {domain}")
    hosts = [c for c in found.candidates if c.host != "."]
    dane = extras._replace(dane=True)
    probes = [
        Later(functools.partial(_one, c.host, c.addresses, c.error, port, make_job, dane), "jcsh-mx") for c in hosts
    ]
    # MTA-STS and TLS-RPT start once the probes have: their imports (http.client, email.parser)
    # and the policy fetch then use the time the handshakes wait on the network, instead of
    # holding the GIL while the MX lookup and the probes' first steps need it.
    strict = policy._replace(verify=True, trust_hosts=())
    sts = Later(functools.partial(_mta_sts, domain, strict, timeout, lifetime), "jcsh-mx")
    rpt = Later(functools.partial(_tls_rpt, domain, lifetime), "jcsh-mx")
    outcomes = [p.result() for p in probes]
    sts_result, rpt_result = sts.result(), rpt.result()
    return MxReport(
        found.domain,
        tuple(
            MxHost(c.host, c.preference, c.addresses, o, sts_result.covers(c.host))
            for c, o in zip(hosts, outcomes, strict=True)
        ),
        sts_result,
        rpt_result,
    )


def _mta_sts(domain: str, strict: TrustPolicy, timeout: float, lifetime: float) -> MtaStsResult:
    from jcsh.runtime.tls.checks.mta_sts import check_mta_sts
    from jcsh.runtime.tls.trust import client_context

    return check_mta_sts(domain, client_context(strict, "mta-sts." + domain), timeout=timeout, lifetime=lifetime)


def _tls_rpt(domain: str, lifetime: float) -> TlsRptResult:
    from jcsh.runtime.tls.checks.mta_sts import check_tls_rpt

    return check_tls_rpt(domain, lifetime=lifetime)


def _one(
    host: str,
    addresses: tuple[str, ...],
    error: str | None,
    port: int,
    make_job: Callable[[str, str], Job],
    extras: Extras,
) -> Outcome:
    job = make_job(addresses[0] if addresses else host, host)
    if not addresses:
        return Outcome(job, None, ConnectFailed(f"{host} has no address: {error or 'no A or AAAA record'}"))
    return run_job(job, extras)


def _dns_error(kind: str, message: str) -> JcshError:
    # as `configure` reports a domain without a usable mail server: exit 1, a DNS timeout 4, SERVFAIL 75
    if kind == "bad-domain":
        return UsageError(message)
    if kind == "timeout":
        return LimitHit(message, kind="timeout")
    if kind == "temporary":
        return TempFailure(message)
    return JcshError(message)


def render_mx(report: MxReport, render_outcome: Callable[[Outcome], str]) -> str:
    """One section per MX host in preference order, then the domain's MTA-STS and TLS-RPT."""
    from jcsh.runtime.tls.checks.mta_sts import render_mta_sts

    n = len(report.hosts)
    sections = [shown(f"{report.domain}: {n} MX host{'s' if n != 1 else ''}")]
    for h in report.hosts:
        head = shown(f"MX {h.preference} {h.host} ({', '.join(h.addresses) or 'no address'})")
        body = render_outcome(h.outcome)
        covered = {True: "covered", False: "NOT covered", None: "no policy"}[h.covered]
        sections.append(f"{head}\n{body}\nmta-sts    {covered}")
    sections.append("\n".join(render_mta_sts(report.mta_sts, report.tls_rpt, [h.host for h in report.hosts])))
    return "\n\n".join(sections)
