"""`tls probe` over several targets or every MX of a domain: each probe and its further checks, concurrently."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from jcsh.runtime.errors import ExitStatus, JcshError
from jcsh.runtime.hosts import host_port
from jcsh.runtime.later import Later, run_all
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.tls.probe import ProbeResult, probe

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.smtp.wire import Timeouts
    from jcsh.runtime.tls.checks.dane import TlsaAnswer
    from jcsh.runtime.tls.checks.truststore import TrustStore
    from jcsh.runtime.tls.trust import TrustPolicy

__all__ = ["Job", "Extras", "Outcome", "run_job", "run_jobs", "first_failure"]

# The order in which a failure decides the exit code of a run over several targets (issue 15).
_FAILURE_ORDER = (ExitStatus.CONNECT, ExitStatus.LIMIT, ExitStatus.TEMPORARY, ExitStatus.FAILED)


_AT_ONCE = 32  # targets probed at the same time


class Job(NamedTuple):
    """One target to probe, as the command line or the mail settings gave it."""

    host: str
    port: int
    mode: str | None
    servername: str | None
    protocols: tuple[str, ...] | None
    timeout: float | None
    timeouts: Timeouts | None
    policy: TrustPolicy
    local_hostname: str | None
    home: Path | None = None
    label: str = ""  # what the user named (an MX host when probing by address)
    on_step: Callable[[str], None] | None = None  # `-v`: each connection's outcome as it ends


class Extras(NamedTuple):
    """The further checks asked for, run once the handshakes have a chain and versions."""

    ciphers: bool = False
    truststore: TrustStore | None = None
    dane: bool = False  # TLSA of _PORT._tcp.LABEL (with --mx)
    lifetime: float = 5.0  # each DNS lookup


NO_EXTRAS = Extras()


class Outcome(NamedTuple):
    """One target's result, or the error that ended its probe."""

    job: Job
    result: ProbeResult | None
    error: JcshError | None

    @property
    def exit_code(self) -> int:
        return int(self.error.exit_code) if self.error is not None else 0

    def to_json(self) -> dict[str, Any]:
        if self.result is not None:
            return {**self.result.to_json(), "exit_code": 0}
        assert self.error is not None
        return {
            "host": self.job.label or self.job.host,
            "port": self.job.port,
            "exit_code": self.exit_code,
            "error": self.error.to_json(),
        }


def first_failure(codes: Sequence[int]) -> int:
    """The exit code of several probes: the first failure in the order 3, 4, 75, 1, else any other, else 0."""
    for code in _FAILURE_ORDER:
        if code in codes:
            return int(code)
    return next((c for c in codes if c), 0)


def run_job(job: Job, extras: Extras = NO_EXTRAS) -> Outcome:
    """Probe one target, then its further checks side by side; never raises a JcshError."""
    tlsa = None
    if extras.dane:
        from jcsh.runtime.tls.checks.dane import fetch_tlsa

        # the TLSA lookup needs no handshake: it runs while the probe's connections do
        name = job.label or job.host
        tlsa = Later(lambda: fetch_tlsa(name, job.port, lifetime=extras.lifetime), "jcsh-dane")
    try:
        result = probe(
            job.host,
            job.port,
            mode=job.mode,
            servername=job.servername,
            protocols=job.protocols,
            timeout=job.timeout,
            timeouts=job.timeouts,
            policy=job.policy,
            local_hostname=job.local_hostname,
            home=job.home,
            on_step=job.on_step,
        )
    except JcshError as e:
        return Outcome(job, None, e)
    checks = _checks(job, result, extras, tlsa)
    if checks:
        try:
            found = run_all([fn for _, fn in checks], "jcsh-check")
        except JcshError as e:
            return Outcome(job, None, e)
        for (name, _), value in zip(checks, found, strict=True):
            result = result.with_check(name, value)
    return Outcome(job, result, None)


def _checks(
    job: Job, result: ProbeResult, extras: Extras, tlsa: Later[TlsaAnswer] | None
) -> list[tuple[str, Callable[[], Any]]]:
    checks: list[tuple[str, Callable[[], Any]]] = []
    if extras.truststore is not None:
        from jcsh.runtime.tls.checks.truststore import verify_chain

        store = extras.truststore
        checks.append(("truststore", lambda: verify_chain(store, result.chain)))
    if tlsa is not None:
        from jcsh.runtime.tls.checks.dane import judge_tlsa

        fetched = tlsa
        checks.append(("dane", lambda: judge_tlsa(fetched.result(), result.chain)))
    if extras.ciphers:
        from jcsh.runtime.tls.checks.ciphers import scan_ciphers

        accepted = result.versions.accepted()
        if accepted:
            step = job.timeout or (job.timeouts.read if job.timeouts else 5.0)
            checks.append(
                (
                    "ciphers",
                    lambda: scan_ciphers(
                        result.host,
                        result.port,
                        accepted,
                        mode=result.mode,
                        servername=result.servername,
                        timeout=step,
                        local_hostname=job.local_hostname,
                    ),
                )
            )
    return checks


def run_jobs(jobs: Sequence[Job], extras: Extras = NO_EXTRAS) -> list[Outcome]:
    """Every job at once, each probe with its own deadlines; outcomes in the order given."""
    if len(jobs) == 1:
        return [run_job(jobs[0], extras)]
    out: list[Outcome] = []
    for i in range(0, len(jobs), _AT_ONCE):  # each target opens ~5 connections at once
        out += run_all([functools.partial(run_job, j, extras) for j in jobs[i : i + _AT_ONCE]], "jcsh-target")
    return out


def where(job: Job) -> str:
    return host_port(job.label or job.host, job.port)
