"""`jcsh tls protocols` and `jcsh tls probe`: what this machine supports, what a server accepts."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from jcsh.runtime.errors import UsageError
from jcsh.shell.commands import seconds, syntax
from jcsh.shell.context import Context

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.tls.checks.truststore import TrustStore
    from jcsh.runtime.tls.probe import ProbeResult
    from jcsh.runtime.tls.scan import Extras, Job, Outcome

__all__ = ["cmd_protocols", "cmd_probe"]


def _protocols_arguments(p: argparse.ArgumentParser) -> None:
    del p  # --json is common to every command


@syntax("tls protocols", "the TLS protocol versions this machine can negotiate, newest first", _protocols_arguments)
def cmd_protocols(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.tls.protocol_cache import remember
    from jcsh.runtime.tls.protocols import supported_protocols

    report = supported_protocols()  # always checked afresh here, and the probes' cache refreshed
    remember(ctx.home, report)
    ctx.emit(report.to_json(), report.line())
    return 0


def _probe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "targets",
        metavar="HOST[:PORT]",
        nargs="*",
        help="name, IPv4 or [IPv6], optional :PORT (default 25); several are probed at once; "
        "default: the configured server",
    )
    p.add_argument(
        "--mx",
        metavar="DOMAIN",
        help="probe every MX host of DOMAIN at once (through $JCSH_NAMESERVERS when set), with DANE per host "
        "and the domain's MTA-STS and TLS-RPT",
    )
    p.add_argument("--port", type=int, metavar="N", help="with --mx: the port of the MX hosts (default 25)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--starttls",
        dest="mode",
        action="store_const",
        const="starttls",
        help="plain SMTP, then STARTTLS (default, except on port 465)",
    )
    mode.add_argument(
        "--implicit",
        dest="mode",
        action="store_const",
        const="implicit",
        help="TLS from the first byte (default on port 465; without :PORT means 465)",
    )
    p.add_argument("--servername", metavar="NAME", help="SNI and the name the certificate must match (default: HOST)")
    p.add_argument("--protocols", metavar="LIST", help='versions to try, e.g. "TLSv1.2 TLSv1.3" (default: all four)')
    p.add_argument(
        "--ciphers", action="store_true", help="also the cipher suites each accepted version accepts, and the order"
    )
    p.add_argument(
        "--truststore",
        metavar="FILE",
        help="also judge the chain as a JVM with this trust store would (JKS or PKCS12; password changeit)",
    )
    p.add_argument(
        "--truststore-password-stdin", action="store_true", help="read the trust store's password from standard input"
    )
    p.add_argument(
        "--timeout",
        type=seconds(3600),
        metavar="S",
        help="the time each step may take: connect and greeting, each command and its reply, the TLS "
        "handshake (default: the mail.smtp.*timeout settings)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print each connection's outcome on stderr as it ends")


@syntax(
    "tls probe",
    "which TLS versions a mail server accepts, its certificate, and whether it is trusted",
    _probe_arguments,
)
def cmd_probe(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.tls.scan import Extras, first_failure, run_jobs

    protocols = tuple(p for p in re.split(r"[\s,]+", args.protocols or "") if p) or None
    if args.protocols is not None and protocols is None:
        raise UsageError("--protocols needs at least one version, e.g. TLSv1.2")
    if args.mx is not None and args.targets:
        raise UsageError("give either --mx DOMAIN or HOST[:PORT] targets, not both")
    if args.port is not None and args.mx is None:
        raise UsageError("--port goes with --mx; give a target as HOST:PORT")
    if args.truststore_password_stdin and args.truststore is None:
        raise UsageError("--truststore-password-stdin needs --truststore FILE")
    extras = Extras(ciphers=args.ciphers, truststore=_truststore(ctx, args))  # exit 2 before any connection
    if args.mx is not None:
        return _probe_mx(ctx, args, protocols, extras)
    jobs = [_job(ctx, args, t, protocols) for t in (args.targets or [None])]
    if args.verbose:
        jobs = [j._replace(on_step=_steps(ctx, j, len(jobs) > 1)) for j in jobs]
    outcomes = run_jobs(jobs, extras)
    if len(outcomes) == 1:
        only = outcomes[0]
        if only.error is not None:
            raise only.error
        assert only.result is not None
        ctx.emit(only.result.to_json(), None if ctx.json else _table(only.result))  # no table to throw away
        return 0
    text = None if ctx.json else "\n\n".join(_section(o) for o in outcomes)
    ctx.emit({"targets": [o.to_json() for o in outcomes]}, text)
    return first_failure([o.exit_code for o in outcomes])


def _steps(ctx: Context, job: Job, several: bool) -> Callable[[str], None]:
    """`-v`: each connection's outcome on stderr, prefixed with its target when there are several."""
    from jcsh.runtime.tls.scan import where
    from jcsh.shell.spinner import live_lines

    say = live_lines(ctx)
    if not several:
        return say
    prefix = where(job)
    return lambda line: say(f"{prefix}: {line}")


def _truststore(ctx: Context, args: argparse.Namespace) -> TrustStore | None:
    if args.truststore is None:
        return None
    from jcsh.runtime.tls.checks.truststore import load_truststore

    password = None
    if args.truststore_password_stdin:
        text = ctx.stdin.readline()
        password = text.rstrip("\r\n")
    return load_truststore(args.truststore, password)


def _table(result: ProbeResult) -> str:
    from jcsh.runtime.tls.report import render_probe

    return render_probe(result)


def _section(o: Outcome) -> str:
    from jcsh.runtime.tls.report import render_probe
    from jcsh.runtime.tls.scan import where

    if o.result is not None:
        return render_probe(o.result)
    assert o.error is not None
    return f"{where(o.job)}  FAILED (exit {o.exit_code}): {o.error.message}"


def _probe_mx(ctx: Context, args: argparse.Namespace, protocols: tuple[str, ...] | None, extras: Extras) -> int:
    from jcsh.runtime.mail.mx_probe import probe_mx, render_mx

    base = _job(ctx, args, None, protocols, mx=True)

    def make_job(address: str, mx_host: str) -> Job:
        job = base._replace(host=address, servername=args.servername or mx_host, label=mx_host)
        return job._replace(on_step=_steps(ctx, job, True)) if args.verbose else job

    report = probe_mx(args.mx, args.port or 25, make_job, extras, base.policy, timeout=args.timeout or 10.0)
    ctx.emit(report.to_json(), None if ctx.json else render_mx(report, _section))  # no tables for --json
    return report.exit_code


def _job(
    ctx: Context, args: argparse.Namespace, target: str | None, protocols: tuple[str, ...] | None, *, mx: bool = False
) -> Job:
    """One target: from the command line, else the mail settings (host, port, mode, trust, EHLO name, timeouts)."""
    from jcsh.runtime.mail.settings import load_settings
    from jcsh.runtime.mail.trust import trust_policy
    from jcsh.runtime.tls.scan import Job

    if target is not None or mx:
        host, port = "", args.port or 25
        if target is not None:
            from jcsh.runtime.tls.target import parse_target

            host, given = parse_target(target)
            port = given if given is not None else (465 if args.mode == "implicit" else 25)
        settings = load_settings(ctx.registry, ctx.credentials, server=host or None)
        mode = args.mode
    else:
        settings = load_settings(ctx.registry, ctx.credentials)
        host, port = settings.require_server(), settings.port.value  # ConfigError, as for testmail
        mode = args.mode or ("implicit" if settings.security.value == "TLS" else "starttls")
    return Job(
        host=host,
        port=port,
        mode=mode,
        servername=args.servername,
        protocols=protocols,
        timeout=args.timeout,
        timeouts=settings.timeouts(),
        policy=trust_policy(settings, ctx.credentials),
        local_hostname=settings.localhost.value,
        home=ctx.home,
    )
