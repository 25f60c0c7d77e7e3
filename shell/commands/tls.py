"""`jcsh tls protocols` and `jcsh tls probe`: what this machine supports, what a server accepts."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from jcsh.runtime.errors import UsageError
from jcsh.shell.commands import seconds, syntax
from jcsh.shell.context import Context

if TYPE_CHECKING:
    from jcsh.runtime.smtp.wire import Timeouts
    from jcsh.runtime.tls.trust import TrustPolicy

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
        "target",
        metavar="HOST[:PORT]",
        nargs="?",
        help="name, IPv4 or [IPv6], optional :PORT (default 25); default: the configured server",
    )
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
        "--timeout",
        type=seconds(3600),
        metavar="S",
        help="the time each step may take: connect and greeting, each command and its reply, the TLS "
        "handshake (default: the mail.smtp.*timeout settings)",
    )


@syntax(
    "tls probe",
    "which TLS versions a mail server accepts, its certificate, and whether it is trusted",
    _probe_arguments,
)
def cmd_probe(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.tls.probe import probe
    from jcsh.runtime.tls.report import render_probe

    host, port, mode, policy, ehlo_name, timeouts = _target(ctx, args)
    protocols = tuple(p for p in re.split(r"[\s,]+", args.protocols or "") if p) or None
    if args.protocols is not None and protocols is None:
        raise UsageError("--protocols needs at least one version, e.g. TLSv1.2")
    result = probe(
        host,
        port,
        mode=mode,
        servername=args.servername,
        protocols=protocols,
        timeout=args.timeout,
        timeouts=timeouts,
        policy=policy,
        local_hostname=ehlo_name,
        home=ctx.home,
    )
    ctx.emit(result.to_json(), render_probe(result))
    return 0


def _target(ctx: Context, args: argparse.Namespace) -> tuple[str, int, str | None, TrustPolicy, str | None, Timeouts]:
    """Host, port, mode, trust policy, EHLO name and timeouts: from the command line, else the mail settings."""
    from jcsh.runtime.mail.settings import load_settings
    from jcsh.runtime.mail.trust import trust_policy

    if args.target is not None:
        from jcsh.runtime.tls.target import parse_target

        host, port = parse_target(args.target)
        settings = load_settings(ctx.registry, ctx.credentials, server=host)
        mode = args.mode
        if port is None:
            port = 465 if mode == "implicit" else 25
    else:
        settings = load_settings(ctx.registry, ctx.credentials)
        host, port = settings.require_server(), settings.port.value  # ConfigError, as for testmail
        mode = args.mode or ("implicit" if settings.security.value == "TLS" else "starttls")
    return host, port, mode, trust_policy(settings, ctx.credentials), settings.localhost.value, settings.timeouts()
