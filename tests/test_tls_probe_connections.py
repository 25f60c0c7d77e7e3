"""One connection fewer per target: the TLSv1.3 attempt also verifies; verdicts stay what five connections said."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.tls import probe as probe_module
from jcsh.runtime.tls.probe import ProbeResult, probe
from jcsh.runtime.tls.trust import TrustPolicy, protocol_version
from tests.support.pki import Issued, TestCA


@contextlib.contextmanager
def _sink(leaf: Issued, mode: str = "starttls", low: str | None = None, high: str | None = None) -> Iterator[Sink]:
    config = SinkConfig(
        port=0,
        mode=mode,
        cert_path=leaf.chain_path,
        key_path=leaf.key_path,
        min_version=protocol_version(low) if low else None,
        max_version=protocol_version(high) if high else None,
    )
    with Sink(config) as sink:
        yield sink


def _connections(sink: Sink) -> int:
    return sum(1 for e in sink.events if e.startswith("connect "))


def _doc(result: ProbeResult) -> dict[str, Any]:
    doc = result.to_json()
    doc.pop("elapsed_ms")
    return doc


def _both_ways(sink: Sink, policy: TrustPolicy, monkeypatch: pytest.MonkeyPatch, mode: str) -> tuple[Any, int, Any]:
    """(the probe's document, its connections, the document with a trust connection of its own)."""
    before = _connections(sink)
    merged = probe(sink.host, sink.port, mode=mode, timeout=5, policy=policy)
    used = _connections(sink) - before
    with monkeypatch.context() as m:
        m.setattr(probe_module, "_verifier_offers_tls13", lambda: False)
        apart = probe(sink.host, sink.port, mode=mode, timeout=5, policy=policy)
    return _doc(merged), used, _doc(apart)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
@pytest.mark.parametrize(
    ("low", "high", "trusted", "connections"),
    [
        (None, None, True, 4),  # TLS 1.2-1.3, trusted: the 1.3 handshake verifies
        (None, None, False, 4),  # untrusted: 1.3 agreed before the verdict; facts after TLS from 1.2
        ("TLSv1.3", "TLSv1.3", True, 4),
        ("TLSv1.3", "TLSv1.3", False, 5),  # untrusted and nothing else accepted: 1.3 again, unverified
        ("TLSv1.2", "TLSv1.2", True, 5),  # no TLS 1.3: the trust check gets a connection of its own
        ("TLSv1.1", "TLSv1.2", False, 5),
    ],
)
def test_verdicts_equal_a_trust_connection_of_its_own(
    pki: TestCA,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    low: str | None,
    high: str | None,
    trusted: bool,
    connections: int,
) -> None:
    if low == "TLSv1.1" and not ssl.HAS_TLSv1_1:
        pytest.skip("no TLS 1.1 here")
    leaf = pki.issue(("mail.example.test", "127.0.0.1"), via_intermediate=True)
    policy = TrustPolicy(extra_cas=(pki.root_pem.decode(),) if trusted else ())
    with _sink(leaf, mode, low, high) as sink:
        merged, used, apart = _both_ways(sink, policy, monkeypatch, mode)
    assert merged == apart
    assert merged["certificate"]["verified"] is trusted
    assert merged["certificate"]["chain"] and merged["smtp"]["ehlo_tls"] is not None
    if mode == "starttls":  # the implicit-TLS sink sees a connection only once its handshake succeeded
        assert used == connections


@pytest.mark.timeout(60)
def test_a_host_name_mismatch_is_found_by_the_tls13_handshake(pki: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = pki.issue(("other.example.test",))
    policy = TrustPolicy(extra_cas=(pki.root_pem.decode(),))
    with _sink(leaf) as sink:
        merged, used, apart = _both_ways(sink, policy, monkeypatch, "starttls")
    assert merged == apart and used == 4
    assert merged["certificate"]["verified"] is False and "mismatch" in merged["certificate"]["trust_error"]
    assert merged["negotiated"]["version"] == "TLSv1.3" and merged["protocols"]["TLSv1.3"] is True


@pytest.mark.timeout(60)
def test_only_the_versions_asked_for(pki: TestCA) -> None:
    """Without TLSv1.3 among --protocols the trust check keeps its own connection."""
    leaf = pki.issue(("127.0.0.1",))
    with _sink(leaf) as sink:
        result = probe(sink.host, sink.port, protocols=("TLSv1.2",), timeout=5, policy=TrustPolicy())
        assert _connections(sink) == 2
    assert result.protocols == {"TLSv1.2": True} and result.certificate is not None
    assert result.certificate.verified is False
