"""A throw-away PKI for tests: a root CA, an optional intermediate, and leaf certificates.

EC P-256 keys keep generation fast; every file is PEM, written under the given folder.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jcsh.runtime.tls.selfsigned import san_entries

__all__ = ["Issued", "TestCA", "self_signed", "self_signed_der"]

_DAY = dt.timedelta(days=1)


@dataclass
class Issued:
    """A leaf certificate and its key, as files and as PEM bytes."""

    cert_path: Path
    key_path: Path
    chain_path: Path  # leaf followed by the intermediates, what a server presents
    cert_pem: bytes
    key_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jcsh tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(expired: bool, not_yet_valid: bool) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    if expired:
        return now - 30 * _DAY, now - _DAY
    if not_yet_valid:
        return now + _DAY, now + 30 * _DAY
    return now - _DAY, now + 365 * _DAY


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca_cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    path_length: int | None,
) -> x509.Certificate:
    not_before, not_after = _validity(False, False)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after + 3650 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _leaf_cert(
    hostnames: Sequence[str],
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    expired: bool,
    not_yet_valid: bool,
) -> x509.Certificate:
    not_before, not_after = _validity(expired, not_yet_valid)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if hostnames:
        builder = builder.add_extension(x509.SubjectAlternativeName(san_entries(hostnames)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    folder: Path,
    stem: str,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    intermediates: Sequence[x509.Certificate] = (),
) -> Issued:
    folder.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = _pem_cert(cert), _pem_key(key)
    cert_path, key_path, chain_path = folder / f"{stem}.pem", folder / f"{stem}.key", folder / f"{stem}-chain.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    chain_path.write_bytes(cert_pem + b"".join(_pem_cert(c) for c in intermediates))
    return Issued(cert_path, key_path, chain_path, cert_pem, key_pem)


class TestCA:
    """A root CA (and an intermediate made on first need) issuing leaf certificates."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, folder: Path, name: str = "jcsh Test Root CA") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._key = _key()
        self._subject = _name(name)
        self.root = _ca_cert(self._subject, self._key, self._subject, self._key, None)
        self.root_pem: bytes = _pem_cert(self.root)
        self.root_path: Path = self.folder / "root.pem"
        self.root_path.write_bytes(self.root_pem)
        self._intermediate: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None

    def intermediate(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The intermediate CA (created once): certificate and key."""
        if self._intermediate is None:
            key = _key()
            cert = _ca_cert(_name(f"{self.name} Intermediate"), key, self._subject, self._key, 0)
            self._intermediate = (cert, key)
            (self.folder / "intermediate.pem").write_bytes(_pem_cert(cert))
        return self._intermediate

    def issue(
        self,
        hostnames: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
        *,
        expired: bool = False,
        not_yet_valid: bool = False,
        via_intermediate: bool = False,
        name: str | None = None,
    ) -> Issued:
        """A leaf for these names (IP literals become IPAddress SANs), signed by the root or intermediate."""
        key = _key()
        common_name = name or (hostnames[0] if hostnames else "jcsh test leaf")
        if via_intermediate:
            issuer_cert, issuer_key = self.intermediate()
            issuer, chain = issuer_cert.subject, [issuer_cert]
        else:
            issuer, issuer_key, chain = self._subject, self._key, []
        cert = _leaf_cert(
            hostnames, key, _name(common_name), issuer, issuer_key, expired=expired, not_yet_valid=not_yet_valid
        )
        return _write(self.folder, f"leaf-{secrets.token_hex(4)}", cert, key, chain)


def self_signed(
    folder: Path, hostnames: Sequence[str] = ("localhost", "127.0.0.1", "::1"), *, expired: bool = False
) -> Issued:
    """A self-signed leaf (its own issuer, not a CA) for these names."""
    key = _key()
    subject = _name(hostnames[0] if hostnames else "jcsh self-signed")
    cert = _leaf_cert(hostnames, key, subject, subject, key, expired=expired, not_yet_valid=False)
    return _write(Path(folder), f"self-signed-{secrets.token_hex(4)}", cert, key)


def self_signed_der(key: Any, common_name: str = "localhost", *, serial: int | None = None) -> bytes:
    """A minimal self-signed certificate (DER, no extensions) for any key cryptography signs with."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + _DAY)
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)
