"""The preloaded objects end to end: a script's requests reach the real stores and servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.errors import UsageError
from jcsh.runtime.registry import Registry
from jcsh.runtime.sandbox.client import Session
from jcsh.runtime.sandbox.grants import Grants, Permissions
from jcsh.runtime.sandbox.host import Host
from jcsh.runtime.sink import Sink, SinkConfig
from tests.sandbox.helpers import run
from tests.support.mailconf import PASSWORD, add_login, configure_mail


@pytest.fixture
def host(registry: Registry, credentials: CredentialStore, home: Path) -> Host:
    # Every permission (--allow-config --allow-net): these tests are about the objects; what a
    # script may do without them is tested in tests/test_permissions.py.
    everything = Permissions(Grants.of(allow_config=True, allow_net="*"))
    return Host(registry, credentials, home, args=["one", "two"], permissions=everything)


@pytest.fixture
def live(host: Host) -> Iterator[Session]:
    session = Session(host, timeout=20)
    session.start()
    yield session
    session.close()


def _ok(session: Session, code: str) -> str:
    ran = run(session, code)
    assert ran.result.ok, ran.text
    return ran.out


def test_registry_round_trip(live: Session, registry: Registry) -> None:
    out = _ok(
        live,
        """
registry.set('/configuration/mail/Server', 'smtp.example.test')
registry.set('/configuration/mail/SendPartial', True)
registry.set('/configuration/mail/Port', 587)
print(registry.get('/configuration/mail/Server'), registry.get('/nope', 'fallback'), registry.exists('/configuration'))
for child in registry.list('/configuration/mail'):
    print(child.name, child.value, child['has_children'])
for path, value in registry.walk('/configuration'):
    print(path, value)
print(registry.delete('/configuration/mail/Port'))
try:
    registry.get('/configuration')
except JcshError as e:
    print('error:', e.kind, e.exit_code)
try:
    registry.set('relative', 'x')
except JcshError as e:
    print('error:', e.kind, e.exit_code, e)
""",
    )
    assert out.splitlines() == [
        "smtp.example.test fallback True",
        "Port 587 False",
        "SendPartial true False",
        "Server smtp.example.test False",
        "/configuration None",
        "/configuration/mail None",
        "/configuration/mail/Port 587",
        "/configuration/mail/SendPartial true",
        "/configuration/mail/Server smtp.example.test",
        "1",
        "error: not-found 1",
        "error: usage 2 registry path must be absolute (start with '/'): 'relative'",
    ]
    assert registry.get("/configuration/mail/SendPartial") == "true"
    assert registry.value("/configuration/mail/Port") is None


def test_uncaught_request_error_is_a_short_traceback(live: Session) -> None:
    ran = run(live, "x = 1\nregistry.get('/missing')")
    assert ran.result.exit_code == 1
    assert ran.result.error == (
        'Traceback (most recent call last):\n  File "<stdin>", line 2, in <module>\n'
        "    registry.get('/missing')\nNotFound: no registry entry at /missing"
    )


def test_credentials_never_give_a_secret_back(live: Session, credentials: CredentialStore) -> None:
    ran = run(
        live,
        f"""
credentials.add_protocol('smtp')
c = credentials.add('smtp', 'smtp.example.test', real_user='bob', secret={PASSWORD!r})
print(c)
print(credentials.list())
print(credentials.find('smtp', 'smtp.example.test'))
print(credentials.find('smtp', 'other.example.test'))
print(credentials.protocols())
credentials.remove('smtp', 'smtp.example.test')
print(credentials.list('smtp'))
""",
    )
    assert ran.result.ok, ran.text
    assert PASSWORD not in ran.text
    assert "'has_secret': True" in ran.out and "'real_user': 'bob'" in ran.out
    assert ran.out.splitlines()[3] == "None" and ran.out.splitlines()[-1] == "[]"
    assert credentials.list() == []


def test_output_streams_printf_and_args(live: Session) -> None:
    ran = run(
        live,
        "jcsOut.printf('%s=%d%n', 'n', 3)\njcsErr.println('warn', 1)\njcsOut.print('a', 'b')\n"
        "print(jcsArgs, file=jcsErr)",
    )
    assert ran.result.ok, ran.text
    assert ran.out == "n=3\na b"
    assert ran.err == "warn 1\n['one', 'two']\n"
    ran = run(live, "print(jcsArgs)", args=["x"])
    assert ran.out == "['x']\n"


def test_tls_protocols_and_the_java_shim_agree(live: Session) -> None:
    out = _ok(
        live,
        """
from javax.net.ssl import SSLContext as Ctx
names = tls.protocols()
line = " ".join(Ctx.getDefault().getSupportedSSLParameters().getProtocols())
print(line)
print(line == " ".join(names), 'TLSv1.2' in names, SSLContext is Ctx)
""",
    )
    from jcsh.runtime.tls.protocols import supported_protocols

    assert out.splitlines() == [supported_protocols().line(), "True True True"]


@pytest.mark.timeout(30)
def test_mail_send_session_and_test_mail_reach_a_real_server(
    live: Session, registry: Registry, credentials: CredentialStore
) -> None:
    with Sink(SinkConfig(port=0, auth={"bob": PASSWORD})) as sink:
        configure_mail(registry, sink.port, sender="jcsh@example.test")
        add_login(credentials, "127.0.0.1", allow_plaintext=True)  # a sink without TLS
        ran = run(
            live,
            """
r = mail.send('rcpt@example.test', 'from a script', 'hello', cc=['cc@example.test'], headers={'X-Test': '1'})
print(r.status, r.accepted, r.authenticated_as, r.error)
with mail.session() as s:
    for i in range(3):
        print(s.send('batch@example.test', f'batch {i}', 'x').status)
t = mail.test('t@example.test')
print(t.status)
settings = mail.settings()
print(settings.server.value, settings.port.value, settings.security.value)
""",
        )
        assert ran.result.ok, ran.text
        got = sink.wait_for(5)
    lines = ran.out.splitlines()
    assert lines[0] == "sent ['rcpt@example.test', 'cc@example.test'] bob None"
    assert lines[1:4] == ["sent"] * 3 and lines[4] == "sent"
    assert lines[5] == f"127.0.0.1 {sink.port} None"
    assert [m.subject for m in got[:4]] == ["from a script", "batch 0", "batch 1", "batch 2"]
    assert got[0].message()["X-Test"] == "1"
    assert got[4].subject.startswith("jcsh test mail from ")
    assert PASSWORD not in ran.text


@pytest.mark.timeout(30)
def test_mail_failure_is_data_and_bad_input_is_an_error(live: Session, registry: Registry, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not mail me")
    registry.set("/configuration/mail/AccessiblePath", str(tmp_path))
    with Sink(SinkConfig(port=0, fail={"rcpt": 550})) as sink:
        configure_mail(registry, sink.port)
        ran = run(
            live,
            """
try:
    mail.send('nobody@example.test', 's', 'b')
except JcshError as e:
    print(e.result.status, e.result.refused, e.kind, e.exit_code)
try:
    mail.send('not an address', 's', 'b')
except JcshError as e:
    print('refused:', e.kind)
try:
    mail.send('a@example.test', 's', 'b', attachments=['SECRETFILE'])
except JcshError as e:
    print('refused:', e.kind, e)
""".replace("SECRETFILE", str(secret)),
        )
    assert ran.result.ok, ran.text
    lines = ran.out.splitlines()
    assert lines[0].startswith("failed {'nobody@example.test': '550") and lines[0].endswith(" 1")
    assert lines[1] == "refused: usage"
    assert lines[2].startswith("refused: usage scripts cannot attach files")
    assert len(sink.messages) == 0


def test_mail_configure_from_a_script(live: Session, registry: Registry) -> None:
    out = _ok(live, "r = mail.configure('admin@example.test', server='127.0.0.1')\nprint(r.status, r.server)")
    assert out == "Completed 127.0.0.1\n"
    assert registry.get("/configuration/mail/From") == "admin@example.test"


@pytest.mark.timeout(60)
def test_tls_probe_from_a_script(live: Session, pki) -> None:
    issued = pki.issue()
    with Sink(SinkConfig(port=0, mode="starttls", cert_path=issued.cert_path, key_path=issued.key_path)) as sink:
        ran = run(
            live,
            f"r = tls.probe('127.0.0.1', {sink.port}, timeout=5)\n"
            "print(r.mode, r.protocols['TLSv1.2'], r.protocols['TLSv1.3'], r.certificate.trusted)\n"
            f"print(tls.probe('127.0.0.1:{sink.port}', timeout=5).port)",
        )  # HOST:PORT as on the CLI
    assert ran.result.ok, ran.text
    assert ran.out == f"starttls True True False\n{sink.port}\n"  # the test CA is not trusted in this home


def test_host_checks_every_request(host: Host) -> None:
    bad = [
        ("no.such.method", {}),
        (7, {}),
        ("registry.get", {}),
        ("registry.get", {"path": 3}),
        ("registry.get", {"path": "/a", "extra": 1}),
        ("registry.get", {"path": "/" + "x" * (64 * 1024)}),
        ("registry.get", ["/a"]),
        ("registry.set", {"path": "/a", "value": "x" * (64 * 1024 + 1)}),
        ("registry.delete", {"path": "/a", "recursive": "yes"}),
        ("mail.send", {"to": "a@example.test"}),
        ("mail.send", {"to": ["a@example.test"] * 1001}),
        ("tls.probe", {"port": 70000}),
        ("tls.probe", {"timeout": -1}),
        ("mail.session.send", {"id": 9, "to": []}),
        ("credentials.add", {"protocol": "smtp", "endpoint": "e", "virtual_user": "v", "replace": 1}),
    ]
    for method, params in bad:
        with pytest.raises(UsageError):
            host.handle(method, params)
    with pytest.raises(UsageError, match=r"registry\.get: unknown parameter 'extra'"):
        host.handle("registry.get", {"extra": 1, "path": "/a"})
    with pytest.raises(UsageError, match=r"registry\.get: path is 65537 characters long; the limit is 65536"):
        host.handle("registry.get", {"path": "/" * 65537})


def test_registry_get_many_reads_the_store_at_each_call(live: Session, registry: Registry) -> None:
    registry.set("/configuration/mail/Server", "smtp.example.test")
    registry.set("/configuration/mail/Port", "587")
    out = _ok(
        live,
        """
paths = ['/configuration/mail/Server', '/configuration/mail/Port', '/nope', '/configuration']
print(registry.get_many(paths))
print(registry.get_many(paths, default='-'))
registry.set('/configuration/mail/Port', '25')
print(registry.get_many(('/configuration/mail/Port',)), registry.get_many([]))
""",
    )
    assert out.splitlines() == [
        (
            "{'/configuration/mail/Server': 'smtp.example.test', '/configuration/mail/Port': '587', "
            "'/nope': None, '/configuration': None}"
        ),
        (
            "{'/configuration/mail/Server': 'smtp.example.test', '/configuration/mail/Port': '587', "
            "'/nope': '-', '/configuration': '-'}"
        ),
        "{'/configuration/mail/Port': '25'} {}",
    ]


def test_registry_get_many_bad_input(live: Session) -> None:
    out = _ok(
        live,
        """
for bad in ('/configuration', ['/a', 5], ['relative'], ['/x'] * 1001, None):
    try:
        registry.get_many(bad)
    except TypeError as e:
        print('TypeError', e)
    except JcshError as e:
        print('JcshError', e.kind, e)
""",
    )
    assert out.splitlines() == [
        "TypeError paths must be a list of paths, not str",
        "TypeError each path must be a string, not int",
        "JcshError usage registry path must be absolute (start with '/'): 'relative'",
        "JcshError usage registry.get_many: paths must be a list of at most 1000 strings",
        "TypeError paths must be a list of paths, not NoneType",
    ]


def test_registry_get_many_respects_the_answer_budget(live: Session, registry: Registry) -> None:
    for i in range(120):
        registry.set(f"/big/{i}", "v" * 60_000)  # 7 MB in all: over one answer's 6 MiB
    ran = run(live, "registry.get_many([f'/big/{i}' for i in range(120)])")
    assert ran.result.exit_code == 4
    assert "registry.get_many(120 paths): the answer would be over 6 MiB; ask for fewer paths" in ran.text
