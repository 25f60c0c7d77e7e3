"""Every saved script in examples/ runs as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from jcsh.runtime.registry import Registry
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import jcsh_process

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_example_is_covered() -> None:
    tested = {"configure_gmail.jcs", "send_testmail.jcs", "registry_tree.jcs", "tls_protocols.jcs"}
    assert {p.name for p in EXAMPLES.glob("*.jcs")} == tested


def test_every_example_says_which_permission_it_needs() -> None:
    for example in EXAMPLES.glob("*.jcs"):
        text = example.read_text()
        header = "".join(line for line in text.splitlines(True) if line.startswith("#"))
        changes = "/configuration/mail" in text or "/configuration/jcs" in text or "credentials.add" in text
        assert ("Needs --allow-config" in header) == changes, example.name
        assert ("jcsh --allow-config run" in header) == changes, example.name


@pytest.mark.timeout(30)
def test_configure_gmail(home: Path) -> None:
    refused = jcsh_process(home, "run", str(EXAMPLES / "configure_gmail.jcs"), "ops@example.test")
    assert refused.code == 77 and refused.out == ""
    assert refused.err.strip().endswith(
        "registry.set('/configuration/mail/smtp.gmail.com/JavaMail/mail.smtp.starttls.required') needs --allow-config"
    )
    ran = jcsh_process(home, "--allow-config", "run", str(EXAMPLES / "configure_gmail.jcs"), "ops@example.test")
    assert ran.code == 0, ran.err
    lines = dict(line.split(None, 1) for line in ran.out.splitlines())
    assert lines["security"].split() == [
        "STARTTLSRequired",
        "/configuration/mail/smtp.gmail.com/JavaMail/mail.smtp.starttls.required",
    ]
    assert lines["port"].split() == ["587", "default"]
    assert lines["server"].split()[0] == "smtp.gmail.com"


@pytest.mark.timeout(30)
def test_send_testmail(home: Path, registry: Registry) -> None:
    with Sink(SinkConfig(port=0)) as sink:
        registry.set("/configuration/mail/Server", "127.0.0.1")
        registry.set("/configuration/mail/Port", str(sink.port))
        registry.set("/configuration/mail/Transport", "smtp")
        registry.set("/configuration/mail/From", "jobs@example.test")
        ran = jcsh_process(home, "run", str(EXAMPLES / "send_testmail.jcs"), "ops@example.test")
        assert ran.code == 0, ran.err
        assert "status    sent" in ran.out and "accepted  ops@example.test" in ran.out
        [message] = sink.wait_for(1)
        assert message.rcpt_tos == ["ops@example.test"]
    usage = jcsh_process(home, "run", str(EXAMPLES / "send_testmail.jcs"))
    assert usage.code == 2 and "usage:" in usage.err


@pytest.mark.timeout(30)
def test_send_testmail_reports_the_failed_step(home: Path, registry: Registry) -> None:
    with Sink(SinkConfig(port=0, fail={"rcpt": 550})) as sink:
        registry.set("/configuration/mail/Server", "127.0.0.1")
        registry.set("/configuration/mail/Port", str(sink.port))
        registry.set("/configuration/mail/Transport", "smtp")
        registry.set("/configuration/mail/From", "jobs@example.test")
        ran = jcsh_process(home, "run", str(EXAMPLES / "send_testmail.jcs"), "ops@example.test")
    assert ran.code == 1
    assert "refused   ops@example.test: 550" in ran.out
    assert sink.messages == []


@pytest.mark.timeout(30)
def test_registry_tree(home: Path, registry: Registry) -> None:
    registry.set("/configuration/mail/Server", "smtp.example.test")
    ran = jcsh_process(home, "run", str(EXAMPLES / "registry_tree.jcs"), "/configuration")
    assert ran.out.splitlines() == ["/configuration", "  mail", "    Server = smtp.example.test"]
    missing = jcsh_process(home, "run", str(EXAMPLES / "registry_tree.jcs"), "/nowhere")
    assert missing.code == 1 and missing.out == ""
    assert missing.err == "no registry entry at /nowhere (see `jcsh registry ls /`)\n"


@pytest.mark.timeout(30)
def test_tls_protocols_matches_the_command(home: Path) -> None:
    script = jcsh_process(home, "run", str(EXAMPLES / "tls_protocols.jcs"))
    command = jcsh_process(home, "tls", "protocols")
    assert script.code == command.code == 0
    assert script.out == command.out and script.out.startswith("TLSv1.3 TLSv1.2")
