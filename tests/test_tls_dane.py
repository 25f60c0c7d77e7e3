"""DANE (RFC 7672): TLSA records from a real DNS responder, matched against real certificate chains."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from jcsh.runtime.tls.certfields import read_spki
from jcsh.runtime.tls.checks.dane import DaneStatus, _Chain, check_dane, match_records, render_dane
from tests.support.dns import DnsResponder
from tests.support.pki import TestCA, self_signed_der

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


# -- the leaf's SubjectPublicKeyInfo read without cryptography (runtime/tls/certfields.py read_spki) --


def _self_signed(key: Any, serial: int | None = None) -> bytes:
    return self_signed_der(key, "spki.test", serial=serial)


KEYS = {
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "rsa-1024-e3": lambda: rsa.generate_private_key(3, 1024),
    "p-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p-384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p-521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ed448": ed448.Ed448PrivateKey.generate,
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),  # not read plainly: cryptography's
}


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_spki_read_plainly_equals_cryptographys(kind: str) -> None:
    for _ in range(3 if kind.startswith("rsa") else 10):  # RSA moduli and EC points of every length
        der = _self_signed(KEYS[kind]())
        assert (read_spki(der) is not None) is (kind != "secp256k1")
        assert _Chain([der]).content(0, 1) == _spki(der)
        assert _Chain([der]).content(0, 0) == der


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")  # old roots' serials
def test_spki_of_system_certificates_equals_cryptographys() -> None:
    seen = 0
    for path in sorted(Path("/etc/ssl/certs").glob("*.pem"))[:400]:
        try:
            der = x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)
            expected = _spki(der)
        except Exception:  # a bundle, or a key cryptography does not support: nothing to compare
            continue
        assert _Chain([der]).content(0, 1) == expected, path
        seen += read_spki(der) is not None
    if not seen:
        pytest.skip("no system certificates")


def test_a_compressed_ec_point_is_left_to_cryptography() -> None:
    der = _self_signed(ec.generate_private_key(ec.SECP256R1()))
    key = x509.load_der_x509_certificate(der).public_key()
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    compressed = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    # 65 -> 33 bytes inside BIT STRING (67 -> 35), SubjectPublicKeyInfo (89 -> 57), TBS and certificate
    body = der.replace(b"\x03\x42\x00" + point, b"\x03\x22\x00" + compressed)
    assert len(body) == len(der) - 32
    patched = _shrink_lengths(body, 32)
    assert read_spki(patched) is None
    assert _Chain([patched]).content(0, 1) == _spki(patched)


def _shrink_lengths(der: bytes, by: int, *, spki: bool = True) -> bytes:
    """The certificate with its outer, TBS and (P-256) SubjectPublicKeyInfo lengths lowered by `by` (a test helper)."""
    out = bytearray(der)

    def fix(at: int) -> int:  # the length field of the SEQUENCE at `at`; returns where its content starts
        if out[at + 1] == 0x82:
            n = int.from_bytes(out[at + 2 : at + 4], "big") - by
            out[at + 2 : at + 4] = n.to_bytes(2, "big")
            return at + 4
        if out[at + 1] == 0x81:
            out[at + 2] -= by
            return at + 3
        out[at + 1] -= by
        return at + 2

    tbs = fix(0)
    fix(tbs)
    if spki:
        at = bytes(out).find(b"\x30\x59\x30\x13")  # P-256's SubjectPublicKeyInfo header
        assert at > 0
        out[at + 1] -= by
    return bytes(out)


def _verdicts(key: Any, der: bytes) -> list[bool | None]:
    """EE records for the key's SubjectPublicKeyInfo and for the certificate's bytes, judged on `der`."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = [(3, 1, 1, hashlib.sha256(spki).digest()), (3, 0, 2, hashlib.sha512(der).digest())]
    return [r.matched for r in match_records(raw, [der])]


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")  # the negative serial
def test_what_cryptography_refuses_matches_nothing_and_the_rest_as_it_reads() -> None:
    """A certificate the DER reader leaves to cryptography gets cryptography's verdict, refusals included."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = _self_signed(key, serial=0x1234)
    at = der.find(b"\x02\x02\x12\x34")
    version = b"\xa0\x03\x02\x01\x02"
    assert at > 0 and version in der
    assert read_spki(der) is not None and _verdicts(key, der) == [True, True]
    negative = der[:at] + b"\x02\x02\x92\x34" + der[at + 4 :]  # cryptography reads it, with a warning
    assert read_spki(negative) is None and _verdicts(key, negative) == [True, True]
    for refused in (
        der[:at] + b"\x02\x02\x00\x00" + der[at + 4 :],  # a zero serial, padded: not DER
        der.replace(version, b"\xa0\x03\x02\x01\x01", 1),  # v2: InvalidVersion, not a ValueError
    ):
        with pytest.raises((ValueError, x509.InvalidVersion)):
            x509.load_der_x509_certificate(refused)
        assert read_spki(refused) is None and _verdicts(key, refused) == [False, False]
    v1 = _shrink_lengths(der.replace(version, b"", 1), len(version), spki=False)  # no extensions: a v1 body
    assert x509.load_der_x509_certificate(v1).version is x509.Version.v1
    assert read_spki(v1) is None and _verdicts(key, v1) == [True, True]  # left to cryptography, as before


def test_dane_ee_needs_no_cryptography_import(tmp_path: Path) -> None:
    import subprocess
    import sys

    der = _self_signed(ec.generate_private_key(ec.SECP256R1()))
    (tmp_path / "leaf.der").write_bytes(der)
    digest = hashlib.sha256(_spki(der)).hexdigest()
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from jcsh.runtime.tls.checks.dane import match_records\n"
        f"der = Path({str(tmp_path / 'leaf.der')!r}).read_bytes()\n"
        f"raw = [(3, 1, 1, bytes.fromhex({digest!r})), (3, 0, 1, b'x' * 32)]\n"
        "print([r.matched for r in match_records(raw, [der])], 'cryptography' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=20, check=True)
    assert out.stdout.split() == ["[True,", "False]", "False"]
