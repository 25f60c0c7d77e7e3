"""Which certificates of a PKCS12 file a JVM takes as trusted entries: those keytool marks with Oracle's attribute.

cryptography decrypts and verifies the store but does not show bag attributes, so the certificate
bags are read here with pyasn1's RFC 7292 structures; the decryption schemes are the ones keytool
and OpenSSL write: PBES2 (PBKDF2 + AES-CBC, keytool since JDK 17) and the PKCS#12 PBEs (RC2-40,
3DES) of older JDKs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["java_trusted_certificates", "TRUSTED_KEY_USAGE"]

# Oracle's "trusted key usage" bag attribute: keytool -importcert sets it on a trusted certificate entry.
TRUSTED_KEY_USAGE = "2.16.840.1.113894.746875.1.1"
_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_SHA1_3DES = "1.2.840.113549.1.12.1.3"
_SHA1_RC2_40 = "1.2.840.113549.1.12.1.6"
_SHA1_RC2_128 = "1.2.840.113549.1.12.1.5"
_AES_CBC = {"2.16.840.1.101.3.4.1.2": 16, "2.16.840.1.101.3.4.1.22": 24, "2.16.840.1.101.3.4.1.42": 32}
_PRF = {
    "1.2.840.113549.2.7": "SHA1",
    "1.2.840.113549.2.9": "SHA256",
    "1.2.840.113549.2.10": "SHA384",
    "1.2.840.113549.2.11": "SHA512",
}


class Unreadable(ValueError):
    """The file is not PKCS12, or uses a scheme this reader does not know; the message says which."""


def java_trusted_certificates(data: bytes, password: str) -> list[bytes]:
    """DER of every certificate bag carrying the trusted-key-usage attribute (password already checked)."""
    from pyasn1.codec.der import decoder
    from pyasn1.error import PyAsn1Error
    from pyasn1.type import univ
    from pyasn1_modules import rfc5652, rfc7292

    try:
        pfx, _ = decoder.decode(data, asn1Spec=rfc7292.PFX())
        content = pfx["authSafe"]
        if str(content["contentType"]) != _DATA:
            raise Unreadable("the store is not password-integrity protected PKCS12")
        octets, _ = decoder.decode(content["content"], asn1Spec=univ.OctetString())
        safe, _ = decoder.decode(bytes(octets), asn1Spec=rfc7292.AuthenticatedSafe())
        found: list[bytes] = []
        for info in safe:
            kind = str(info["contentType"])
            if kind == _DATA:
                inner, _ = decoder.decode(info["content"], asn1Spec=univ.OctetString())
                plain = bytes(inner)
            elif kind == _ENCRYPTED_DATA:
                enc, _ = decoder.decode(info["content"], asn1Spec=rfc5652.EncryptedData())
                plain = _decrypt(enc["encryptedContentInfo"], password)
            else:
                continue  # enveloped (public-key) safes never hold Java trust entries
            bags, _ = decoder.decode(plain, asn1Spec=rfc7292.SafeContents())
            found += _trusted_in(bags)
        return found
    except PyAsn1Error as e:
        raise Unreadable(f"not a PKCS12 store ({e.__class__.__name__})") from None


def _trusted_in(bags: Any) -> list[bytes]:
    from pyasn1.codec.der import decoder
    from pyasn1_modules import rfc7292

    out = []
    for bag in bags:
        if str(bag["bagId"]) != _CERT_BAG:
            continue
        attributes = {str(a["attrType"]) for a in bag["bagAttributes"]} if bag["bagAttributes"].isValue else set()
        if TRUSTED_KEY_USAGE not in attributes:
            continue
        cert_bag, _ = decoder.decode(bag["bagValue"], asn1Spec=rfc7292.CertBag())
        if str(cert_bag["certId"]) == "1.2.840.113549.1.9.22.1":  # x509Certificate
            value, _ = decoder.decode(cert_bag["certValue"])
            out.append(bytes(value))
    return out


def _decrypt(info: Any, password: str) -> bytes:
    from pyasn1.codec.der import decoder
    from pyasn1_modules import rfc7292, rfc8018

    algorithm = info["contentEncryptionAlgorithm"]
    oid = str(algorithm["algorithm"])
    ciphertext = bytes(info["encryptedContent"])
    if oid == _PBES2:
        params, _ = decoder.decode(algorithm["parameters"], asn1Spec=rfc8018.PBES2_params())
        kdf, scheme = params["keyDerivationFunc"], params["encryptionScheme"]
        if str(kdf["algorithm"]) != _PBKDF2 or str(scheme["algorithm"]) not in _AES_CBC:
            raise Unreadable(f"the store uses PBES2 with {kdf['algorithm']}/{scheme['algorithm']}, not PBKDF2/AES")
        kdf_params, _ = decoder.decode(kdf["parameters"], asn1Spec=rfc8018.PBKDF2_params())
        prf = str(kdf_params["prf"]["algorithm"]) if kdf_params["prf"].isValue else "1.2.840.113549.2.7"
        iv, _ = decoder.decode(scheme["parameters"])
        key = _pbkdf2(
            password.encode("utf-8"),
            bytes(kdf_params["salt"]["specified"]),
            int(kdf_params["iterationCount"]),
            _AES_CBC[str(scheme["algorithm"])],
            _PRF.get(prf, ""),
        )
        return _cbc("AES", key, bytes(iv), ciphertext)
    if oid in (_SHA1_3DES, _SHA1_RC2_40, _SHA1_RC2_128):
        import hashlib

        from jks.rfc7292 import PURPOSE_IV_MATERIAL, PURPOSE_KEY_MATERIAL, derive_key

        params, _ = decoder.decode(algorithm["parameters"], asn1Spec=rfc7292.Pkcs_12PbeParams())
        salt, rounds = bytes(params["salt"]), int(params["iterations"])
        size = {_SHA1_3DES: 24, _SHA1_RC2_40: 5, _SHA1_RC2_128: 16}[oid]
        key = derive_key(hashlib.sha1, PURPOSE_KEY_MATERIAL, password, salt, rounds, size)
        iv = derive_key(hashlib.sha1, PURPOSE_IV_MATERIAL, password, salt, rounds, 8)
        return _cbc("3DES" if oid == _SHA1_3DES else "RC2", key, iv, ciphertext)
    raise Unreadable(f"the store's certificates are encrypted with {oid}, which this reader does not know")


def _pbkdf2(password: bytes, salt: bytes, rounds: int, size: int, prf: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    if not prf:
        raise Unreadable("the store's PBKDF2 uses an unknown hash")
    return PBKDF2HMAC(getattr(hashes, prf)(), size, salt, rounds).derive(password)


def _cbc(cipher: str, key: bytes, iv: bytes, data: bytes) -> bytes:
    if cipher == "RC2":  # OpenSSL 3 (and so cryptography) dropped 40-bit RC2; older JDKs wrote it
        from Cryptodome.Cipher import ARC2

        plain = ARC2.new(key, ARC2.MODE_CBC, iv=iv, effective_keylen=len(key) * 8).decrypt(data)  # type: ignore[call-arg]
    else:
        from cryptography.hazmat.primitives.ciphers import Cipher, modes

        if cipher == "AES":
            from cryptography.hazmat.primitives.ciphers.algorithms import AES as algorithm
        else:
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES as algorithm  # type: ignore[assignment]
        decryptor = Cipher(algorithm(key), modes.CBC(iv)).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1] if plain else 0
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise Unreadable("the store's certificates do not decrypt with this password")
    return plain[:-pad]
