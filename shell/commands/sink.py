"""`jcsh sink`: a local SMTP server to test against, printing each message as it arrives."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jcsh.runtime.errors import JobFailed, UsageError
from jcsh.runtime.hosts import bare_host, shown_host
from jcsh.shell.commands import syntax
from jcsh.shell.context import Context

if TYPE_CHECKING:
    from jcsh.runtime.sink import Received, SinkConfig

__all__ = ["cmd_sink", "parse_auth"]

_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_LINES_DELAY = 0.05  # seconds a message's line may wait for the next ones


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", default="2525", metavar="N", help="port (default 2525; 0 = any free port)")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true", help="offer STARTTLS")
    tls.add_argument("--implicit", action="store_true", help="TLS from the first byte (like port 465)")
    p.add_argument(
        "--require-starttls", action="store_true", help="refuse MAIL and AUTH before STARTTLS (530); implies --starttls"
    )
    p.add_argument(
        "--auth",
        action="append",
        default=[],
        metavar="USER:PASS",
        help="accept this login (PLAIN, LOGIN); repeatable. A test password: argv is visible to ps",
    )
    p.add_argument(
        "--auth-mechanisms",
        metavar="LIST",
        help="AUTH mechanisms to offer, comma-separated: PLAIN, LOGIN, CRAM-MD5 (with --auth), XOAUTH2, "
        "OAUTHBEARER (with --oauth-token-file); default PLAIN,LOGIN with --auth, XOAUTH2,OAUTHBEARER with tokens",
    )
    p.add_argument(
        "--oauth-token-file",
        metavar="FILE",
        help="accept XOAUTH2/OAUTHBEARER logins with the access tokens in FILE, one per line "
        "(re-read at each login, so fresh tokens can be added while the sink runs)",
    )
    p.add_argument("--require-auth", action="store_true", help="refuse MAIL before a successful AUTH (530)")
    p.add_argument("--maildir", metavar="DIR", help="also store every message in this Maildir")
    p.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="STAGE=CODE",
        help="answer CODE (400-599, drop or stall) at STAGE: connect, helo, auth, mail, rcpt, "
        "rcpt:ADDRESS, data; repeatable",
    )
    p.add_argument("--cert", metavar="FILE", help="certificate (chain) PEM to serve instead of a generated one")
    p.add_argument("--key", metavar="FILE", help="the private key PEM of --cert")
    p.add_argument("--size", metavar="N", help="advertise SIZE N and refuse larger messages")
    p.add_argument(
        "--chunking",
        action="store_true",
        help="offer CHUNKING: take messages as BDAT chunks (RFC 3030), as Postfix does",
    )
    p.add_argument(
        "--tls-min", choices=_VERSIONS, metavar="VERSION", help=f"lowest TLS version: {', '.join(_VERSIONS)}"
    )
    p.add_argument("--tls-max", choices=_VERSIONS, metavar="VERSION", help="highest TLS version")
    p.add_argument("-v", "--verbose", action="store_true", help="also print connections, TLS, AUTH results, faults")


def parse_auth(specs: list[str]) -> dict[str, str]:
    """`USER:PASS` options -> {user: password}; errors never repeat the password."""
    users: dict[str, str] = {}
    for n, spec in enumerate(specs, 1):
        user, sep, password = spec.partition(":")
        if not sep or not user or not password:
            raise UsageError(f"--auth #{n} is not USER:PASS (both non-empty)")
        if any(ord(c) < 32 for c in spec):
            raise UsageError(f"--auth #{n} contains a control character")
        if user in users:
            raise UsageError(f"--auth names user {user!r} twice")
        users[user] = password
    return users


def _mechanisms(text: str | None, users: bool, tokens: bool) -> tuple[str, ...]:
    """--auth-mechanisms checked against what the sink can do with the logins it was given."""
    from jcsh.runtime.sink import MECHANISMS, PASSWORD_MECHANISMS

    if text is None:
        return ()
    names = tuple(dict.fromkeys(n.strip().upper() for n in text.replace(" ", ",").split(",") if n.strip()))
    if not names:
        raise UsageError("--auth-mechanisms names no mechanism")
    for name in names:
        if name not in MECHANISMS:
            raise UsageError(f"--auth-mechanisms: {name!r} is not one of {', '.join(MECHANISMS)}")
        if name in PASSWORD_MECHANISMS and not users:
            raise UsageError(f"--auth-mechanisms {name} needs --auth USER:PASS")
        if name not in PASSWORD_MECHANISMS and not tokens:
            raise UsageError(f"--auth-mechanisms {name} needs --oauth-token-file FILE")
    return names


def _int(option: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{option} must be a number, not {text!r}") from None
    if not low <= value <= high:
        raise UsageError(f"{option} must be {low}-{high}, not {value}")
    return value


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config(ctx: Context, args: argparse.Namespace) -> SinkConfig:
    import ssl

    from jcsh.runtime.sink import SinkConfig, parse_fail

    host = bare_host(args.host.strip())
    if not host or any(c.isspace() for c in host):
        raise UsageError(f"--host {args.host!r} is not an address")
    if args.require_auth and not args.auth and not args.oauth_token_file:
        raise UsageError("--require-auth needs at least one --auth USER:PASS or --oauth-token-file FILE")
    token_file = None
    if args.oauth_token_file:
        from jcsh.runtime.sink import read_token_file

        token_file = Path(args.oauth_token_file).expanduser().absolute()
        try:
            read_token_file(token_file)
        except ValueError as e:
            raise UsageError(f"--oauth-token-file {e}") from None
    mechanisms = _mechanisms(args.auth_mechanisms, bool(args.auth), token_file is not None)
    if args.require_starttls and args.implicit:
        raise UsageError("--require-starttls goes with --starttls, not --implicit")
    mode = "implicit" if args.implicit else "starttls" if (args.starttls or args.require_starttls) else "plain"
    if (args.cert is None) != (args.key is None):
        raise UsageError("give --cert and --key together")
    if args.cert and mode == "plain":
        raise UsageError("--cert needs --starttls or --implicit")
    if (args.tls_min or args.tls_max) and mode == "plain":
        raise UsageError("--tls-min/--tls-max need --starttls or --implicit")
    for option, name in (("--cert", args.cert), ("--key", args.key)):
        if name is not None and not Path(name).is_file():
            raise UsageError(f"{option} {name}: no such file")
    fail: dict[str, int] = {}
    for spec in args.fail:
        try:
            stage, code = parse_fail(spec)
        except ValueError as e:
            raise UsageError(f"--fail {spec}: {e}") from None
        fail[stage] = code
    versions = {v: getattr(ssl.TLSVersion, v.replace(".", "_")) for v in _VERSIONS}
    low, high = versions.get(args.tls_min or ""), versions.get(args.tls_max or "")
    if low is not None and high is not None and low > high:
        raise UsageError(f"--tls-min {args.tls_min} is above --tls-max {args.tls_max}")
    maildir = None
    if args.maildir:
        maildir = Path(args.maildir).expanduser().absolute()
        try:
            for sub in ("tmp", "new", "cur"):
                (maildir / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--maildir {args.maildir}: {e.strerror or e}") from None
    return SinkConfig(
        host=host,
        port=_int("--port", args.port, 0, 65535),
        mode=mode,
        require_starttls=args.require_starttls,
        auth=parse_auth(args.auth),
        auth_mechanisms=mechanisms,
        oauth_token_file=token_file,
        # A password in plain text is only acceptable on loopback; elsewhere AUTH waits for TLS.
        auth_require_tls=not _is_loopback(host),
        auth_required=args.require_auth,
        fail=fail,
        cert_path=Path(args.cert) if args.cert else None,
        key_path=Path(args.key) if args.key else None,
        cert_dir=None if args.cert or mode == "plain" else ctx.home / "sink",
        min_version=low,
        max_version=high,
        maildir=maildir,
        size_limit=_int("--size", args.size, 1, 1 << 40) if args.size is not None else None,
        chunking=args.chunking,
    )


def _trust_hint(ctx: Context, cert: Path, host: str) -> str:
    """How to trust the certificate, or that it already is."""
    import shlex

    from jcsh.runtime.credentials import X509

    pem = cert.read_text("ascii", errors="replace").strip()
    for cred in ctx.credentials.trusted_certificates():
        if (cred.certificate or "").strip() == pem:
            return f"already trusted: credential {cred.identity()}"
    lines = ["trust it with:"]
    if X509 not in ctx.credentials.protocols():
        lines.append(f"  jcsh credential protocol add {X509}")
    lines.append(
        f"  jcsh credential add --protocol {X509} --endpoint {shlex.quote(host)} "
        f"--virtual-user jcsh-sink --certificate {shlex.quote(str(cert))} --replace"
    )
    return "\n".join(lines)


def _describe(received: Received) -> str:
    extras = [f"{len(received.content)} bytes", received.tls_version or "no TLS"]
    if received.authenticated_as:
        extras.append(f"auth {received.authenticated_as}")
    extras.append(f"id {received.queue_id}")
    subject = received.subject
    line = (
        f"{received.mail_from or '<>'} -> {', '.join(received.rcpt_tos)}"
        f" | Subject: {subject if subject is not None else '(none)'} | {' | '.join(extras)}"
    )
    return " ".join(line.split())  # one line; Context.show escapes the client's controls


def _wait_for_interrupt() -> None:
    import signal

    def to_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, to_interrupt)  # `kill` stops as cleanly as Ctrl-C
    try:
        threading.Event().wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@syntax("sink", "a local SMTP server to test against; prints each message it receives", _arguments)
def cmd_sink(ctx: Context, args: argparse.Namespace) -> int:
    import asyncio
    import ssl
    import time

    from jcsh.runtime.sink import DROP, STALL, Sink

    config = _config(ctx, args)
    lock = threading.Lock()

    def say(text: str, *, err: bool | None = None) -> None:
        with lock:  # with --json, stdout holds only the final document
            ctx.show(text + "\n", err=ctx.json if err is None else err)

    pending: list[str] = []  # message lines not written yet

    def write_pending() -> None:
        with lock:
            text = "".join(pending)
            pending.clear()
            if text:
                ctx.show(text, err=False)

    def on_message(received: Received) -> None:
        if ctx.json:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {_describe(received)}\n"
        with lock:
            pending.append(line)
            first = len(pending) == 1
        if first:  # the lines of a burst go out together, at most 50 ms late: one write, one wake of a reader
            asyncio.get_running_loop().call_later(_LINES_DELAY, write_pending)

    def on_event(text: str) -> None:
        say(f"[{time.strftime('%H:%M:%S')}] . {text}", err=True)

    sink = Sink(config, on_message=on_message, on_event=on_event if args.verbose else None)
    try:
        sink.start()
    except ssl.SSLError as e:
        raise UsageError(f"cannot use --cert/--key: {e.reason or e}") from None
    except OSError as e:
        raise JobFailed(f"cannot listen on {config.host}:{config.port}: {e.strerror or e}") from None
    host = shown_host(sink.host)
    security = {"plain": "plain text", "starttls": "STARTTLS offered", "implicit": "implicit TLS"}[config.mode]
    if config.require_starttls:
        security = "STARTTLS required"
    lines = [f"jcsh sink listening on {host}:{sink.port} ({security})"]
    offered = config.offered_mechanisms()
    if offered:
        who = ", ".join(config.auth) if config.auth else ""
        if config.oauth_token_file is not None:
            who += ("; " if who else "") + f"tokens in {config.oauth_token_file}"
        lines.append(
            f"logins accepted: {who} (AUTH {', '.join(offered)}"
            f"{'; required before MAIL' if config.auth_required else ''})"
        )
    if config.fail:
        words = {DROP: "drop", STALL: "stall"}
        lines.append("failing: " + ", ".join(f"{k}={words.get(v, v)}" for k, v in config.fail.items()))
    if config.maildir:
        lines.append(f"storing messages in Maildir {config.maildir}")
    if sink.cert_path is not None:
        lines.append(f"certificate: {sink.cert_path}")
        if config.cert_path is None:
            lines.append(_trust_hint(ctx, sink.cert_path, sink.host))
    lines.append("Ctrl-C stops it.")
    try:  # a Ctrl-C while the banner is written still stops the sink cleanly (and prints --json's document)
        say("\n".join(lines))
        _wait_for_interrupt()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
        write_pending()
    messages = list(sink.messages)
    if ctx.json:
        ctx.emit(
            {
                "host": sink.host,
                "port": sink.port,
                "mode": config.mode,
                "certificate": str(sink.cert_path) if sink.cert_path else None,
                "received": [m.to_json() for m in messages],
            },
            None,
        )
    else:
        say(f"\nstopped; {len(messages)} message(s) received")
    return 0
