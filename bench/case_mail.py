"""Mail cases: `jcsh testmail` (with and without AUTH) against swaks and smtplib; 1,000 messages on one connection."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from bench.fixtures import FROM, TO, Fixtures
from bench.harness import (
    Case,
    Row,
    Side,
    Unavailable,
    alternate,
    check_jcsh,
    find_peer,
    jcsh_command,
    ratio_row,
    timed_process,
)
from bench.servers import MailServer

__all__ = ["CASES"]

TESTMAIL_LIMIT = 1.2  # issue 15: one message within 1.2x swaks, with and without AUTH
BATCH_LIMIT = 0.5  # issue 15: at least 2.0x the smtplib loop's msg/s, i.e. at most half its time
BATCH = 1000

# The plain-Python sides do what jcsh does: STARTTLS with a verifying context that trusts the
# sink's certificate, a message with Date and Message-ID.
SMTPLIB_ONE = f"""\
import os, smtplib, ssl, sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
msg = EmailMessage()
msg["From"], msg["To"], msg["Subject"] = {FROM!r}, {TO!r}, "smtplib test mail"
msg["Date"], msg["Message-ID"] = formatdate(localtime=True), make_msgid(domain="example.test")
msg.set_content("A test mail sent by the smtplib side of the jcsh benchmark.")
with smtplib.SMTP(host, port, timeout=30) as smtp:
    smtp.starttls(context=ssl.create_default_context(cafile=cafile))
    if os.environ.get("BENCH_SMTP_USER"):
        smtp.login(os.environ["BENCH_SMTP_USER"], os.environ["BENCH_SMTP_PASSWORD"])
    smtp.send_message(msg)
"""

SMTPLIB_LOOP = f"""\
import smtplib, ssl, sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
host, port, cafile, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with smtplib.SMTP(host, port, timeout=30) as smtp:
    smtp.starttls(context=ssl.create_default_context(cafile=cafile))
    for i in range(count):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = {FROM!r}, {TO!r}, f"batch {{i}}"
        msg["Date"], msg["Message-ID"] = formatdate(localtime=True), make_msgid(domain="example.test")
        msg.set_content(f"message {{i}} of the jcsh batch benchmark")
        smtp.send_message(msg)
"""

JCSH_LOOP = f"""\
count = int(jcsArgs[0])
with mail.session() as session:
    for i in range(count):
        session.send(to=[{TO!r}], subject=f"batch {{i}}", body=f"message {{i}} of the jcsh batch benchmark")
"""


def _delivered(server: MailServer, run: Callable[[], float], count: int, who: str) -> Callable[[], float]:
    """Time run() and check the server got exactly `count` more messages (a sink counts them)."""

    def action() -> float:
        before = server.mark()
        elapsed = run()
        server.expect(before, count, who)
        return elapsed

    return action


def _swaks(exe: str, server: MailServer) -> tuple[list[str], dict[str, str]]:
    """swaks for one message to the server, verified; its password (if any) in the environment, not argv."""
    argv = [
        exe,
        "--silent",
        "2",
        "--to",
        TO,
        "--from",
        FROM,
        "--server",
        server.host,
        "--port",
        str(server.port),
        "--tls",
        "--tls-verify",
        "--tls-ca-path",
        str(server.cafile),
        "--header",
        "Subject: swaks test mail",
    ]
    extra = {}
    if server.user is not None:
        argv += ["--auth", "PLAIN", "--auth-user", server.user]
        extra["SWAKS_OPT_auth_password"] = server.password or ""
    return argv, extra


def _testmail(fx: Fixtures, *, auth: bool) -> list[Row]:
    server = fx.server(auth=auth)
    env = fx.env(fx.mail_home(server))
    argv = [*jcsh_command(), "testmail", "--to", TO]
    start = server.mark()
    check_jcsh(argv, env)
    server.expect(start, 1, "jcsh testmail")  # counted before the next run marks its start
    jcsh = Side("jcsh", _delivered(server, timed_process(argv, env=env), 1, "jcsh testmail"))
    script = fx.scratch / "smtplib_one.py"
    script.write_text(SMTPLIB_ONE)
    smtplib_argv = [sys.executable, str(script), server.host, str(server.port), str(server.cafile)]
    smtplib_env = dict(env)
    if server.user is not None:
        smtplib_env.update(BENCH_SMTP_USER=server.user, BENCH_SMTP_PASSWORD=server.password or "")
    smtplib = Side("smtplib script", _delivered(server, timed_process(smtplib_argv, env=smtplib_env), 1, "smtplib"))
    exe = find_peer("swaks", fx.settings)
    swaks = Side("swaks", None)
    if exe:
        swaks_argv, extra = _swaks(exe, server)
        swaks_env = {**env, **extra}
        swaks = Side("swaks", _delivered(server, timed_process(swaks_argv, env=swaks_env), 1, "swaks"))
    alternate([jcsh, swaks, smtplib], fx.settings.runs(9), warmup=1)
    title = TESTMAIL_AUTH_TITLE if auth else TESTMAIL_TITLE
    how = "STARTTLS + AUTH PLAIN" if auth else "STARTTLS"
    return [
        ratio_row(
            title,
            jcsh,
            swaks,
            TESTMAIL_LIMIT,
            note=f"one message, {how} on loopback ({server.label}), certificate verified by every side, whole process",
        ),
        ratio_row(title, jcsh, smtplib, None),
    ]


def testmail(fx: Fixtures) -> list[Row]:
    return _testmail(fx, auth=False)


def testmail_auth(fx: Fixtures) -> list[Row]:
    return _testmail(fx, auth=True)


def batch(fx: Fixtures) -> list[Row]:
    server = fx.server()
    env = fx.env(fx.mail_home(server))
    count = 100 if fx.settings.quick else BATCH
    jcs = fx.scratch / "batch.jcs"
    jcs.write_text(JCSH_LOOP)
    argv = [*jcsh_command(), "run", str(jcs), str(count)]
    start = server.mark()
    check_jcsh([*jcsh_command(), "run", str(jcs), "2"], env)
    server.expect(start, 2, "jcsh mail.session()")
    jcsh = Side("jcsh", _delivered(server, timed_process(argv, env=env), count, "jcsh mail.session()"))
    script = fx.scratch / "smtplib_loop.py"
    script.write_text(SMTPLIB_LOOP)
    raw_argv = [sys.executable, str(script), server.host, str(server.port), str(server.cafile), str(count)]
    raw = Side("smtplib loop", _delivered(server, timed_process(raw_argv, env=env), count, "smtplib loop"))
    # warm-ups of 2 messages each (above and here): 1,000 would add 10-20 s a side
    _delivered(server, timed_process([*raw_argv[:-1], "2"], env=env), 2, "smtplib loop")()
    # few runs: each is 5-10 s a side, and a whole-process figure over 1,000 messages varies little
    alternate([jcsh, raw], fx.settings.runs(4 if fx.settings.mta is None else 3), warmup=0)
    rates = []
    for side in (jcsh, raw):
        rates.append(f"{side.name} {count / side.median:.0f} msg/s" if side.median else f"{side.name} —")
    return [
        ratio_row(
            f"{count:,} messages, one connection",
            jcsh,
            raw,
            BATCH_LIMIT,
            note=f"`jcsh run` of a script looping over mail.session().send vs a python script looping over "
            f"smtplib send_message; whole process, STARTTLS, verified ({server.label}): {', '.join(rates)}; "
            f"the target is {1 / BATCH_LIMIT:g}x the smtplib loop's msg/s",
        )
    ]


OAUTH_LIMIT = 1.1  # issue 14: a cached OAuth token costs no more than 10 % over a password login
OAUTH_TOKEN = "bench-access-token-cached"  # a throwaway token the loopback sink accepts, not a secret


def _oauth_home(fx: Fixtures, server: MailServer) -> Path:
    """A home like the password one, whose smtp credential is an OAuth client with its token cached."""
    import time

    from jcsh.runtime.credentials import CachedToken, CredentialStore, OAuthClient, Secret
    from jcsh.runtime.registry import open_registry

    home = fx.mail_home(server)
    reg = open_registry(home)
    try:
        store = CredentialStore(reg, home)
        # The endpoint is never asked (nothing listens on port 9): the token is cached for an hour.
        client = OAuthClient("client-credentials", "http://127.0.0.1:9/token", "bench-app", "bench", ())
        cred = store.add_oauth(
            "smtp", server.host, "default", client, {"client_secret": "bench"}, real_user="bench", replace=True
        )
        store.store_token(cred, CachedToken(Secret(OAUTH_TOKEN), time.time(), 3600, "bench"))
    finally:
        reg.close()
    return home


def testmail_oauth(fx: Fixtures) -> list[Row]:
    if fx.settings.mta is not None:
        raise Unavailable("an MTA accepts no bench token: this case runs against the sink")
    password_server = fx.server(auth=True)
    token_file = fx.scratch / "oauth-tokens"
    token_file.write_text(OAUTH_TOKEN + "\n")
    sink = fx.start_sink(
        "--auth",
        f"{password_server.user}:{password_server.password}",
        "--auth-mechanisms",
        "PLAIN,LOGIN,XOAUTH2,OAUTHBEARER",
        "--oauth-token-file",
        str(token_file),
        "--require-auth",
    )
    oauth_server = MailServer("sink", sink.host, sink.port, sink.cert_path, None, None, sink)
    password_env = fx.env(fx.mail_home(password_server))
    oauth_env = fx.env(_oauth_home(fx, oauth_server))
    argv = [*jcsh_command(), "testmail", "--to", TO]
    for env, server, who in ((password_env, password_server, "password"), (oauth_env, oauth_server, "oauth")):
        start = server.mark()
        check_jcsh(argv, env)
        server.expect(start, 1, f"jcsh testmail ({who})")
    oauth = Side("jcsh (OAuth, token cached)", _delivered(oauth_server, timed_process(argv, env=oauth_env), 1, "oauth"))
    password = Side("jcsh (password)", _delivered(password_server, timed_process(argv, env=password_env), 1, "pw"))
    alternate([oauth, password], fx.settings.runs(9), warmup=1)
    return [
        ratio_row(
            TESTMAIL_OAUTH_TITLE,
            oauth,
            password,
            OAUTH_LIMIT,
            note="one message, STARTTLS + AUTH XOAUTH2 with the cached token vs AUTH LOGIN with a password, "
            "the same sink build, whole process",
        )
    ]


TESTMAIL_OAUTH_TITLE = "`jcsh testmail` (OAuth 2.0, token cached)"
TESTMAIL_TITLE = "`jcsh testmail` (STARTTLS)"
TESTMAIL_AUTH_TITLE = "`jcsh testmail` (STARTTLS + AUTH)"

CASES = [
    Case("testmail", TESTMAIL_TITLE, (("swaks", f"<= {TESTMAIL_LIMIT}x"), ("smtplib script", "report")), testmail),
    Case(
        "testmail-auth",
        TESTMAIL_AUTH_TITLE,
        (("swaks", f"<= {TESTMAIL_LIMIT}x"), ("smtplib script", "report")),
        testmail_auth,
    ),
    Case("testmail-oauth", TESTMAIL_OAUTH_TITLE, (("jcsh (password)", f"<= {OAUTH_LIMIT}x"),), testmail_oauth),
    Case("batch", f"{BATCH:,} messages, one connection", (("smtplib loop", f"<= {BATCH_LIMIT}x"),), batch),
]
