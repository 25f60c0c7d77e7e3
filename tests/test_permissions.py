"""Script permissions: the attacks the issue names, against listeners this test owns, and the grants.

A refused call must leave no trace: no connection reaches the listener, the registry and the
credentials are as they were, and the script ends with exit 77 and one line naming the flag.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.credentials import SMTP, X509, CredentialStore
from jcsh.runtime.registry import Registry
from jcsh.runtime.sandbox.grants import Answer, Grants, Need, NetTarget, Permission, Permissions, parse_allow_net
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import jcsh
from tests.support.mailconf import PASSWORD, add_login, configure_mail


class Listener:
    """A port the attacker controls: it must never see a connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def connected(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    opened = Listener()
    yield opened
    opened.close()


def _state(registry: Registry, credentials: CredentialStore) -> tuple[str, list]:
    return registry.export_json("/"), credentials.list()


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# --- the attacks --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_port_and_plain_text_exfiltration_is_refused(
    home: Path, registry: Registry, credentials: CredentialStore, listener: Listener
) -> None:
    configure_mail(registry, 2525, ConnectionSecurity="STARTTLSRequired")
    add_login(credentials, "127.0.0.1")
    before = _state(registry, credentials)
    attack = (
        f"registry.set('/configuration/mail/Port', '{listener.port}')\n"
        "registry.set('/configuration/mail/ConnectionSecurity', 'None')\n"
        "mail.send('victim@example.test', 'hello', 'world')\n"
    )
    ran = jcsh(home, "-c", attack)
    assert ran.code == 77 and ran.out == ""
    assert _one_line(ran.err) == (
        "File \"<string>\", line 1: registry.set('/configuration/mail/Port') needs --allow-config"
    )
    assert not listener.connected()
    assert _state(registry, credentials) == before


@pytest.mark.timeout(30)
def test_planted_ca_exfiltration_is_refused_step_by_step(
    home: Path, registry: Registry, credentials: CredentialStore, other_ca, listener: Listener
) -> None:
    # The attacker catches each refusal and carries on; every step is refused all the same, and
    # the mail finally goes to the configured server, never to the attacker's TLS listener.
    with Sink(SinkConfig(port=0)) as legit:
        configure_mail(registry, legit.port)
        add_login(credentials, "127.0.0.1")
        credentials.add_protocol(X509)
        before = _state(registry, credentials)
        steps = [
            f"credentials.add('{X509}', 'attacker-root', certificate={other_ca.root_pem.decode()!r})",
            "registry.set('/configuration/jcs/TLS/VerifyServerCertificateTrust', 'DontVerify')",
            f"registry.set('/configuration/mail/Port', '{listener.port}')",
            "registry.set('/configuration/mail/ConnectionSecurity', 'TLS')",
            "mail.configure('ops@example.test', server='localhost')",
            "credentials.remove('smtp', '127.0.0.1', 'default')",
            "registry.delete('/configuration', recursive=True)",
            "mail.send('victim@example.test', 'hi', 'there', server='localhost')",
            f"tls.probe('127.0.0.1:{listener.port}')",
        ]
        attack = "".join(
            f"try:\n    {step}\nexcept JcshError as e:\n    print(e.kind, e.exit_code, e)\n" for step in steps
        )
        ran = jcsh(home, "-c", attack + "print(mail.send('ops@example.test', 'to the right place', 'x').status)")
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[:-1] == [
        f"permission 77 credentials.add('{X509}', 'attacker-root', 'default') needs --allow-config",
        "permission 77 registry.set('/configuration/jcs/TLS/VerifyServerCertificateTrust') needs --allow-config",
        "permission 77 registry.set('/configuration/mail/Port') needs --allow-config",
        "permission 77 registry.set('/configuration/mail/ConnectionSecurity') needs --allow-config",
        "permission 77 mail.configure('ops@example.test') needs --allow-config",
        "permission 77 credentials.remove('smtp', '127.0.0.1', 'default') needs --allow-config",
        "permission 77 registry.delete('/configuration') needs --allow-config",
        f"permission 77 mail.send(server='localhost') needs --allow-net=localhost:{legit.port}",
        f"permission 77 tls.probe('127.0.0.1:{listener.port}') needs --allow-net=127.0.0.1:{listener.port}",
    ]
    assert lines[-1] == "sent"
    assert [m.subject for m in legit.messages] == ["to the right place"]
    assert not listener.connected()
    assert _state(registry, credentials) == before


@pytest.mark.timeout(30)
def test_with_allow_config_a_plain_text_listener_gets_no_password(
    home: Path, registry: Registry, credentials: CredentialStore
) -> None:
    with Sink(SinkConfig(port=0, auth={"bob": PASSWORD})) as plain:
        configure_mail(registry, 2525)
        add_login(credentials, "127.0.0.1")
        attack = (
            f"registry.set('/configuration/mail/Port', '{plain.port}')\n"
            "registry.set('/configuration/mail/ConnectionSecurity', 'None')\n"
            "mail.send('victim@example.test', 'hello', 'world')\n"
        )
        ran = jcsh(home, "--allow-config", "-c", attack)
    assert ran.code == 3 and "over an unencrypted connection" in ran.err
    assert not any("AUTH" in event for event in plain.events)


@pytest.mark.timeout(60)
def test_a_port_scan_stops_at_the_first_port_outside_the_grant(
    home: Path, registry: Registry, listener: Listener
) -> None:
    # A STARTTLS sink: a probe that completes no handshake is a failure (issue 12), not a result.
    with Sink(SinkConfig(port=0, mode="starttls")) as configured:
        configure_mail(registry, configured.port)
        ports = [configured.port, listener.port, *(p for p in range(40000, 40200) if p != listener.port)][:140]
        scan = f"for port in {ports}:\n    r = tls.probe('127.0.0.1', port, timeout=3)\n"
        scan += "    print(port, r.smtp.banner)\n"
        ran = jcsh(home, "-c", scan)
    assert ran.code == 77
    assert ran.out.splitlines() == [f"{configured.port} 220 jcsh-sink jcsh sink ESMTP"]  # the configured port
    assert _one_line(ran.err).endswith(
        f"tls.probe('127.0.0.1:{listener.port}') needs --allow-net=127.0.0.1:{listener.port}"
    )
    assert not listener.connected()


@pytest.mark.timeout(60)
def test_allow_net_lets_one_target_through(home: Path, registry: Registry, listener: Listener) -> None:
    with Sink(SinkConfig(port=0, mode="starttls")) as granted:
        configure_mail(registry, 2525, server="smtp.example.test")
        probe = (
            f"print(tls.probe('127.0.0.1:{granted.port}', timeout=3).smtp.banner)\n"
            f"tls.probe('127.0.0.1:{listener.port}', timeout=3)\n"
        )
        ran = jcsh(home, f"--allow-net=127.0.0.1:{granted.port}", "-c", probe)
        sent = jcsh(
            home,
            f"--allow-net=localhost:{granted.port},[::1]",
            "-c",
            "print(mail.send('a@example.test', 's', 'b', server='127.0.0.1').status)",
        )
    assert ran.out == "220 jcsh-sink jcsh sink ESMTP\n"
    assert ran.code == 77 and f"needs --allow-net=127.0.0.1:{listener.port}" in ran.err
    assert not listener.connected()
    # Hosts are compared as written: localhost is not 127.0.0.1 (no DNS lookup decides a grant).
    assert sent.code == 77 and "mail.send(server='127.0.0.1') needs --allow-net=127.0.0.1:2525" in sent.err


# --- what the defaults allow, evaluated at each call -----------------------------------------------


@pytest.mark.timeout(60)
def test_the_configured_server_is_allowed_as_it_is_at_each_call(home: Path, registry: Registry) -> None:
    with Sink(SinkConfig(port=0, mode="starttls")) as first, Sink(SinkConfig(port=0, mode="starttls")) as second:
        configure_mail(registry, first.port, server="localhost")
        script = (
            "print(mail.send('a@example.test', 'one', 'x').status)\n"
            f"print(tls.probe('LOCALHOST:{first.port}', timeout=3).port)\n"  # the configured host, in any case
            f"registry.set('/configuration/mail/Port', '{second.port}')\n"
            "print(mail.send('a@example.test', 'two', 'x').status)\n"  # the new configuration, at once
            f"tls.probe('127.0.0.1:{second.port}', timeout=3)\n"
        )
        ran = jcsh(home, "--allow-config", "-c", script)
    assert ran.out.splitlines() == ["sent", str(first.port), "sent"], ran.err
    assert [m.subject for m in first.messages] == ["one"] and [m.subject for m in second.messages] == ["two"]
    assert ran.code == 77 and f"tls.probe('127.0.0.1:{second.port}') needs --allow-net" in ran.err


@pytest.mark.timeout(30)
def test_probes_of_the_configured_host_may_use_the_mail_ports(home: Path, registry: Registry) -> None:
    from jcsh.runtime.sandbox.host import Host

    configure_mail(registry, 2526, server="[::1]")
    credentials = CredentialStore(registry, home)
    host = Host(registry, credentials, home)
    for port in (25, 465, 587, 2526):  # granted: the refusal that follows is the network's
        with pytest.raises(Exception) as raised:
            host.handle("tls.probe", {"host": f"[0:0::1]:{port}", "timeout": 0.5})
        assert getattr(raised.value, "kind", None) != "permission", raised.value
    with pytest.raises(Exception) as refused:
        host.handle("tls.probe", {"host": "[::1]:2525"})
    assert getattr(refused.value, "kind", None) == "permission"


@pytest.mark.timeout(30)
def test_mail_test_and_sessions_raise_when_refused(home: Path, registry: Registry, listener: Listener) -> None:
    configure_mail(registry, 2525)
    script = (
        "for call in (lambda: mail.test('a@example.test', server='localhost'),\n"
        "             lambda: mail.session(server='localhost')):\n"
        "    try:\n        call()\n    except JcshError as e:\n        print(e.kind, e.exit_code, e)\n"
    )
    ran = jcsh(home, "-c", script)
    assert ran.code == 0, ran.err
    assert ran.out.splitlines() == [
        "permission 77 mail.test(server='localhost') needs --allow-net=localhost:2525",
        "permission 77 mail.session(server='localhost') needs --allow-net=localhost:2525",
    ]


def test_the_admins_own_commands_need_no_flags(home: Path) -> None:
    assert jcsh(home, "registry", "set", "/configuration/mail/Port", "2525").code == 0
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 0
    assert jcsh(home, "registry", "rm", "-r", "/configuration").code == 0
    warned = jcsh(home, "--allow-config", "registry", "ls", "/")
    assert warned.code == 0 and "--allow-config grants scripts only" in warned.err


def test_standard_input_never_asks(home: Path) -> None:
    ran = jcsh(home, stdin="registry.set('/configuration/jcs/TLS/VerifyServerCertificateTrust', 'DontVerify')\n")
    assert ran.code == 77 and "needs --allow-config" in ran.err and "allow this" not in ran.err + ran.out
    assert jcsh(home, "--allow-config", stdin="registry.set('/configuration/jcs/X', '1')\n").code == 0


# --- the flags and the model --------------------------------------------------------------------


def test_allow_net_values(home: Path) -> None:
    assert parse_allow_net("*") is None
    assert parse_allow_net("smtp.example.test,[::1]:25,10.0.0.1:587") == (
        NetTarget("smtp.example.test", None),
        NetTarget("::1", 25),
        NetTarget("10.0.0.1", 587),
    )
    for bad in ("a,,b", "host:0", "host:x", "[::1]x", "a b"):
        ran = jcsh(home, f"--allow-net={bad}", "-c", "1")
        assert ran.code == 2 and ran.err.startswith("jcsh: --allow-net"), (bad, ran.err)
    # A bare --allow-net before the command is "anywhere", not the command's value.
    assert jcsh(home, "--allow-net", "run", "-", stdin="print(1)").out == "1\n"


def test_answers_once_always_and_no() -> None:
    need = Need(Permission.CONFIG, "registry.set('/configuration/mail/Port')", "change /configuration/mail/Port")
    other = need._replace(call="registry.set('/configuration/mail/From')")
    answers: list[Answer] = []
    permissions = Permissions(Grants(), ask=lambda n: answers.pop(0))
    answers[:] = [Answer.ONCE]
    permissions.require(need)
    permissions.require(need)  # once: for the rest of the statement, without asking again
    answers[:] = [Answer.NO]
    with pytest.raises(Exception, match=r"needs --allow-config"):
        permissions.require(other)
    permissions.start_statement()
    answers[:] = [Answer.ALWAYS]
    permissions.require(need)
    permissions.require(other)  # always: the flag itself, for the session
    assert permissions.grants.flags() == ["--allow-config"] and answers == []
    assert need.question == (
        "allow this statement to change /configuration/mail/Port? [y]es once, [a]lways this session, [N]o"
    )


def test_credential_names_refuse_controls_and_bidi(home: Path) -> None:
    assert jcsh(home, "credential", "protocol", "add", SMTP).code == 0
    for field, value in (
        ("--endpoint", "smtp.example.test\u202e"),
        ("--endpoint", "smtp\x85.example.test"),
        ("--virtual-user", "de\u2066fault"),
        ("--real-user", "bob\u200b"),
    ):
        args = {"--endpoint": "smtp.example.test", "--virtual-user": "default", "--real-user": "bob"}
        args[field] = value
        flat = [w for pair in args.items() for w in pair]
        ran = jcsh(home, "credential", "add", "--protocol", SMTP, *flat, "--password-stdin", stdin="pw\n")
        assert ran.code == 2 and "contains a control character" in ran.err, (field, ran.err)
    ran = jcsh(home, "credential", "protocol", "add", "smtp\u202ex")
    assert ran.code == 2 and "U+202E" in ran.err
    assert jcsh(home, "--json", "credential", "ls").json["credentials"] == []
