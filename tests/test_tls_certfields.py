"""The DER reader of certificate summaries against cryptography: equal where it reads, None where it does not."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from jcsh.runtime.tls import certinfo
from jcsh.runtime.tls.certfields import read_fields

_KEYS: dict[str, Any] = {}


def _key(kind: str) -> Any:
    if kind not in _KEYS:
        _KEYS[kind] = {
            "rsa1024": lambda: rsa.generate_private_key(65537, 1024),
            "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
            "rsa3072": lambda: rsa.generate_private_key(3, 3072),
            "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
            "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
            "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
            "k256": lambda: ec.generate_private_key(ec.SECP256K1()),
            "ed25519": ed25519.Ed25519PrivateKey.generate,
            "ed448": ed448.Ed448PrivateKey.generate,
            "dsa": lambda: dsa.generate_private_key(2048),
        }[kind]()
    return _KEYS[kind]


def _name(*pairs: tuple[Any, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def _cert(
    key: str = "p256",
    subject: x509.Name | None = None,
    issuer: x509.Name | None = None,
    sans: list[x509.GeneralName] | None = None,
    *,
    hash_: Any = "default",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    extensions: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
    signer: str | None = None,
) -> bytes:
    subject = subject if subject is not None else _name((NameOID.COMMON_NAME, "mail.example.test"))
    signing = _key(signer or key)
    if hash_ == "default":
        hash_ = None if isinstance(signing, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer if issuer is not None else subject)
        .public_key(_key(key).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=1))
        .not_valid_after(not_after or now + dt.timedelta(days=90))
    )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(signing, hash_).public_bytes(serialization.Encoding.DER)


def _same(der: bytes, *, fast: bool = True) -> None:
    """The summary and host-name verdicts equal cryptography's; `fast`: read without it."""
    assert (read_fields(der) is not None) is fast
    slow = certinfo._summarize(der)
    assert certinfo.summarize(der) == slow
    for host in (*slow["sans"], "other.example.test", "127.0.0.9", "::9", "x.mail.example.test"):
        ip = _ip(host)
        assert certinfo.hostname_matches(der, host) == certinfo._hostname_matches(der, host, ip), host


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


DNS, IP = x509.DNSName, x509.IPAddress


@pytest.mark.parametrize("key", ["rsa1024", "rsa2048", "rsa3072", "p256", "p384", "p521", "ed25519", "ed448"])
def test_every_common_key_reads_as_cryptography_reads_it(key: str) -> None:
    _same(_cert(key, sans=[DNS("mail.example.test"), IP(ipaddress.ip_address("127.0.0.1"))]))


@pytest.mark.parametrize("hash_", [hashes.SHA224(), hashes.SHA384(), hashes.SHA512()])
def test_signature_algorithms(hash_: Any) -> None:
    _same(_cert("rsa2048", hash_=hash_))
    _same(_cert("p256", hash_=hash_))


def test_names_with_escapes_and_every_string_type() -> None:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Bayern"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "München"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'A, "B" + C; <D> \\ E '),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#hash"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, " lead"),
            x509.NameAttribute(NameOID.STREET_ADDRESS, "x\0y"),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
            x509.NameAttribute(NameOID.USER_ID, "u1"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "postmaster@example.test"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "12345"),
            x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4.5"), "private"),
            x509.NameAttribute(NameOID.COMMON_NAME, "bmp ✓", x509.name._ASN1Type.BMPString),
            x509.NameAttribute(NameOID.GIVEN_NAME, "univ 🙂", x509.name._ASN1Type.UniversalString),
            x509.NameAttribute(NameOID.SURNAME, "t61", x509.name._ASN1Type.T61String),
            x509.NameAttribute(NameOID.TITLE, "vis", x509.name._ASN1Type.VisibleString),
        ]
    )
    issuer = _name((NameOID.COMMON_NAME, "jcsh Test CA"), (NameOID.ORGANIZATION_NAME, "jcsh"))
    _same(_cert("p256", subject, issuer, signer="p384"))
    _same(_cert("p256", x509.Name([]), issuer))  # an empty subject (names in subjectAltName only)


def test_self_signed_is_name_equality() -> None:
    name = _name((NameOID.COMMON_NAME, "same"))
    der = _cert("p256", name, name)
    assert certinfo.summarize(der)["self_signed"] is True
    _same(der)
    printable = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "same", x509.name._ASN1Type.PrintableString)])
    der = _cert("p256", name, printable)  # the string type differs, the value does not
    _same(der)


def test_subject_alt_names_and_host_matching() -> None:
    sans: list[x509.GeneralName] = [
        DNS("*.example.test"),
        x509.RFC822Name("postmaster@example.test"),
        IP(ipaddress.ip_address("2001:db8::25")),
        DNS("mail.example.test"),
        x509.UniformResourceIdentifier("https://example.test/"),
        IP(ipaddress.ip_address("127.0.0.1")),
    ]
    der = _cert("p256", sans=sans)
    _same(der)
    assert certinfo.summarize(der)["sans"] == ["*.example.test", "mail.example.test", "2001:db8::25", "127.0.0.1"]
    assert certinfo.hostname_matches(der, "[2001:db8::25]")
    assert not certinfo.hostname_matches(der, "example.test")
    only_mail = _cert("p256", sans=[x509.RFC822Name("a@example.test")])
    _same(only_mail)
    assert not certinfo.hostname_matches(only_mail, "mail.example.test")  # a SAN without DNS names: no CN


def test_common_name_counts_only_without_subject_alt_names() -> None:
    der = _cert("p256", _name((NameOID.COMMON_NAME, "*.example.test")))
    _same(der)
    assert certinfo.hostname_matches(der, "mail.example.test")


def test_dates_across_the_utctime_boundary() -> None:
    start = dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    _same(_cert("p256", not_before=start, not_after=dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)))
    _same(_cert("p256", not_before=start, not_after=dt.datetime(2050, 1, 1, tzinfo=dt.UTC)))  # GeneralizedTime
    expired = _cert("p256", not_before=start, not_after=dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    _same(expired)
    assert certinfo.summarize(expired)["days_left"] < 0


def test_other_extensions_are_passed_over() -> None:
    extensions = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectKeyIdentifier(b"\x01" * 20), False),
    ]
    _same(_cert("p256", sans=[DNS("mail.example.test")], extensions=extensions))


def test_what_it_does_not_read_goes_to_cryptography() -> None:
    _same(_cert("dsa", hash_=hashes.SHA256()), fast=False)  # DSA key
    _same(_cert("k256"), fast=False)  # a curve it does not know
    _same(_cert("p256", hash_=hashes.SHA3_256()), fast=False)  # a signature it does not name
    multi = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COMMON_NAME, "a"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "b")]
            )
        ]
    )
    _same(_cert("p256", multi), fast=False)  # a multi-valued RDN
    directory = x509.DirectoryName(_name((NameOID.COMMON_NAME, "x")))
    _same(_cert("p256", sans=[DNS("a.example.test"), directory]), fast=False)
    _same(_cert("p256", _name((NameOID.COMMON_NAME, "x" * 64))))  # at the length limit: read
    with pytest.warns(UserWarning, match="length"):  # cryptography warns about a longer one on stderr
        too_long = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x" * 65, _validate=False)])
        _same(_cert("p256", too_long), fast=False)


def test_broken_der_raises_as_before() -> None:
    der = _cert("p256")
    for junk in (b"junk", der[:-1], der + b"\x00", b"\x30\x80" + der[2:]):
        assert read_fields(junk) is None
        with pytest.raises(ValueError, match="not a DER certificate"):
            certinfo.summarize(junk)


def _system_certificates() -> list[bytes]:
    folder = Path(ssl.get_default_verify_paths().openssl_capath or "/etc/ssl/certs")
    out = []
    for path in sorted(folder.glob("*.pem"))[:400] if folder.is_dir() else []:
        try:
            out.append(ssl.PEM_cert_to_DER_cert(path.read_text(encoding="ascii")))
        except (ValueError, UnicodeDecodeError, OSError):
            continue
    return out


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
def test_the_system_trust_store_reads_the_same() -> None:
    """Real CA certificates of every vintage: where the reader reads, it agrees with cryptography."""
    ders = _system_certificates()
    if len(ders) < 20:
        pytest.skip("no system CA folder here")
    read = 0
    for der in ders:
        fast = read_fields(der) is not None
        read += fast
        _same(der, fast=fast)
    assert read >= len(ders) * 0.8  # most of them take the fast path


def test_a_probe_does_not_import_cryptography(tmp_path: Path) -> None:
    der = _cert("p256", sans=[DNS("mail.example.test")])
    code = (
        "import sys; from jcsh.runtime.tls.certinfo import summarize, hostname_matches; "
        f"summarize({der!r}); hostname_matches({der!r}, 'mail.example.test'); "
        "print('cryptography' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
