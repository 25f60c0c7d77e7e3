"""A hostile server cannot hang, flood, confuse jcsh or write to the terminal: testmail, tls probe, scripts.

Each case runs jcsh as a process against tests/support/hostile.py and asserts the exit code, the
message, the wall time (the step deadline plus 2 s), the peak memory (under 200 MB) and, for
escape sequences, that none reaches stdout or stderr raw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jcsh.runtime.registry import Registry
from tests.support.cli import JCSH
from tests.support.hostile import ESCAPES, Hostile, Measured, measured, raw_controls
from tests.support.mailconf import configure_mail, trust

TO = "rcpt@example.test"
STEP = 0.5  # --timeout of every command case: each step may take half a second
REQUIRED = {"mail.smtp.starttls.required": "true"}
MB = 200


def _checked(ran: Measured, code: int, fragments: tuple[str, ...], limit: float) -> None:
    assert ran.code == code, ran.text
    for fragment in fragments:
        assert fragment in ran.text, (fragment, ran.text)
    assert ran.seconds < limit, f"took {ran.seconds:.1f} s: {ran.text}"
    assert ran.peak_mb < MB, f"peak {ran.peak_mb:.0f} MB"
    assert raw_controls(ran.out + ran.err) == [], ran.text


# fault -> exit code, what the message says, extra mail settings. Shared by testmail and scripts.
SEND_CASES: dict[str, tuple[int, tuple[str, ...], dict[str, str]]] = {
    "greeting-flood": (3, ("sent a reply longer than 64 KiB during the greeting (protocol error)",), {}),
    "drip-greeting": (4, ("timed out during the greeting",), {}),
    "drip-ehlo": (4, ("timed out during EHLO",), {}),
    "drip-final": (4, ("timed out during the message transfer", "may still deliver it"), {}),
    "stall-final": (4, ("timed out during the message transfer", "may still deliver it"), {}),
    "long-line": (3, ("sent a reply line longer than 8 KiB during EHLO (protocol error)",), {}),
    "many-lines": (3, ("sent a reply longer than 64 KiB during EHLO (protocol error)",), {}),
    "code-25": (3, ("sent a malformed reply during EHLO (protocol error): '25 ok'",), {}),
    "code-abc": (3, ("sent a malformed reply during EHLO (protocol error): 'abc ok'",), {}),
    "code-2200": (3, ("sent a malformed reply during EHLO (protocol error): '2200 x'",), {}),
    "mixed-codes": (3, ("a continuation line with another code): '251 STARTTLS'",), {}),
    "early-reply": (3, ("answered before it was asked (before EHLO; protocol error): '250 2.0.0 nobody asked'",), {}),
    "greeting-421": (75, ("421 4.3.2 hostile.test too busy",), {}),
    "greeting-554": (1, ("554 5.7.1 hostile.test does not want you",), {}),
    "starttls-454": (3, ("refused STARTTLS (454 4.7.0 TLS not available)",), REQUIRED),
    "no-starttls": (3, ("does not offer STARTTLS",), REQUIRED),
    "plain-after-starttls": (
        3,
        ("agreed to STARTTLS (220 2.0.0 go ahead) and then spoke plain text: '250 hostile.test speaks plain text",),
        REQUIRED,
    ),
    "drip-handshake": (4, ("timed out during the TLS handshake",), REQUIRED),
    "not-smtp": (3, ("is not an SMTP server (protocol error): 'HTTP/1.0 400 Bad Request'",), {}),
    "escape-banner": (1, ("554 5.7.1",), {}),
    "escape-starttls": (3, ("refused STARTTLS (454 4.7.0",), REQUIRED),
    "escape-refusal": (1, ("550 5.1.1",), {}),
}


@pytest.fixture
def tls_cert(pki) -> tuple[Path, Path]:
    leaf = pki.issue()
    return leaf.chain_path, leaf.key_path


def _server(fault: str, pki, **kwargs: Any) -> Hostile:
    if fault in ("escape-ehlo", "escape-cert"):
        leaf = pki.issue(name=ESCAPES if fault == "escape-cert" else None)
        kwargs["cert"] = (leaf.chain_path, leaf.key_path)
    return Hostile(fault, **kwargs)


# -- testmail ------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("fault", sorted(SEND_CASES))
def test_testmail_against_a_hostile_server(home: Path, registry: Registry, pki, fault: str) -> None:
    code, fragments, keys = SEND_CASES[fault]
    with _server(fault, pki) as server:
        configure_mail(registry, server.port, **keys)
        ran = measured([*JCSH, "--home", str(home), "testmail", "--to", TO, "--timeout", str(STEP)])
    _checked(ran, code, fragments, STEP + 2)
    assert "handshake failed" not in ran.text
    assert "Traceback" not in ran.text


@pytest.mark.timeout(20)
def test_testmail_json_keeps_the_server_text_and_names_the_step(home: Path, registry: Registry, pki) -> None:
    with _server("escape-refusal", pki) as server:
        configure_mail(registry, server.port)
        ran = measured([*JCSH, "--home", str(home), "--json", "testmail", "--to", TO, "--timeout", str(STEP)])
    doc = json.loads(ran.out)  # the original text (how JSON writes it is the sanitizer's part of the issue)
    assert ran.code == 1 and doc["step"] == "RCPT TO" and ESCAPES in doc["refused"][TO]
    assert ESCAPES in doc["error"]["message"] and doc["error"]["kind"] == "refused"


@pytest.mark.timeout(20)
def test_testmail_transcript_of_escaped_ehlo_lines(home: Path, registry: Registry, credentials, pki) -> None:
    trust(credentials, pki.root_pem)
    with _server("escape-ehlo", pki) as server:
        configure_mail(registry, server.port, **REQUIRED)
        ran = measured([*JCSH, "--home", str(home), "testmail", "--to", TO, "--transcript", "--timeout", str(STEP)])
    _checked(ran, 0, ("<- 250-hostile.test", "status:     sent"), STEP + 2)


@pytest.mark.timeout(20)
def test_testmail_certificate_subject_with_escapes(home: Path, registry: Registry, pki) -> None:
    with _server("escape-cert", pki) as server:  # the test CA is not trusted here
        configure_mail(registry, server.port, **REQUIRED)
        ran = measured([*JCSH, "--home", str(home), "testmail", "--to", TO, "--timeout", str(STEP)])
    _checked(ran, 3, ("is not trusted", "certificate not trusted", "gnp.exe"), STEP + 2)


# -- tls probe -----------------------------------------------------------------------------------

PROBE_CASES: dict[str, tuple[int, tuple[str, ...]]] = {
    "greeting-flood": (3, ("sent a reply longer than 64 KiB during the greeting (protocol error)",)),
    "drip-greeting": (4, ("timed out during the greeting",)),
    "drip-ehlo": (4, ("timed out during EHLO",)),
    "drip-handshake": (4, ("timed out during the TLS handshake",)),
    "long-line": (3, ("sent a reply line longer than 8 KiB during EHLO (protocol error)",)),
    "many-lines": (3, ("sent a reply longer than 64 KiB during EHLO (protocol error)",)),
    "code-25": (3, ("sent a malformed reply during EHLO (protocol error): '25 ok'",)),
    "code-abc": (3, ("'abc ok'",)),
    "code-2200": (3, ("'2200 x'",)),
    "mixed-codes": (3, ("a continuation line with another code",)),
    "early-reply": (3, ("answered before it was asked (before EHLO",)),
    "greeting-421": (75, ("refused the session: 421 4.3.2 hostile.test too busy",)),
    "greeting-554": (3, ("refused the session: 554 5.7.1",)),
    "starttls-454": (3, ("refused STARTTLS (454 4.7.0 TLS not available)",)),
    "no-starttls": (3, ("does not offer STARTTLS",)),
    "plain-after-starttls": (3, ("agreed to STARTTLS (220 2.0.0 go ahead) and then spoke plain text",)),
    "not-smtp": (3, ("is not an SMTP server (protocol error): 'HTTP/1.0 400 Bad Request'",)),
    "escape-banner": (3, ("refused the session: 554 5.7.1",)),
    "escape-starttls": (3, ("refused STARTTLS (454 4.7.0",)),
    "escape-ehlo": (0, ("after tls", "X-")),
    "escape-cert": (0, ("gnp.exe", "NOT trusted")),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("fault", sorted(PROBE_CASES))
def test_probe_against_a_hostile_server(home: Path, pki, fault: str) -> None:
    code, fragments = PROBE_CASES[fault]
    with _server(fault, pki) as server:
        ran = measured([*JCSH, "--home", str(home), "tls", "probe", f"127.0.0.1:{server.port}", "--timeout", str(STEP)])
    _checked(ran, code, fragments, STEP + 2)


# -- scripts -------------------------------------------------------------------------------------

SCRIPT = """
classes = {"ConnectFailed": ConnectFailed, "LimitHit": LimitHit, "TempFailure": TempFailure, "JobFailed": JobFailed}
try:
    mail.send("rcpt@example.test", "hostile", "body")
    jcsOut.println("sent")
except JcshError as e:
    caught = [name for name, cls in classes.items() if isinstance(e, cls)]
    jcsOut.println("caught " + " ".join(caught) + " " + e.kind + " " + str(e.exit_code))
    exit(e.exit_code)
"""
CLASSES = {1: "JobFailed", 3: "ConnectFailed", 4: "LimitHit", 75: "TempFailure"}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("fault", sorted(SEND_CASES))
def test_script_mail_send_against_a_hostile_server(home: Path, registry: Registry, pki, fault: str) -> None:
    code, _, keys = SEND_CASES[fault]
    # The call's own deadline (0.5 s a step) is shorter than the script's: a catchable error.
    timeouts = {"mail.smtp.connectiontimeout": "500", "mail.smtp.timeout": "500", "mail.smtp.writetimeout": "500"}
    with _server(fault, pki) as server:
        configure_mail(registry, server.port, **keys, **timeouts)
        ran = measured([*JCSH, "--home", str(home), "--timeout", "3", "-c", SCRIPT])
    _checked(ran, code, (f"caught {CLASSES[code]} ",), 3 + 1.5)
    assert f" {code}\n" in ran.out.decode()


SWALLOW = (
    "while True:\n    try:\n        mail.send('rcpt@example.test', 's', 'b')\n    except BaseException:\n        pass\n"
)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("fault", "script"),
    [
        ("drip-ehlo", SCRIPT),  # caught
        ("stall-final", SWALLOW),  # every exception swallowed, in a loop
        ("drip-handshake", SWALLOW),
        ("drip-greeting", "mail.send('rcpt@example.test', 's', 'b')"),  # uncaught
    ],
)
def test_script_time_limit_bounds_a_hanging_server(
    home: Path, registry: Registry, pki, fault: str, script: str
) -> None:
    # The network timeouts are 30 s (the defaults): the script's 1 s limit ends the call, and the
    # script, whether it catches the error or swallows every exception in a loop.
    _, _, keys = SEND_CASES[fault]
    with _server(fault, pki) as server:
        configure_mail(registry, server.port, **keys)
        ran = measured([*JCSH, "--home", str(home), "--timeout", "1", "-c", script])
    _checked(ran, 4, ("timed out after 1 s",), 1 + 1.5)


@pytest.mark.timeout(20)
def test_script_tls_probe_is_bounded_by_the_script_limit(home: Path, pki) -> None:
    with _server("drip-handshake", pki) as server:
        target = f"127.0.0.1:{server.port}"
        ran = measured(
            [*JCSH, "--home", str(home), "--timeout", "1", f"--allow-net={target}", "-c", f"tls.probe('{target}')"]
        )
    _checked(ran, 4, ("timed out after 1 s",), 1 + 1.5)
