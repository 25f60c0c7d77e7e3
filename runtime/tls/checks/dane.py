"""DANE for SMTP (RFC 7672): the TLSA records of `_PORT._tcp.HOST`, matched against the presented chain."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from enum import StrEnum

from jcsh.runtime.records import NamedTuple
from jcsh.runtime.resolver import DEFAULT_LIFETIME, Lookup
from jcsh.runtime.tls.checks.render import shown, table

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DaneStatus",
    "TlsaRecord",
    "DaneResult",
    "TlsaAnswer",
    "tlsa_name",
    "check_dane",
    "fetch_tlsa",
    "judge_tlsa",
    "match_records",
    "render_dane",
]

# RFC 6698 names, for the human table.
USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MATCHING = {0: "Full", 1: "SHA-256", 2: "SHA-512"}
_SMTP_USAGES = (2, 3)  # RFC 7672 3.1.3: PKIX-TA/PKIX-EE records are unusable for SMTP


class DaneStatus(StrEnum):
    """What DANE means for a sender that validates DNSSEC."""

    VERIFIED = "verified"  # authenticated, and a usable record matches the chain
    MISMATCH = "mismatch"  # authenticated usable records, none matches: a DANE sender refuses this server
    UNUSABLE = "unusable"  # authenticated, but no record a DANE sender can use: TLS without authentication
    NOT_APPLICABLE = "does not apply"  # records, but not DNSSEC-authenticated
    NO_RECORDS = "no records"
    ERROR = "error"  # the lookup failed (timeout, SERVFAIL): a DANE sender defers


class TlsaRecord(NamedTuple):
    """One TLSA record and whether it matches the chain (None: no chain to match, or nothing to say)."""

    usage: int
    selector: int
    matching: int
    data: str  # hex, lower case
    matched: bool | None
    note: str | None = None  # why a record cannot count

    @property
    def usable(self) -> bool:
        return self.usage in _SMTP_USAGES and self.selector in SELECTORS and self.matching in MATCHING

    def to_json(self) -> dict[str, Any]:
        return {
            "usage": self.usage,
            "selector": self.selector,
            "matching": self.matching,
            "data": self.data,
            "matched": self.matched,
            "note": self.note,
        }


class DaneResult(NamedTuple):
    """The TLSA lookup of one MX host and port, and each record's verdict."""

    name: str
    authenticated: bool
    records: tuple[TlsaRecord, ...]
    status: DaneStatus
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "authenticated": self.authenticated,
            "status": self.status.value,
            "records": [r.to_json() for r in self.records],
            "error": self.error,
        }


def tlsa_name(host: str, port: int) -> str:
    return f"_{port}._tcp.{host.rstrip('.')}"


class TlsaAnswer(NamedTuple):
    """The TLSA lookup alone, so that it can run while the handshakes do; `failed` when it gave no records."""

    name: str
    authenticated: bool
    raw: tuple[tuple[int, int, int, bytes], ...]
    failed: DaneResult | None = None


def fetch_tlsa(host: str, port: int, *, lifetime: float = DEFAULT_LIFETIME) -> TlsaAnswer:
    """The TLSA records of host:port through $JCSH_NAMESERVERS when set, and whether the answer had AD."""
    name = tlsa_name(host, port)
    found = Lookup(lifetime, dnssec=True).records(name, "TLSA")
    if found.kind is not None:
        if found.kind in ("nxdomain", "no-answer"):
            return TlsaAnswer(name, False, (), DaneResult(name, False, (), DaneStatus.NO_RECORDS))
        return TlsaAnswer(name, False, (), DaneResult(name, False, (), DaneStatus.ERROR, found.message))
    raw = tuple((r.usage, r.selector, r.mtype, bytes(r.cert)) for r in found.records)
    return TlsaAnswer(name, found.authenticated, raw)


def judge_tlsa(answer: TlsaAnswer, chain: Sequence[bytes]) -> DaneResult:
    """Each record of a lookup matched against the chain (DER, leaf first; empty without a handshake)."""
    if answer.failed is not None:
        return answer.failed
    records = match_records(answer.raw, chain)
    return DaneResult(answer.name, answer.authenticated, records, _status(answer.authenticated, records))


def check_dane(host: str, port: int, chain: Sequence[bytes], *, lifetime: float = DEFAULT_LIFETIME) -> DaneResult:
    """Fetch the TLSA records of host:port (through $JCSH_NAMESERVERS when set) and match them to chain.

    chain is DER, leaf first, as the server presented it (empty when there was no handshake).
    """
    return judge_tlsa(fetch_tlsa(host, port, lifetime=lifetime), chain)


def _status(authenticated: bool, records: tuple[TlsaRecord, ...]) -> DaneStatus:
    if not records:
        return DaneStatus.NO_RECORDS
    if not authenticated:
        return DaneStatus.NOT_APPLICABLE
    usable = [r for r in records if r.usable]
    if not usable:
        return DaneStatus.UNUSABLE
    return DaneStatus.VERIFIED if any(r.matched for r in usable) else DaneStatus.MISMATCH


def match_records(raw: Sequence[tuple[int, int, int, bytes]], chain: Sequence[bytes]) -> tuple[TlsaRecord, ...]:
    """Each (usage, selector, matching type, data) judged against chain (DER, leaf first)."""
    certs = _Chain(chain)
    return tuple(_judge(u, s, m, data, certs) for u, s, m, data in raw)


def _judge(usage: int, selector: int, mtype: int, data: bytes, chain: _Chain) -> TlsaRecord:
    hexdata = data.hex()
    if usage not in USAGES:
        return TlsaRecord(usage, selector, mtype, hexdata, None, f"unknown usage {usage}")
    if selector not in SELECTORS:
        return TlsaRecord(usage, selector, mtype, hexdata, None, f"unknown selector {selector}")
    if mtype not in MATCHING:
        return TlsaRecord(usage, selector, mtype, hexdata, None, f"unknown matching type {mtype}")
    note = None if usage in _SMTP_USAGES else f"usage {usage} ({USAGES[usage]}) does not count for SMTP (RFC 7672)"
    if not chain.ders:
        return TlsaRecord(usage, selector, mtype, hexdata, None, note or "no certificate to match")
    if usage in (1, 3):  # end entity: the leaf itself
        matched = _matches(selector, mtype, data, chain, 0)
    else:  # trust anchor: a certificate above the leaf that the chain really leads to
        matched = any(_matches(selector, mtype, data, chain, i) and _links(chain, i) for i in range(1, len(chain.ders)))
    return TlsaRecord(usage, selector, mtype, hexdata, matched, note)


class _Chain:
    """The presented chain, each certificate read by cryptography only when a record needs it.

    cryptography.x509 costs 30-60 ms to import. A DANE-EE record (the usual one for SMTP) needs
    only the leaf's bytes or its SubjectPublicKeyInfo, which certfields.read_spki reads from the
    DER of a certificate it reads whole; cryptography reads the rest, and every chain a DANE-TA
    record must verify.
    """

    def __init__(self, chain: Sequence[bytes]) -> None:
        self.ders = list(chain)
        self._certs: dict[int, Any] = {}
        self._spkis: dict[int, bytes | None] = {}  # read once, however many records ask

    def cert(self, i: int) -> Any:
        """cryptography's Certificate for the i-th, or None when it cannot decode it."""
        if i not in self._certs:
            from cryptography import x509

            try:
                self._certs[i] = x509.load_der_x509_certificate(self.ders[i])
            except (ValueError, x509.InvalidVersion):
                self._certs[i] = None  # an undecodable certificate matches nothing
        return self._certs[i]

    def content(self, i: int, selector: int) -> bytes | None:
        """What a record with this selector hashes: the certificate, or its SubjectPublicKeyInfo (DER)."""
        der = self.ders[i]
        if i not in self._spkis:
            # imported here: fetch_tlsa (this module) starts before any handshake has a chain to read
            from jcsh.runtime.tls.certfields import read_spki

            self._spkis[i] = read_spki(der)
        spki = self._spkis[i]
        if spki is not None:
            return der if selector == 0 else spki
        cert = self.cert(i)
        if cert is None:
            return None
        if selector == 0:
            return der
        Encoding, PublicFormat = _key_formats()
        return bytes(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def _matches(selector: int, mtype: int, data: bytes, chain: _Chain, i: int) -> bool:
    content = chain.content(i, selector)
    if content is None:
        return False
    if mtype == 1:
        content = hashlib.sha256(content).digest()
    elif mtype == 2:
        content = hashlib.sha512(content).digest()
    return content == data


def _key_formats() -> tuple[Any, Any]:
    """cryptography's Encoding and PublicFormat enums, without importing its serialization package.

    The package's __init__ also imports its SSH key module (dataclasses, the cipher modules:
    ~10 ms); the enums live in `_serialization`, which cryptography.x509 has already loaded.
    """
    try:
        from cryptography.hazmat.primitives._serialization import Encoding, PublicFormat
    except ImportError:  # a cryptography that moved them: the public names are the same enums
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return Encoding, PublicFormat


def _links(chain: _Chain, upto: int) -> bool:
    """Whether each certificate up to the anchor at `upto` is signed by the next one."""
    certs = [chain.cert(i) for i in range(upto + 1)]
    if any(c is None for c in certs):
        return False
    for child, parent in itertools.pairwise(certs):
        try:
            child.verify_directly_issued_by(parent)
        except Exception:  # InvalidSignature, a name mismatch and unsupported key types alike
            return False
    return True


def render_dane(result: DaneResult) -> list[str]:
    """The human lines: a verdict, then one aligned row per record."""
    verdicts = {
        DaneStatus.VERIFIED: "verified: a TLSA record matches the certificate",
        DaneStatus.MISMATCH: "MISMATCH: no TLSA record matches; a DANE sender will not deliver here",
        DaneStatus.UNUSABLE: "no usable TLSA record (usages 2 and 3 count for SMTP): TLS without authentication",
        DaneStatus.NOT_APPLICABLE: "does not apply: the TLSA answer is not DNSSEC-authenticated (no AD bit)",
        DaneStatus.NO_RECORDS: f"no TLSA records at {result.name}",
        DaneStatus.ERROR: f"lookup failed: {shown(result.error or '')}",
    }
    lines = [f"dane       {verdicts[result.status]}"]
    rows = []
    for r in result.records:
        data = r.data if len(r.data) <= 24 else r.data[:20] + "..."
        verdict = {True: "matches", False: "no match", None: "-"}[r.matched]
        names = (USAGES.get(r.usage), SELECTORS.get(r.selector), MATCHING.get(r.matching))
        kind = " ".join(n or "?" for n in names)
        rows.append(["", f"{r.usage} {r.selector} {r.matching}", kind, data, verdict, shown(r.note or "")])
    if rows:
        lines += table(rows).splitlines()
    return lines
