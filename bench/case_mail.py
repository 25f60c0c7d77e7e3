"""Mail cases: `jcsh testmail` against swaks and smtplib; 1,000 messages through one connection."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.fixtures import FROM, TO, Fixtures
from bench.harness import (
    Case,
    CaseError,
    Row,
    Side,
    alternate,
    check_jcsh,
    find_peer,
    jcsh_command,
    ratio_row,
    timed_process,
)

__all__ = ["CASES"]

TESTMAIL_LIMIT = 1.5  # issue 4: one message within 1.5x swaks
BATCH_LIMIT = 1.2  # issue 4: the batch within 1.2x raw smtplib
BATCH = 1000

# The plain-Python sides do what jcsh does: STARTTLS with a verifying context that trusts the
# sink's certificate, a message with Date and Message-ID.
SMTPLIB_ONE = f"""\
import smtplib, ssl, sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
msg = EmailMessage()
msg["From"], msg["To"], msg["Subject"] = {FROM!r}, {TO!r}, "smtplib test mail"
msg["Date"], msg["Message-ID"] = formatdate(localtime=True), make_msgid(domain="example.test")
msg.set_content("A test mail sent by the smtplib side of the jcsh benchmark.")
with smtplib.SMTP(host, port, timeout=30) as smtp:
    smtp.starttls(context=ssl.create_default_context(cafile=cafile))
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


def _delivered(fx: Fixtures, run: Callable[[], float], count: int, who: str) -> Callable[[], float]:
    """Time run() and check the sink got exactly `count` more messages."""

    def action() -> float:
        sink = fx.sink
        fx.drain()
        elapsed = run()
        try:
            sink.wait_for(count, timeout=10)
        except TimeoutError as e:
            raise CaseError(f"{who}: {e}") from None
        if len(sink.messages) != count or sink.messages[-1].tls_version is None:
            raise CaseError(f"{who}: the sink got {len(sink.messages)} message(s), not {count} over TLS")
        return elapsed

    return action


def testmail(fx: Fixtures) -> list[Row]:
    sink, home = fx.sink, fx.mail_home
    env = fx.env(home)
    cafile = str(sink.cert_path)
    argv = [*jcsh_command(), "testmail", "--to", TO]
    fx.drain()
    check_jcsh(argv, env)
    jcsh = Side("jcsh", _delivered(fx, timed_process(argv, env=env), 1, "jcsh testmail"))
    script = fx.scratch / "smtplib_one.py"
    script.write_text(SMTPLIB_ONE)
    smtplib_argv = [sys.executable, str(script), sink.host, str(sink.port), cafile]
    smtplib = Side("smtplib script", _delivered(fx, timed_process(smtplib_argv, env=env), 1, "smtplib"))
    exe = find_peer("swaks", fx.settings)
    swaks = Side("swaks", None)
    if exe:
        swaks_argv = [
            exe,
            "--silent",
            "2",
            "--to",
            TO,
            "--from",
            FROM,
            "--server",
            sink.host,
            "--port",
            str(sink.port),
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            cafile,
            "--header",
            "Subject: swaks test mail",
        ]
        swaks = Side("swaks", _delivered(fx, timed_process(swaks_argv, env=env), 1, "swaks"))
    alternate([jcsh, swaks, smtplib], fx.settings.runs(9), warmup=1)
    title = "`jcsh testmail` (STARTTLS)"
    return [
        ratio_row(
            title,
            jcsh,
            swaks,
            TESTMAIL_LIMIT,
            note="one message, STARTTLS on loopback, certificate verified by every side, whole process",
        ),
        ratio_row(title, jcsh, smtplib, None),
    ]


def batch(fx: Fixtures) -> list[Row]:
    sink, home = fx.sink, fx.mail_home
    env = fx.env(home)
    count = 100 if fx.settings.quick else BATCH
    jcs = fx.scratch / "batch.jcs"
    jcs.write_text(JCSH_LOOP)
    argv = [*jcsh_command(), "run", str(jcs), str(count)]
    fx.drain()
    check_jcsh([*jcsh_command(), "run", str(jcs), "2"], env)
    jcsh = Side("jcsh", _delivered(fx, timed_process(argv, env=env), count, "jcsh mail.session()"))
    script = fx.scratch / "smtplib_loop.py"
    script.write_text(SMTPLIB_LOOP)
    raw_argv = [sys.executable, str(script), sink.host, str(sink.port), str(sink.cert_path), str(count)]
    raw = Side("smtplib loop", _delivered(fx, timed_process(raw_argv, env=env), count, "smtplib loop"))
    alternate([jcsh, raw], fx.settings.runs(5), warmup=1)
    fx.drain()
    return [
        ratio_row(
            f"{count:,} messages, one connection",
            jcsh,
            raw,
            BATCH_LIMIT,
            note="`jcsh run` of a script looping over mail.session().send vs a python script "
            "looping over smtplib send_message; whole process, STARTTLS, verified",
        )
    ]


CASES = [
    Case(
        "testmail",
        "`jcsh testmail` (STARTTLS)",
        (("swaks", f"<= {TESTMAIL_LIMIT}x"), ("smtplib script", "report")),
        testmail,
    ),
    Case("batch", f"{BATCH:,} messages, one connection", (("smtplib loop", f"<= {BATCH_LIMIT}x"),), batch),
]
