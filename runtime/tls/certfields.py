"""The fields a certificate summary shows, read from plain DER without cryptography; None when unsure."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from jcsh.runtime.records import NamedTuple

__all__ = ["CertFields", "read_fields", "read_spki", "rfc4514"]

# Why this module: `cryptography.x509` takes 30-60 ms to import, as long as the rest of a probe.
# It reads the common certificate (RSA, P-256/384/521, Ed25519/Ed448 keys; single-valued names in
# the usual string types; DNS/IP/e-mail/URI subjectAltNames) exactly as cryptography does;
# anything else (and anything not strictly DER) is left to cryptography: read_fields() says None.
# tests/test_tls_certfields.py holds the two readers equal on generated and system certificates.

# RFC 4514's short names, the ones cryptography's rfc4514_string() uses; others print dotted.
_SHORT = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# cryptography warns (on stderr) about these lengths, counted in UTF-8 bytes: left to it.
_LENGTHS = {"2.5.4.3": (1, 64), "2.5.4.6": (2, 2), "1.3.6.1.4.1.311.60.2.1.3": (2, 2)}
# Directory string types: UTF8, Numeric, Printable, T61, IA5, Visible read as UTF-8, as cryptography does.
_CODECS = {
    12: "utf-8",
    18: "utf-8",
    19: "utf-8",
    20: "utf-8",
    22: "utf-8",
    26: "utf-8",
    30: "utf_16_be",
    28: "utf_32_be",
}
# Signature algorithms by the names cryptography gives them (ObjectIdentifier._name).
_SIGNATURES = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ed25519",
    "1.3.101.113": "ed448",
}
_RSA = "1.2.840.113549.1.1.1"
_EC = "1.2.840.10045.2.1"
_ED = {"1.3.101.112": ("Ed25519", 256, 32), "1.3.101.113": ("Ed448", 456, 57)}
# Named curves: name, size in bits, and p, b of y^2 = x^3 - 3x + b (cryptography's key loading
# rejects a point off the curve, so this reader checks it too).
_CURVES = {
    "1.2.840.10045.3.1.7": (
        "secp256r1",
        256,
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    "1.3.132.0.34": (
        "secp384r1",
        384,
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    ),
    "1.3.132.0.35": (
        "secp521r1",
        521,
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
    ),
}
_SAN = "2.5.29.17"

Name = tuple[tuple[str, str], ...]  # (OID, value) per relative distinguished name, as encoded


class CertFields(NamedTuple):
    subject: Name
    issuer: Name
    not_before: datetime
    not_after: datetime
    key_type: str
    key_size: int
    signature_algorithm: str
    san: (
        tuple[str | ipaddress.IPv4Address | ipaddress.IPv6Address, ...] | None
    )  # DNS names, then IPs; None: no extension


class _Unsure(Exception):
    """Not the plain DER this reader knows: cryptography decides."""


def read_fields(der: bytes) -> CertFields | None:
    """The summary fields of a DER certificate, or None when only cryptography can say."""
    try:
        return _certificate(der)[0]
    except (_Unsure, ValueError, IndexError):
        return None


def read_spki(der: bytes) -> bytes | None:
    """The SubjectPublicKeyInfo (DER) of a v3 certificate read_fields reads, as cryptography writes it; else None.

    The keys read here (RSA with NULL parameters and minimal positive integers, a named curve's
    uncompressed point, Ed25519/Ed448) have one DER form, so cryptography's public_bytes() gives
    the certificate's own bytes (tests/test_tls_dane.py holds the two equal). v1 certificates are
    left to cryptography, as DANE's SPKI selector always left them.
    """
    try:
        return _certificate(der)[1]
    except (_Unsure, ValueError, IndexError):
        return None


def rfc4514(name: Name) -> str:
    """The name as cryptography's Name.rfc4514_string() writes it (last RDN first)."""
    return ",".join(f"{_SHORT.get(oid, oid)}={_escape(value)}" for oid, value in reversed(name))


def _escape(val: str) -> str:
    # cryptography's _escape_dn_value, character for character
    if not val:
        return ""
    for c in '\\"+,;<>':
        val = val.replace(c, "\\" + c)
    val = val.replace("\0", "\\00")
    if val[0] == "#" or (val[0] == " " and len(val) > 1):
        val = "\\" + val
    if val[-1] == " ":
        val = val[:-1] + "\\ "
    return val


def _tlv(buf: bytes, i: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the element at i; strict DER lengths."""
    if i + 2 > end:
        raise _Unsure
    tag, n = buf[i], buf[i + 1]
    if tag & 0x1F == 0x1F:
        raise _Unsure  # a high tag number: none in what this reads
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 3 or i + k > end or buf[i] == 0:
            raise _Unsure  # indefinite (BER), oversized or padded
        n = int.from_bytes(buf[i : i + k], "big")
        if n < 0x80:
            raise _Unsure  # the long form where the short one fits: not DER
        i += k
    if i + n > end:
        raise _Unsure
    return tag, i, i + n


def _items(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, s, e = _tlv(buf, start, end)
        out.append((tag, s, e))
        start = e
    return out


def _expect(item: tuple[int, int, int], tag: int) -> tuple[int, int]:
    if item[0] != tag:
        raise _Unsure
    return item[1], item[2]


def _oid(b: bytes) -> str:
    if not b or b[-1] & 0x80:
        raise _Unsure
    arcs: list[int] = []
    value, fresh = 0, True
    for byte in b:
        if fresh and byte == 0x80:
            raise _Unsure  # a padded sub-identifier
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return ".".join(map(str, (*head, *arcs[1:])))


def _positive(b: bytes) -> int:
    """A DER INTEGER that must be positive and minimally encoded."""
    if not b or b[0] & 0x80 or (len(b) > 1 and b[0] == 0 and not b[1] & 0x80):
        raise _Unsure
    value = int.from_bytes(b, "big")
    if value == 0:
        raise _Unsure
    return value


def _certificate(der: bytes) -> tuple[CertFields, bytes | None]:
    """The fields, and the SubjectPublicKeyInfo's DER of a v3 certificate."""
    tag, s, e = _tlv(der, 0, len(der))
    if tag != 0x30 or e != len(der):
        raise _Unsure
    parts = _items(der, s, e)
    if len(parts) != 3 or parts[1][0] != 0x30 or parts[2][0] != 0x03:
        raise _Unsure
    tbs = _items(der, *_expect(parts[0], 0x30))
    outer_alg = der[parts[1][1] : parts[1][2]]
    i = 0
    if tbs[0][0] == 0xA0:  # [0] EXPLICIT version; v3 only (v1 is encoded by its absence in DER)
        inner = _items(der, tbs[0][1], tbs[0][2])
        if len(inner) != 1 or inner[0][0] != 0x02 or der[inner[0][1] : inner[0][2]] != b"\x02":
            raise _Unsure
        i = 1
    v3 = i == 1
    rest = tbs[i:]
    if len(rest) < 6:
        raise _Unsure
    serial, alg, issuer, validity, subject, spki = rest[:6]
    if not 0 < serial[2] - serial[1] <= 21:
        raise _Unsure  # RFC 5280: at most 20 octets (and a sign byte)
    _positive(der[slice(*_expect(serial, 0x02))])
    if der[slice(*_expect(alg, 0x30))] != outer_alg:
        raise _Unsure
    extensions = rest[6:]
    san: tuple[str | ipaddress.IPv4Address | ipaddress.IPv6Address, ...] | None = None
    if extensions:
        if not v3 or len(extensions) != 1 or extensions[0][0] != 0xA3:
            raise _Unsure  # unique identifiers, or extensions outside v3
        san = _extensions(der, extensions[0])
    alg_items = _items(der, *_expect(parts[1], 0x30))
    signature = _SIGNATURES.get(_oid(der[slice(*_expect(alg_items[0], 0x06))]))
    if signature is None:
        raise _Unsure
    times = _items(der, *_expect(validity, 0x30))
    if len(times) != 2:
        raise _Unsure
    key_type, key_size = _key(der, spki)
    fields = CertFields(
        subject=_name(der, subject),
        issuer=_name(der, issuer),
        not_before=_time(der, times[0]),
        not_after=_time(der, times[1]),
        key_type=key_type,
        key_size=key_size,
        signature_algorithm=signature,
        san=san,
    )
    return fields, der[subject[2] : spki[2]] if v3 else None  # the element starts where subject ends


def _name(der: bytes, item: tuple[int, int, int]) -> Name:
    out = []
    for rdn in _items(der, *_expect(item, 0x30)):
        attributes = _items(der, *_expect(rdn, 0x31))
        if len(attributes) != 1:
            raise _Unsure  # empty or multi-valued: DER's SET ordering is cryptography's to judge
        pair = _items(der, *_expect(attributes[0], 0x30))
        if len(pair) != 2:
            raise _Unsure
        oid = _oid(der[slice(*_expect(pair[0], 0x06))])
        tag, s, e = pair[1]
        codec = _CODECS.get(tag)
        if codec is None:
            raise _Unsure
        raw = der[s:e]
        value = raw.decode(codec)  # UnicodeDecodeError is a ValueError: unsure
        limits = _LENGTHS.get(oid)
        if limits is not None and not limits[0] <= len(value.encode("utf-8")) <= limits[1]:
            raise _Unsure
        out.append((oid, value))
    return tuple(out)


def _time(der: bytes, item: tuple[int, int, int]) -> datetime:
    tag, s, e = item
    text = der[s:e]
    if tag == 0x17 and len(text) == 13:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000
        body = text[2:12]
    elif tag == 0x18 and len(text) == 15:  # GeneralizedTime YYYYMMDDHHMMSSZ
        year = int(text[:4])
        body = text[4:14]
    else:
        raise _Unsure
    if not text[:-1].isdigit() or text[-1:] != b"Z":
        raise _Unsure
    month, day, hour, minute, second = (int(body[k : k + 2]) for k in range(0, 10, 2))
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)  # ValueError: unsure


def _key(der: bytes, item: tuple[int, int, int]) -> tuple[str, int]:
    spki = _items(der, *_expect(item, 0x30))
    if len(spki) != 2:
        raise _Unsure
    alg = _items(der, *_expect(spki[0], 0x30))
    s, e = _expect(spki[1], 0x03)
    if e - s < 2 or der[s] != 0:
        raise _Unsure  # a key BIT STRING has no unused bits
    key = der[s + 1 : e]
    oid = _oid(der[slice(*_expect(alg[0], 0x06))])
    params = alg[1:]
    if oid == _RSA:
        if len(params) != 1 or params[0][0] != 0x05 or params[0][1] != params[0][2]:
            raise _Unsure
        seq = _items(key, 0, len(key))
        if len(seq) != 1 or seq[0][2] != len(key):
            raise _Unsure
        numbers = _items(key, *_expect(seq[0], 0x30))
        if len(numbers) != 2:
            raise _Unsure
        modulus = _positive(key[slice(*_expect(numbers[0], 0x02))])
        _positive(key[slice(*_expect(numbers[1], 0x02))])
        bits = modulus.bit_length()
        if not 1024 <= bits <= 16384:
            raise _Unsure
        return "RSA", bits
    if oid == _EC:
        if len(params) != 1:
            raise _Unsure
        curve = _CURVES.get(_oid(der[slice(*_expect(params[0], 0x06))]))
        if curve is None:
            raise _Unsure
        name, bits, p, b = curve
        size = (bits + 7) // 8
        if len(key) != 1 + 2 * size or key[0] != 4:
            raise _Unsure  # compressed points are cryptography's to judge
        x, y = int.from_bytes(key[1 : 1 + size], "big"), int.from_bytes(key[1 + size :], "big")
        if x >= p or y >= p or (y * y - (x * x * x - 3 * x + b)) % p:
            raise _Unsure
        return f"EC {name}", bits
    if oid in _ED:
        name, bits, length = _ED[oid]
        if params or len(key) != length:
            raise _Unsure
        return name, bits
    raise _Unsure


def _extensions(
    der: bytes, item: tuple[int, int, int]
) -> tuple[str | ipaddress.IPv4Address | ipaddress.IPv6Address, ...] | None:
    """The DNS names and IP addresses of subjectAltName (None without one)."""
    inner = _items(der, item[1], item[2])
    if len(inner) != 1:
        raise _Unsure
    seen: set[str] = set()
    san = None
    entries = _items(der, *_expect(inner[0], 0x30))
    if not entries:
        raise _Unsure
    for entry in entries:
        fields = _items(der, *_expect(entry, 0x30))
        oid = _oid(der[slice(*_expect(fields[0], 0x06))])
        if oid in seen:
            raise _Unsure  # cryptography refuses duplicates
        seen.add(oid)
        if len(fields) == 3:
            if fields[1][0] != 0x01 or der[fields[1][1] : fields[1][2]] != b"\xff":
                raise _Unsure  # critical is TRUE or absent in DER
        elif len(fields) != 2:
            raise _Unsure
        s, e = _expect(fields[-1], 0x04)
        if oid == _SAN:
            san = _general_names(der[s:e])
    return san


def _general_names(value: bytes) -> tuple[str | ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    seq = _items(value, 0, len(value))
    if len(seq) != 1:
        raise _Unsure
    names = _items(value, *_expect(seq[0], 0x30))
    if not names:
        raise _Unsure
    out: list[str | ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for tag, s, e in names:
        raw = value[s:e]
        if tag in (0x81, 0x82, 0x86):  # rfc822Name, dNSName, URI: IA5String
            if not raw.isascii():
                raise _Unsure
            if tag == 0x82:
                out.append(raw.decode("ascii"))
        elif tag == 0x87 and len(raw) in (4, 16):
            out.append(ipaddress.ip_address(raw))
        else:
            raise _Unsure  # otherName, directoryName and the rest: cryptography's to read
    # cryptography lists DNS names first, then IP addresses (get_values_for_type per type)
    return tuple([n for n in out if isinstance(n, str)] + [n for n in out if not isinstance(n, str)])
