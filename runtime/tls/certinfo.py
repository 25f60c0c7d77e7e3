"""Certificate summaries and host-name matching: plain DER read by certfields, the rest by cryptography."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime

from jcsh.runtime.hosts import bare_host
from jcsh.runtime.tls.certfields import CertFields, read_fields, rfc4514

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from cryptography import x509

__all__ = ["summarize", "hostname_matches", "subject_names", "examine"]

# cryptography.x509 costs 30-60 ms to import: it is imported only for a certificate that
# runtime/tls/certfields.py does not read (an uncommon key, name or extension, or broken DER).


def _load(der: bytes) -> x509.Certificate:
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as e:  # InvalidVersion (a v2 certificate) is no ValueError
        raise ValueError(f"not a DER certificate: {e}") from None


def examine(chain: Sequence[bytes], host: str) -> tuple[list[dict[str, Any]], bool]:
    """The summary of each certificate of a chain, and whether the first is valid for `host`;
    each certificate read once (a leaf is summarized, listed in the chain and matched)."""
    read: dict[bytes, CertFields | None] = {}
    for der in chain:
        if der not in read:
            read[der] = read_fields(der)
    summaries = [summarize(der, read[der]) for der in chain]
    return summaries, hostname_matches(chain[0], host, read[chain[0]])


def summarize(der: bytes, fields: CertFields | None = None) -> dict[str, Any]:
    """Subject, issuer, SANs, validity, days left, key, signature algorithm and SHA-256 of a DER cert."""
    fields = fields or read_fields(der)
    if fields is None:
        return _summarize(der)
    import hashlib

    not_after = fields.not_after
    return {
        "subject": rfc4514(fields.subject),
        "issuer": rfc4514(fields.issuer),
        "sans": [str(n) for n in fields.san or ()],
        "not_before": fields.not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": (not_after - datetime.now(UTC)).days,
        "self_signed": fields.subject == fields.issuer,  # single-valued RDNs: cryptography's Name equality
        "key_type": fields.key_type,
        "key_size": fields.key_size,
        "signature_algorithm": fields.signature_algorithm,
        "sha256": hashlib.sha256(der).digest().hex(":").upper(),
    }


def _summarize(der: bytes) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes

    cert = _load(der)
    now = datetime.now(UTC)
    not_after = cert.not_valid_after_utc
    key_type, key_size = _key(cert)
    oid = cert.signature_algorithm_oid
    # cryptography names OIDs as OpenSSL prints them ("sha256WithRSAEncryption") only privately.
    sig_name = getattr(oid, "_name", None) or oid.dotted_string
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": subject_names(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": (not_after - now).days,
        "self_signed": cert.subject == cert.issuer,
        "key_type": key_type,
        "key_size": key_size,
        "signature_algorithm": sig_name,
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    }


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # a key OpenSSL took that cryptography cannot load
        return "unknown", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, None


def subject_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses in the subjectAltName extension."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def hostname_matches(der: bytes, host: str, fields: CertFields | None = None) -> bool:
    """Whether the certificate is valid for `host` (RFC 6125: SANs, left-most wildcard; CN only without SANs)."""
    host = bare_host(host)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    fields = fields or read_fields(der)
    if fields is not None:
        san = fields.san
        if ip is not None:
            return san is not None and ip in san
        if san is not None:
            dns = [n for n in san if isinstance(n, str)]
        else:
            dns = [value for oid, value in fields.subject if oid == "2.5.4.3"]
        return any(_dns_match(pattern, host) for pattern in dns)
    return _hostname_matches(der, host, ip)


def _hostname_matches(der: bytes, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = _load(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if ip is not None:
        return san is not None and ip in san.get_values_for_type(x509.IPAddress)
    if san is not None:
        dns = san.get_values_for_type(x509.DNSName)
    else:
        dns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return any(_dns_match(pattern, host) for pattern in dns)


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.rstrip(".").lower(), host.rstrip(".").lower()
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    # A wildcard covers exactly one left-most label, never a bare suffix.
    head, _, rest = host.partition(".")
    return bool(head) and rest == pattern[2:] and "." in rest
