"""DANE (RFC 7672): TLSA records from a real DNS responder, matched against real certificate chains."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jcsh.runtime.tls.checks.dane import DaneStatus, check_dane, match_records, render_dane
from tests.support.dns import DnsResponder
from tests.support.pki import TestCA

pytestmark = pytest.mark.timeout(20)

HOST = "mx1.example.test"
NAME = "_25._tcp.mx1.example.test"


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _spki(der: bytes) -> bytes:
    key = x509.load_der_x509_certificate(der).public_key()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """leaf, intermediate, root: DER, as a server sends it (with its anchor)."""
    ca = TestCA(tmp_path_factory.mktemp("dane-ca"))
    leaf = ca.issue([HOST], via_intermediate=True)
    intermediate, _ = ca.intermediate()
    return [
        _der(leaf.cert_pem),
        intermediate.public_bytes(serialization.Encoding.DER),
        ca.root.public_bytes(serialization.Encoding.DER),
    ]


@pytest.fixture
def dns_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsResponder]:
    with DnsResponder() as server:
        monkeypatch.setenv("JCSH_NAMESERVERS", server.address)
        yield server


def test_dane_ee_spki_sha256_matches_with_ad_bit(dns_env: DnsResponder, chain: list[bytes]) -> None:
    digest = hashlib.sha256(_spki(chain[0])).hexdigest()
    dns_env.add(NAME, "TLSA", f"3 1 1 {digest}", "3 1 1 " + "00" * 32).authenticated(NAME)
    result = check_dane(HOST, 25, chain, lifetime=2)
    assert result.authenticated is True
    assert result.status is DaneStatus.VERIFIED
    assert sorted(bool(r.matched) for r in result.records) == [False, True]
    data = result.to_json()
    assert data["authenticated"] is True
    assert next(r for r in data["records"] if r["matched"]) == {
        "usage": 3,
        "selector": 1,
        "matching": 1,
        "data": digest,
        "matched": True,
        "note": None,
    }
    assert "verified" in "\n".join(render_dane(result))


def test_without_ad_bit_dane_does_not_apply_but_records_are_shown(dns_env: DnsResponder, chain: list[bytes]) -> None:
    digest = hashlib.sha256(_spki(chain[0])).hexdigest()
    dns_env.add(NAME, "TLSA", f"3 1 1 {digest}")  # no authenticated(): no AD bit
    result = check_dane(HOST, 25, chain, lifetime=2)
    assert result.authenticated is False
    assert result.status is DaneStatus.NOT_APPLICABLE
    assert result.records[0].matched is True
    text = "\n".join(render_dane(result))
    assert "does not apply" in text and "matches" in text


def test_mismatch_when_authenticated_records_do_not_match(dns_env: DnsResponder, chain: list[bytes]) -> None:
    dns_env.add(NAME, "TLSA", "3 0 2 " + "ab" * 64, "2 1 1 " + "cd" * 32).authenticated(NAME)
    result = check_dane(HOST, 25, chain, lifetime=2)
    assert result.status is DaneStatus.MISMATCH
    assert [r.matched for r in result.records] == [False, False]
    assert "MISMATCH" in "\n".join(render_dane(result))


def test_query_asks_for_the_ad_bit(dns_env: DnsResponder, chain: list[bytes]) -> None:
    # The responder sets AD only when the query carries DO or AD, like a validating resolver.
    dns_env.add(NAME, "TLSA", "3 1 1 " + "00" * 32).authenticated(NAME)
    assert check_dane(HOST, 25, chain, lifetime=2).authenticated is True


def test_every_selector_and_matching_type(chain: list[bytes]) -> None:
    leaf, inter, root = chain
    raw = [
        (3, 0, 0, leaf),
        (3, 0, 1, hashlib.sha256(leaf).digest()),
        (3, 0, 2, hashlib.sha512(leaf).digest()),
        (3, 1, 0, _spki(leaf)),
        (3, 1, 2, hashlib.sha512(_spki(leaf)).digest()),
        (2, 0, 1, hashlib.sha256(root).digest()),  # the root anchors the whole chain
        (2, 1, 1, hashlib.sha256(_spki(inter)).digest()),
        (2, 0, 1, hashlib.sha256(leaf).digest()),  # the leaf is not a trust anchor
        (3, 0, 1, hashlib.sha256(root).digest()),  # nor is the root an end entity
    ]
    assert [r.matched for r in match_records(raw, chain)] == [True] * 7 + [False, False]


def test_dane_ta_must_actually_issue_the_chain(chain: list[bytes], tmp_path: Path) -> None:
    # A server that appends some other CA's certificate does not get DANE-TA credit for it.
    stranger = TestCA(tmp_path / "other").root.public_bytes(serialization.Encoding.DER)
    raw = [(2, 0, 1, hashlib.sha256(stranger).digest())]
    assert match_records(raw, [chain[0], stranger])[0].matched is False


def test_pkix_usages_and_unknown_parameters_are_unusable(dns_env: DnsResponder, chain: list[bytes]) -> None:
    leaf_hash = hashlib.sha256(chain[0]).hexdigest()
    dns_env.add(
        NAME, "TLSA", f"1 0 1 {leaf_hash}", "3 7 1 " + "00" * 32, "3 0 9 00", "9 0 1 " + "00" * 32
    ).authenticated(NAME)
    result = check_dane(HOST, 25, chain, lifetime=2)
    assert result.status is DaneStatus.UNUSABLE
    by_kind = {(r.usage, r.selector, r.matching): r for r in result.records}  # an RRset has no order
    assert "does not count for SMTP" in by_kind[1, 0, 1].note and by_kind[1, 0, 1].matched is True
    assert by_kind[3, 7, 1].note == "unknown selector 7"
    assert by_kind[3, 0, 9].note == "unknown matching type 9"
    assert by_kind[9, 0, 1].note == "unknown usage 9"


def test_no_records_and_lookup_failures(dns_env: DnsResponder, chain: list[bytes]) -> None:
    assert check_dane(HOST, 25, chain, lifetime=2).status is DaneStatus.NO_RECORDS  # NXDOMAIN
    dns_env.servfail("_25._tcp.broken.test")
    failed = check_dane("broken.test", 25, chain, lifetime=2)
    assert failed.status is DaneStatus.ERROR and "SERVFAIL" in failed.error
    dns_env.never_answer("_25._tcp.slow.test")
    slow = check_dane("slow.test", 25, chain, lifetime=0.5)
    assert slow.status is DaneStatus.ERROR and "within" in slow.error


def test_garbage_chain_matches_nothing_and_escapes_stay_out(dns_env: DnsResponder) -> None:
    dns_env.add(NAME, "TLSA", "3 1 1 " + "00" * 32).authenticated(NAME)
    result = check_dane(HOST, 25, [b"\x1b[31mnot a certificate"], lifetime=2)
    assert result.status is DaneStatus.MISMATCH
    assert result.records[0].matched is False
    assert "\x1b" not in "\n".join(render_dane(result))
