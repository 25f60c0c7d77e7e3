"""A Java trust store (JKS, JCEKS or keytool's PKCS12) and whether a JVM using it would trust a presented chain."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jcsh.runtime.errors import UsageError
from jcsh.runtime.tls.checks.render import shown

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["TrustStore", "TruststoreResult", "load_truststore", "verify_chain", "render_truststore", "DEFAULT_PASSWORD"]

DEFAULT_PASSWORD = "changeit"  # a JVM's cacerts, as shipped
_MAX_STORE_BYTES = 32 * 1024 * 1024  # cacerts is ~200 KB; anything this large is not a trust store
_MAX_DEPTH = 10
_JKS_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")  # JKS, JCEKS


@dataclass(frozen=True)
class TrustStore:
    """The trusted certificate entries of one store file, by alias."""

    file: str
    kind: str  # "JKS" | "JCEKS" | "PKCS12"
    entries: tuple[tuple[str, x509.Certificate], ...]
    other_certificates: int = 0  # certificates a JVM does not take as trusted (no trust attribute, key chains)


@dataclass(frozen=True)
class TruststoreResult:
    """Whether a JVM using the store would trust the chain, and why (one line)."""

    file: str
    trusted: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "trusted": self.trusted, "reason": self.reason}


def load_truststore(path: str | Path, password: str | None = None) -> TrustStore:
    """Read a trust store; UsageError (exit 2) with the reason when it is unreadable or the password is wrong."""
    path = Path(path)
    password = DEFAULT_PASSWORD if password is None else password
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_STORE_BYTES + 1)
    except OSError as e:
        raise UsageError(f"cannot read the trust store {path}: {e.strerror or e}") from None
    if len(data) > _MAX_STORE_BYTES:
        raise UsageError(f"{path} is larger than {_MAX_STORE_BYTES // 1024 // 1024} MiB: not a trust store")
    if data[:4] in _JKS_MAGIC:
        return _load_jks(path, data, password)
    return _load_pkcs12(path, data, password)


def _load_jks(path: Path, data: bytes, password: str) -> TrustStore:
    import jks

    try:
        store = jks.KeyStore.loads(data, password, try_decrypt_keys=False)
    except jks.util.KeystoreSignatureException:
        raise UsageError(f"wrong password for the trust store {path} (its integrity check fails)") from None
    except (jks.util.KeystoreException, ValueError, EOFError, IndexError) as e:
        raise UsageError(f"{path} is a damaged {data[:4].hex()} key store: {e}") from None
    entries = []
    for alias, entry in sorted(store.certs.items()):
        cert = _certificate(entry.cert)
        if cert is not None:
            entries.append((alias, cert))
    keys = sum(len(e.cert_chain) for e in store.private_keys.values())
    return TrustStore(str(path), store.store_type.upper(), tuple(entries), keys)


def _load_pkcs12(path: Path, data: bytes, password: str) -> TrustStore:
    from cryptography.hazmat.primitives.serialization import pkcs12

    from jcsh.runtime.tls.checks.pkcs12_trust import Unreadable, java_trusted_certificates

    try:
        loaded = pkcs12.load_pkcs12(data, password.encode("utf-8"))
    except ValueError:
        try:
            pkcs12.load_pkcs12(data, None)
        except ValueError as e:
            if "password" not in str(e).lower():
                raise UsageError(f"{path} is neither a Java KeyStore (JKS) nor a PKCS12 file") from None
        raise UsageError(f"wrong password for the trust store {path} (or the file is damaged)") from None
    try:
        trusted = set(java_trusted_certificates(data, password))
    except Unreadable as e:
        raise UsageError(f"cannot read the trusted entries of {path}: {e}") from None
    from cryptography.hazmat.primitives.serialization import Encoding

    entries = []
    others = 0
    for bag in loaded.additional_certs:
        if bag.certificate.public_bytes(Encoding.DER) in trusted:
            alias = bag.friendly_name.decode("utf-8", "replace") if bag.friendly_name else "(no alias)"
            entries.append((alias, bag.certificate))
        else:
            others += 1
    others += 1 if loaded.cert is not None else 0
    return TrustStore(str(path), "PKCS12", tuple(sorted(entries, key=lambda e: e[0])), others)


def _certificate(der: bytes) -> x509.Certificate | None:
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def verify_chain(store: TrustStore, chain: Sequence[bytes], *, now: dt.datetime | None = None) -> TruststoreResult:
    """Whether the chain (DER, leaf first) leads, by valid signatures, to one of the store's trusted entries.

    As a JVM's PKIX trust manager: any trusted entry is an anchor (an intermediate too), the anchor's own
    dates do not count, every other certificate on the path must be within its validity. Host names
    are not checked here.
    """
    from cryptography import x509

    name = Path(store.file).name
    if not chain:
        return TruststoreResult(store.file, False, "the server presented no certificate")
    try:
        presented = [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError:
        return TruststoreResult(store.file, False, "the server's certificates cannot be decoded")
    if not store.entries:
        n = store.other_certificates
        why = "without Java's trust attribute" if store.kind == "PKCS12" else "in key entries, not trusted entries"
        hint = f" ({n} certificates {why}: import the CA with keytool -importcert)" if n else ""
        return TruststoreResult(store.file, False, f"{name} holds no trusted certificate entry{hint}")
    now = now or dt.datetime.now(dt.UTC)
    current = presented[0]
    path = [current]
    while len(path) <= _MAX_DEPTH:
        anchor = _anchor_for(store, current)
        if anchor is not None:
            return _judge_path(store, path, anchor, now)
        issuer = next((c for c in presented[1:] if c not in path and _issued_by(current, c)), None)
        if issuer is None:
            return TruststoreResult(store.file, False, _missing_issuer(current, name))
        path.append(issuer)
        current = issuer
    return TruststoreResult(store.file, False, f"the chain is longer than {_MAX_DEPTH} certificates")


def _anchor_for(store: TrustStore, cert: x509.Certificate) -> tuple[str, x509.Certificate, bool] | None:
    """(alias, anchor, whether cert *is* the anchor) when cert is a trusted entry or signed by one."""
    for alias, anchor in store.entries:
        if anchor == cert or (anchor.subject == cert.subject and anchor.public_key() == cert.public_key()):
            return alias, anchor, True
    for alias, anchor in store.entries:
        if _issued_by(cert, anchor):
            return alias, anchor, False
    return None


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except Exception:  # a name mismatch, a bad signature, a key type that cannot sign: all "not its issuer"
        return False
    return True


def _judge_path(
    store: TrustStore, path: list[x509.Certificate], anchor: tuple[str, x509.Certificate, bool], now: dt.datetime
) -> TruststoreResult:
    alias, cert, is_anchor = anchor
    checked = path[:-1] if is_anchor else path  # the anchor's own dates do not count
    for c in checked:
        if c.not_valid_after_utc < now:
            when = c.not_valid_after_utc.date().isoformat()
            return TruststoreResult(store.file, False, f"certificate {c.subject.rfc4514_string()} expired on {when}")
        if c.not_valid_before_utc > now:
            when = c.not_valid_before_utc.date().isoformat()
            return TruststoreResult(
                store.file, False, f"certificate {c.subject.rfc4514_string()} is valid only from {when}"
            )
    where = f"'{alias}' ({cert.subject.rfc4514_string()}) of {Path(store.file).name}"
    return TruststoreResult(store.file, True, f"the chain ends in trusted entry {where}")


def _missing_issuer(cert: x509.Certificate, name: str) -> str:
    if cert.issuer == cert.subject:
        return f"the self-signed certificate {cert.subject.rfc4514_string()} is not in {name}"
    return f"issuer {cert.issuer.rfc4514_string()} is not in {name}"


def render_truststore(result: TruststoreResult) -> list[str]:
    verdict = "would trust" if result.trusted else "would NOT trust"
    return [f"truststore the scheduler's JVM {verdict} this server: {shown(result.reason)}"]
