"""`jcsh configure`, `jcsh mail settings` and `jcsh mail doctor`: the mail module's configuration."""

from __future__ import annotations

import argparse
from typing import Any

from jcsh.shell.commands import seconds, syntax
from jcsh.shell.context import Context
from jcsh.shell.render import paint, table

__all__ = ["cmd_configure", "cmd_settings", "cmd_doctor"]


# -- jcsh configure -------------------------------------------------------------------------------


def _configure_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="from_addr",
        required=True,
        metavar="ADDR",
        help="the default From: address (display name allowed: 'Ops <ops@example.test>')",
    )
    p.add_argument("--server", metavar="HOST", help="the SMTP server; blank: detect it from From's domain (MX)")
    p.add_argument(
        "--timeout",
        dest="dns_timeout",
        type=seconds(300),
        default=None,
        metavar="SECONDS",
        help="time limit of each DNS lookup (default 5)",
    )


@syntax(
    "configure",
    "System_Mail_Configure: set From and the mail server (detected from MX when not given)",
    _configure_arguments,
)
def cmd_configure(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.mail.configure import configure
    from jcsh.runtime.resolver import DEFAULT_LIFETIME

    lifetime = args.dns_timeout or DEFAULT_LIFETIME
    result = configure(ctx.registry, ctx.credentials, args.from_addr, args.server, lifetime=lifetime)
    if result.status == "Error" and ctx.interactive:
        # As the product does: status Error, then ask for the hostname the detection could not find.
        if not ctx.json:
            ctx.show(result.summary() + "\n")
        ctx.show("Mail server hostname (empty to give up): ", err=True)
        host = ctx.stdin.readline().strip()
        if host:
            result = configure(ctx.registry, ctx.credentials, args.from_addr, host, lifetime=lifetime)
        elif not ctx.json:
            return result.exit_code
    if not ctx.json:
        for warning in result.warnings:
            ctx.warn(warning)
    ctx.emit(result.to_json(), result.summary())
    return result.exit_code


# -- jcsh mail settings ---------------------------------------------------------------------------


def _settings_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="HOST", help="show the settings as they would be for this server")


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        if not value:
            return "(OpenSSL default)" if name == "protocols" else "(none)"
        return " ".join(value)
    if hasattr(value, "endpoint"):
        return f"smtp {value.endpoint} {value.virtual_user}" + (
            f" (real user {value.real_user})" if value.real_user else ""
        )
    return str(value)


@syntax("mail settings", "every effective mail setting, its value and its origin", _settings_arguments)
def cmd_settings(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.mail.settings import SETTING_NAMES, load_settings

    s = load_settings(ctx.registry, ctx.credentials, server=args.server)
    rows = [(name, _shown(name, s.setting(name).value), s.setting(name).origin) for name in SETTING_NAMES]
    text = table(rows, ("SETTING", "VALUE", "ORIGIN"))
    if s.raw_properties:
        props = [(name, p.value, p.origin) for name, p in s.raw_properties.items()]
        text += "\n\n" + table(props, ("JAVAMAIL PROPERTY", "VALUE", "ORIGIN"))
    if not ctx.json:
        for warning in s.warnings:
            ctx.warn(warning)
    ctx.emit(s.to_json(), text)
    return 0


# -- jcsh mail doctor -----------------------------------------------------------------------------

_COLOR = {"error": "red", "warning": "yellow", "note": "blue"}


def _doctor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dns",
        action="store_true",
        help="also check From's SPF (does it authorize the Server?) and DMARC records; DNS lookups only",
    )
    p.add_argument(
        "--timeout",
        dest="dns_timeout",
        type=seconds(300),
        default=None,
        metavar="SECONDS",
        help="time limit of each DNS lookup with --dns (default 5)",
    )


@syntax("mail doctor", "traps in the mail configuration, with fixes (exit 1 when any is an error)", _doctor_arguments)
def cmd_doctor(ctx: Context, args: argparse.Namespace) -> int:
    from jcsh.runtime.mail.doctor import LEVELS, Finding, Level, diagnose
    from jcsh.runtime.resolver import DEFAULT_LIFETIME

    ctx.home_warnings_on_stderr = False  # the doctor lists them as findings instead
    lifetime = (args.dns_timeout or DEFAULT_LIFETIME) if args.dns else None
    findings = diagnose(ctx.registry, ctx.credentials, dns_lifetime=lifetime)
    home = [Finding(Level.WARNING, (str(ctx.home),), w.message, w.fix) for w in ctx.home_problems]
    findings = sorted([*home, *findings], key=lambda f: LEVELS.index(f.level))
    counts = {level: sum(f.level == level for f in findings) for level in LEVELS}
    lines = []
    for f in findings:
        lines.append(f"{paint(f.level, _COLOR[f.level], ctx.color)}: {f.message}")
        lines.append(f"    keys: {', '.join(f.keys)}")
        lines.append(f"    fix:  {f.fix}")
    tally = ", ".join(f"{n} {level}{'s' if n != 1 else ''}" for level, n in counts.items())
    lines.append(tally if findings else "no problems found")
    data = {"ok": counts[Level.ERROR] == 0, "counts": counts, "findings": [f.to_json() for f in findings]}
    ctx.emit(data, "\n".join(lines))
    return 1 if counts[Level.ERROR] else 0
