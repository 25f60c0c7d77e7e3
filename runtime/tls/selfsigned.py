"""A self-signed certificate (EC P-256) for a local server such as `jcsh sink`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["generate_self_signed", "ensure_self_signed", "san_entries", "DEFAULT_NAMES"]

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def san_entries(names: Sequence[str]) -> list[Any]:
    """Subject alternative names: IP literals (v4, v6, bracketed or not) as IPAddress, the rest DNSName."""
    from cryptography import x509

    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name.strip("[]"))))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def generate_self_signed(
    folder: Path, names: Sequence[str] = DEFAULT_NAMES, *, days: int = 30, stem: str = "sink"
) -> tuple[Path, Path]:
    """Write `<stem>.pem` and `<stem>.key` (0600) into folder for these names; return (cert, key) paths.

    IP literals become IPAddress SANs, everything else DNSName; the first name is the subject CN.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not names:
        raise ValueError("a certificate needs at least one name")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jcsh sink"), x509.NameAttribute(NameOID.COMMON_NAME, names[0])]
    )
    sans = san_entries(names)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    # Create the key file 0600 from the start: it must never be readable by others, even briefly.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


def ensure_self_signed(
    folder: Path, names: Sequence[str] = DEFAULT_NAMES, *, days: int = 365, stem: str = "sink"
) -> tuple[Path, Path, bool]:
    """Reuse `<stem>.pem`/`.key` in folder while valid for a day more and covering names, else generate.

    Returns (cert, key, created). Reuse keeps a certificate that was already trusted as a credential.
    """
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    if cert_path.is_file() and key_path.is_file() and _still_good(cert_path, names):
        return cert_path, key_path, False
    return (*generate_self_signed(folder, names, days=days, stem=stem), True)


def _still_good(cert_path: Path, names: Sequence[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, OSError, x509.ExtensionNotFound):
        return False
    present = {str(v) for v in sans.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in sans.get_values_for_type(x509.IPAddress)}
    wanted = {str(ipaddress.ip_address(n.strip("[]"))) if _is_ip(n) else n for n in names}
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return wanted <= present and left > dt.timedelta(days=1)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
