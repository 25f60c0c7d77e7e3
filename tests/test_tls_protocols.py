"""`jcsh tls protocols`, supported_protocols() and the javax.net.ssl shim."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.tls.protocols import NEWEST_FIRST, supported_protocols
from jcsh.runtime.tls.trust import protocol_version
from tests.support.cli import jcsh

ROOT = Path(__file__).resolve().parent.parent


def test_names_are_newest_first_and_include_modern_tls() -> None:
    report = supported_protocols()
    assert report.names == [n for n in NEWEST_FIRST if n in report.names]
    assert {"TLSv1.2", "TLSv1.3"} <= set(report.names)
    assert report.line() == " ".join(report.names)
    # Every version is either listed or has a reason, never both.
    assert set(report.names).isdisjoint(report.reasons)
    assert set(report.names) | set(report.reasons) == set(NEWEST_FIRST)


def test_a_version_counts_only_with_its_flag() -> None:
    report = supported_protocols()
    flags = {
        "TLSv1.3": ssl.HAS_TLSv1_3,
        "TLSv1.2": ssl.HAS_TLSv1_2,
        "TLSv1.1": ssl.HAS_TLSv1_1,
        "TLSv1": ssl.HAS_TLSv1,
        "SSLv3": ssl.HAS_SSLv3,
    }
    for name in report.names:
        assert flags[name], name
    for name, has in flags.items():
        if not has:
            assert "HAS_" in report.reasons[name]


def test_computed_once_per_process() -> None:
    assert supported_protocols() is supported_protocols()


def test_default_enabled_is_what_a_verifying_client_offers() -> None:
    report = supported_protocols()
    ctx = ssl.create_default_context()
    low = ctx.minimum_version if ctx.minimum_version != ssl.TLSVersion.MINIMUM_SUPPORTED else ssl.TLSVersion.SSLv3
    expected = [n for n in report.names if protocol_version(n) >= low]
    assert report.default_enabled == expected
    assert "TLSv1.3" in report.default_enabled


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"])
def test_each_listed_version_really_negotiates_over_a_socket(name: str) -> None:
    """Cross-check the in-memory verdict with a real loopback server pinned to that version."""
    report = supported_protocols()
    version = protocol_version(name)
    with Sink(SinkConfig(port=0, mode="implicit", min_version=version, max_version=version)) as sink:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        from jcsh.runtime.tls.trust import restrict_versions

        restrict_versions(ctx, [name])
        try:
            with socket.create_connection((sink.host, sink.port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
                negotiated = tls.version()
        except (ssl.SSLError, OSError):
            negotiated = None
    assert (negotiated == name) == (name in report.names)


def test_low_versions_need_security_level_zero_on_openssl3() -> None:
    """Shows the handshakes are real: without @SECLEVEL=0, OpenSSL 3 refuses TLS 1.0."""
    if not ssl.OPENSSL_VERSION_INFO >= (3,) or "TLSv1" not in supported_protocols().names:
        pytest.skip("needs OpenSSL 3 with TLS 1.0 built in")
    import warnings

    from jcsh.runtime.tls.protocols import _handshake
    from jcsh.runtime.tls.selfsigned import generate_self_signed

    cert, key = generate_self_signed(Path(__import__("tempfile").mkdtemp()), ("localhost",), days=1)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for ctx in (server, client):
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    with pytest.raises(ssl.SSLError):
        _handshake(client, server)


def test_command_prints_the_line(home: Path) -> None:
    ran = jcsh(home, "tls", "protocols")
    assert ran.code == 0
    assert ran.out == supported_protocols().line() + "\n"


def test_command_json(home: Path) -> None:
    ran = jcsh(home, "tls", "protocols", "--json")
    assert ran.code == 0
    doc = ran.json
    assert doc["protocols"] == supported_protocols().names
    assert doc["openssl"] == ssl.OPENSSL_VERSION
    assert set(doc["default_enabled"]) <= set(doc["protocols"])
    assert set(doc["reasons"]) == set(NEWEST_FIRST) - set(doc["protocols"])


def test_shim_ports_the_product_snippet() -> None:
    from jcsh.stdlib.javax.net.ssl import SSLContext

    protocols = " ".join(SSLContext.getDefault().getSupportedSSLParameters().getProtocols())
    assert protocols == supported_protocols().line()
    defaults = SSLContext.getDefault().getDefaultSSLParameters().getProtocols()
    assert defaults == supported_protocols().default_enabled


def test_shim_asks_over_the_link_it_is_given() -> None:
    from jcsh.stdlib.javax.net.ssl import SSLContext, SSLContextStub

    calls: list[tuple[str, object]] = []

    class Parent:  # what the worker's link does: one request, one JSON answer
        def call(self, method: str, params: object = None) -> dict:
            calls.append((method, params))
            return {"protocols": ["TLSv1.3"], "default_enabled": ["TLSv1.3"]}

    linked = SSLContextStub(Parent())
    assert linked.getDefault().getSupportedSSLParameters().getProtocols() == ["TLSv1.3"]
    assert linked.getInstance("TLSv1.2").getProtocol() == "TLSv1.2"
    assert calls == [("tls.protocols", None)]
    # The shim outside the sandbox is untouched by that one.
    assert SSLContext.getDefault().getSupportedSSLParameters().getProtocols() == supported_protocols().names


def test_example_script_prints_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/tls_protocols.jcs, run with `javax` importable as scripts see it."""

    import jcsh.stdlib.javax.net.ssl

    for name, module in (
        ("javax", jcsh.stdlib.javax),
        ("javax.net", jcsh.stdlib.javax.net),
        ("javax.net.ssl", jcsh.stdlib.javax.net.ssl),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    printed: list[str] = []

    class Out:
        def println(self, value: object) -> None:
            printed.append(str(value))

    source = (ROOT / "examples" / "tls_protocols.jcs").read_text()
    exec(compile(source, "tls_protocols.jcs", "exec"), {"jcsOut": Out()})
    assert printed == [supported_protocols().line()]


def test_shell_start_up_does_not_compute_or_import_tls() -> None:
    code = (
        "import sys; from jcsh.shell.commands import specs; specs(); "
        "print(sorted(m for m in sys.modules if m.startswith(('jcsh.runtime.tls', 'cryptography'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cache_is_safe_from_threads() -> None:
    results = []
    threads = [threading.Thread(target=lambda: results.append(supported_protocols().names)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == results[0] for r in results)
