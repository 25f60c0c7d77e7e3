"""Cipher suites per TLS version against sinks with known cipher configurations (and sslyze, where installed)."""

from __future__ import annotations

import contextlib
import importlib.util
import ssl
from collections.abc import Iterator

import pytest

from jcsh.runtime.errors import UsageError
from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.tls.checks.ciphers import (
    TLS13_SUITES,
    CipherScan,
    SuiteOutcome,
    candidate_suites,
    render_ciphers,
    scan_ciphers,
)

pytestmark = pytest.mark.timeout(60)

TWO = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"  # the sink's key is EC


@contextlib.contextmanager
def _sink(mode: str = "starttls", **kw: object) -> Iterator[Sink]:
    config = SinkConfig(port=0, mode=mode, **kw)
    with Sink(config) as sink:
        yield sink


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_tls12_accepts_exactly_the_configured_suites(mode: str) -> None:
    with _sink(mode, ciphers=TWO, max_version=ssl.TLSVersion.TLSv1_2) as sink:
        scan = scan_ciphers(sink.host, sink.port, ["TLSv1.2"], mode=mode, timeout=5)
    (v12,) = scan.versions
    assert sorted(v12.accepted) == sorted(TWO.split(":"))
    assert len(v12.suites) == len(candidate_suites("TLSv1.2"))  # every candidate was tried
    assert all(s.outcome is SuiteOutcome.REJECTED for s in v12.suites if s.name not in TWO)
    assert v12.server_preference is True and v12.preferred in TWO.split(":")
    assert scan.to_json()["versions"]["TLSv1.2"]["server_preference"] is True


def test_client_order_is_recognised() -> None:
    with _sink(ciphers=TWO, max_version=ssl.TLSVersion.TLSv1_2, server_cipher_order=False) as sink:
        (v12,) = scan_ciphers(sink.host, sink.port, ["TLSv1.2"], timeout=5).versions
    assert v12.server_preference is False and v12.preferred is None
    assert "client order" in "\n".join(render_ciphers(CipherScan("h", 25, "starttls", (v12,), 0)))


def test_tls13_suites_each_tried_alone() -> None:
    with _sink(min_version=ssl.TLSVersion.TLSv1_3) as sink:
        scan = scan_ciphers(sink.host, sink.port, ["TLSv1.3", "TLSv1.2"], timeout=5)
    v13, v12 = scan.versions
    # OpenSSL's server default: the three suites, not the CCM ones
    assert sorted(v13.accepted) == sorted(TLS13_SUITES[:3])
    assert {s.name for s in v13.suites if s.outcome is SuiteOutcome.REJECTED} == set(TLS13_SUITES[3:])
    assert v12.accepted == [] and v12.server_preference is None
    text = "\n".join(render_ciphers(scan))
    assert "TLSv1.3  3 of 5 accepted" in text and "TLSv1.2  none accepted" in text


def test_old_versions_offer_only_their_suites() -> None:
    names12 = {n for n, _ in candidate_suites("TLSv1.2")}
    names10 = {n for n, _ in candidate_suites("TLSv1")}
    assert names10 < names12
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" not in names10 and "ECDHE-ECDSA-AES128-SHA" in names10
    assert not any("PSK" in n or "SRP" in n for n in names12)


def test_old_server_at_tls1() -> None:
    with _sink(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1) as sink:
        (v10,) = scan_ciphers(sink.host, sink.port, ["TLSv1"], timeout=5).versions
    assert "ECDHE-ECDSA-AES128-SHA" in v10.accepted


def test_unreachable_server_and_bad_versions() -> None:
    with socket_closed() as port:
        scan = scan_ciphers("127.0.0.1", port, ["TLSv1.2"], timeout=1, concurrency=16)
    assert scan.versions == () and "refused" in scan.error
    assert render_ciphers(scan)[0].startswith("ciphers    not scanned: connection refused")
    with pytest.raises(UsageError):
        scan_ciphers("127.0.0.1", port, ["TLSv9"])
    with pytest.raises(UsageError):
        scan_ciphers("127.0.0.1", port, [])


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("sslyze") is None, reason="sslyze is not installed (make bench-peers)")
def test_verdicts_equal_sslyze() -> None:
    from sslyze import (
        ScanCommand,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )
    from sslyze.connection_helpers.opportunistic_tls_helpers import ProtocolWithOpportunisticTlsEnum

    commands = {
        "TLSv1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
        "TLSv1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    }
    with _sink(ciphers=TWO + ":AES128-SHA:DHE-RSA-AES256-GCM-SHA384") as sink:
        ours = scan_ciphers(sink.host, sink.port, list(commands), timeout=5)
        location = ServerNetworkLocation("localhost", sink.port, ip_address=sink.host)
        config = ServerNetworkConfiguration(
            "localhost", tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.SMTP
        )
        scanner = Scanner()
        request = ServerScanRequest(location, network_configuration=config, scan_commands=set(commands.values()))
        scanner.queue_scans([request])
        (result,) = list(scanner.get_results())
    for version, command in commands.items():
        attempt = getattr(result.scan_result, command.value)
        theirs = attempt.result
        accepted = {s.cipher_suite.openssl_name for s in theirs.accepted_cipher_suites}
        rejected = {s.cipher_suite.openssl_name for s in theirs.rejected_cipher_suites}
        mine = next(v for v in ours.versions if v.version == version)
        assert accepted and rejected, version  # sslyze saw the server: the comparison means something
        assert set(mine.accepted) == accepted, version
        assert not (set(mine.accepted) & rejected), version


def test_silent_server_costs_one_deadline() -> None:
    with contextlib.ExitStack() as stack:
        import socket
        import time

        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        started = time.monotonic()
        scan = scan_ciphers("127.0.0.1", listener.getsockname()[1], ["TLSv1.2", "TLSv1.3"], timeout=0.8)
    assert time.monotonic() - started < 3
    assert "no SMTP greeting" in scan.error


def test_server_that_dies_mid_scan_stops_the_scan() -> None:
    from tests.support.mailconf import RawServer

    served = []

    def script(conn: object) -> None:
        served.append(1)
        if len(served) == 1:  # the first connection looks fine, then the server goes quiet
            import socket

            assert isinstance(conn, socket.socket)
            conn.sendall(b"220 hi\r\n")
            conn.recv(100)
            conn.sendall(b"250-x\r\n250 STARTTLS\r\n")
            conn.recv(100)
            conn.sendall(b"220 go\r\n")
            conn.recv(1000)  # a ClientHello, answered with an alert: "refused", a data outcome
            conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # alert: handshake_failure

    import time

    with RawServer(script) as server:
        started = time.monotonic()
        scan = scan_ciphers("127.0.0.1", server.port, ["TLSv1.2"], timeout=0.5, concurrency=4)
    (v12,) = scan.versions
    assert time.monotonic() - started < 10
    assert any("stopped answering" in s.reason for s in v12.suites)
