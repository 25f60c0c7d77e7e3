"""`jcsh testmail`: send a test mail with the configured mail module and say what happened."""

from __future__ import annotations

import argparse

from jcsh.runtime.errors import JcshError
from jcsh.runtime.hosts import host_port
from jcsh.shell.commands import read_text, seconds, syntax
from jcsh.shell.context import Context
from jcsh.shell.render import paint

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.mail.send import SendResult

__all__ = ["cmd_testmail", "summary"]


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", action="append", required=True, metavar="ADDR", help="recipient (repeat for more)")
    p.add_argument("--cc", action="append", default=[], metavar="ADDR", help="copy recipient (repeatable)")
    p.add_argument(
        "--bcc",
        action="append",
        default=[],
        metavar="ADDR",
        help="blind copy: envelope only, never a header (repeatable)",
    )
    p.add_argument("--from", dest="from_", metavar="ADDR", help="sender (default: /configuration/mail/From)")
    p.add_argument("--subject", metavar="S", help="subject (default: says it is a jcsh test mail)")
    p.add_argument("--body", metavar="TEXT", help="text body (default: names this host and the time)")
    p.add_argument("--html", metavar="FILE", help="an HTML alternative body read from FILE")
    p.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="attach FILE (must lie inside AccessiblePath; repeatable)",
    )
    p.add_argument("--server", metavar="HOST", help="use this server's settings instead of the configured one")
    p.add_argument(
        "--timeout",
        dest="net_timeout",
        type=seconds(3600),
        metavar="SECONDS",
        help="the time each step may take: connect and greeting, TLS handshake, each command and its "
        "reply, the message and its final reply (default: the mail.smtp.*timeout settings)",
    )
    p.add_argument("--transcript", action="store_true", help="print the SMTP dialogue (AUTH redacted)")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print the SMTP dialogue on stderr as it happens (AUTH redacted)"
    )
    p.add_argument(
        "--quit-after",
        choices=("connect", "tls", "auth", "rcpt"),
        metavar="STEP",
        help="check without sending: stop after connect (greeting, EHLO), tls, auth (the login) or rcpt "
        "(each recipient's verdict, then RSET) with QUIT; exit 0 when every step so far succeeded",
    )


def summary(result: SendResult, *, color: bool = False) -> str:
    """The human summary: server, security, TLS, trust, login, recipients, final reply."""
    rows: list[tuple[str, str, str | None]] = [
        ("status", result.status, {"sent": "green", "checked": "green", "partial": "yellow"}.get(result.status, "red")),
        ("server", host_port(result.server or "", result.port or 0), None),
        ("security", result.security or "", None),
    ]
    if result.tls:
        rows.append(("tls", f"{result.tls['version']} {result.tls['cipher']}", None))
        cert = result.certificate
        who = f"{cert['subject']}, issued by {cert['issuer']}, valid until {cert['not_after']}" if cert else ""
        trust = "verified" if result.verified else "NOT verified"
        rows.append(("trust", f"{trust}: {who}" if who else trust, None if result.verified else "yellow"))
    elif result.tls_failure or (result.error and result.error.get("kind") in ("trust", "tls")):
        rows.append(("tls", result.tls_failure or "not established", "red"))
        if result.certificate:
            cert = result.certificate
            rows.append(
                ("certificate", f"{cert['subject']}, issued by {cert['issuer']}, valid until {cert['not_after']}", None)
            )
    elif result.status == "failed":
        rows.append(("tls", "not established", None))
    else:
        rows.append(("tls", "none (plain text)", None))
    rows.append(("login", result.authenticated_as or "none", None))
    if result.quit_after:
        rows.append(("checked", f"up to {result.quit_after}, then QUIT: nothing was sent", None))
    rows += [("recipient", f"{a}: accepted", None) for a in result.accepted]
    rows += [("recipient", f"{a}: refused: {r}", "red") for a, r in result.refused.items()]
    if result.final_reply:
        rows.append(("reply", result.final_reply, None))
    if result.message_id:
        rows.append(("message-id", result.message_id, None))
    rows += [("warning", w, "yellow") for w in result.warnings]
    explained = result.explanation()
    if explained:
        rows.append(("why", f"{explained['cause']} ({explained['provider']})", None))
        rows.append(("fix", f"{explained['fix']} (see {explained['reference']})", None))
    rows.append(("elapsed", f"{result.elapsed_ms} ms", None))
    width = max(len(k) for k, _, _ in rows) + 1
    # Server replies and certificate names are remote text: Context.emit escapes them, then colours.
    return "\n".join(f"{(k + ':').ljust(width)} " + (paint(v, c, color) if c else v) for k, v, c in rows)


def _html(ctx: Context, name: str) -> str:
    from jcsh.runtime.bounded import HTML  # --html only: runtime.bounded is not otherwise on this path

    return read_text(ctx, name, what="--html", bounds=HTML)


@syntax("testmail", "send a test mail with the configured mail module", _arguments)
def cmd_testmail(ctx: Context, args: argparse.Namespace) -> int:
    import socket
    from datetime import datetime

    from jcsh.runtime.mail.message import MailRequest
    from jcsh.runtime.mail.result import SendResult
    from jcsh.runtime.mail.send import send_mail
    from jcsh.runtime.mail.settings import Setting, load_settings
    from jcsh.shell.spinner import live_lines

    settings = None
    try:
        settings = load_settings(ctx.registry, ctx.credentials, server=args.server)
        settings.require_server()
        if args.net_timeout is not None:
            ms = Setting(round(args.net_timeout * 1000), "--timeout")
            settings = settings._replace(connect_timeout_ms=ms, read_timeout_ms=ms, write_timeout_ms=ms)
        host = socket.gethostname()
        when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
        body = args.body
        if body is None:
            body = (
                f"This is a jcsh test mail, sent from {host} at {when}\n"
                f"through {settings.server.value}:{settings.port.value} ({settings.security.value}).\n"
                "If you can read it, the mail module works.\n"
            )
        request = MailRequest(
            to=args.to,
            cc=args.cc,
            bcc=args.bcc,
            from_=args.from_,
            subject=args.subject if args.subject is not None else f"jcsh test mail from {host} at {when}",
            body=body,
            html=_html(ctx, args.html) if args.html else None,
            attachments=args.attach,
        )
        live = live_lines(ctx) if args.verbose else None
        result = send_mail(  # bad input raises
            settings, ctx.credentials, request, transcript=args.transcript, on_line=live, quit_after=args.quit_after
        )
    except JcshError as e:
        if not ctx.json:
            raise
        # --json: the same result object as every other path, so that CI reads `.status` always.
        early = SendResult(
            settings.server.value if settings else args.server,
            settings.port.value if settings else None,
            settings.security.value if settings else None,
        )
        early.fail(e)
        ctx.emit(early.to_json(), None)
        return e.exit_code
    text = summary(result, color=ctx.color)
    if args.transcript and result.transcript:
        text = "\n".join(result.transcript) + "\n\n" + text
    ctx.emit(result.to_json(), text)
    if result.error and not ctx.json:
        ctx.warn(result.error["message"])
    return result.exit_code
