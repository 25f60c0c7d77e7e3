"""`jcsh tls protocols` and `jcsh tls probe`: what this machine supports, what a server accepts."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from jcsh.runtime.errors import UsageError
from jcsh.runtime.hosts import host_port
from jcsh.shell.commands import seconds, syntax
from jcsh.shell.context import Context

if TYPE_CHECKING:
    from jcsh.runtime.smtp.wire import Timeouts
    from jcsh.runtime.tls.probe import ProbeResult
    from jcsh.runtime.tls.trust import TrustPolicy

__all__ = ["cmd_protocols", "cmd_probe", "render_probe"]


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
    p.add_argument("-v", "--verbose", action="store_true", help="print each connection's outcome on stderr as it ends")


@syntax(
    "tls probe",
    "which TLS versions a mail server accepts, its certificate, and whether it is trusted",
    _probe_arguments,
)
def cmd_probe(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.tls.probe import probe
    from jcsh.shell.spinner import live_lines

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
        on_step=live_lines(ctx) if args.verbose else None,
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


def render_probe(r: ProbeResult) -> str:
    """The compact table `jcsh tls probe` prints."""
    where = host_port(r.host, r.port)
    sni = "" if r.servername == r.host else f", servername {r.servername}"
    lines = [f"{where}  {r.mode}{sni}  {r.elapsed_ms} ms"]
    for name, ok in r.protocols.items():
        lines.append(f"  {name:<9}{'accepted' if ok else 'no':<10}{'' if ok else r.reasons.get(name, '')}".rstrip())
    n = r.negotiated
    if n:
        lines.append(f"negotiated {n['version']} {n['cipher']} ({n['bits']} bits)")
    if r.certificate:
        lines += _certificate_lines(r.certificate)
    lines += _smtp_lines(r.smtp)
    return "\n".join(lines)


def _certificate_lines(c: dict[str, Any]) -> list[str]:
    if c["trust_skipped"]:
        trust = f"not verified ({c['trust_skipped']})"
        if c["verified"] is False:
            trust += f"; would fail: {c['trust_error']}"
    elif c["trusted"]:
        trust = "trusted"
    else:
        trust = f"NOT trusted: {c['trust_error']}"
    chain = " <- ".join(link["subject"] for link in c["chain"])
    return [
        f"certificate {c['subject']}",
        f"  issuer    {c['issuer']}",
        f"  names     {' '.join(c['sans']) or '(no subjectAltName)'}",
        f"  valid     {c['not_before'][:10]} to {c['not_after'][:10]} ({c['days_left']} days left)",
        f"  key       {c['key_type']} {c['key_size']}, {c['signature_algorithm']}",
        f"  sha256    {c['sha256']}",
        f"  host      {c['servername']} {'matches' if c['hostname_match'] else 'does NOT match'}",
        f"  trust     {trust}",
        f"  chain     {len(c['chain'])} sent: {chain}",
    ]


def _smtp_lines(s: dict[str, Any]) -> list[str]:
    lines = []
    if s["banner"]:
        lines.append(f"smtp       {s['banner']}")
    # AUTH and SIZE often appear only after STARTTLS, so both answers are shown.
    for label, ehlo in (("ehlo     ", s["ehlo"]), ("after tls", s["ehlo_tls"])):
        if ehlo is not None:
            lines.append(f"  {label} " + " ".join(f"{k} {v}".strip() for k, v in ehlo.items()))
    if s["starttls_offered"] is False:
        lines.append("  STARTTLS not offered")
    lines += [f"  reply    {reply}" for reply in s["replies"]]
    return lines
