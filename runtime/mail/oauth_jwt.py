"""JWTs around OAuth: the signed client assertion of a certificate credential, and a token's claims."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from jcsh.runtime.credentials import Secret
from jcsh.runtime.errors import UsageError

__all__ = ["ClientCertificate", "ASSERTION_TYPE", "jwt_claims"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # seconds: long enough for a slow clock, short enough to be useless if stolen


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ClientCertificate:
    """A certificate credential of an app registration: the certificate and its RSA private key.

    Entra ID identifies the certificate by its thumbprint in the assertion's header (`x5t`, SHA-1,
    and `x5t#S256`, SHA-256) and checks the RS256 signature against the certificate registered
    for the app.
    """

    __slots__ = ("_key_pem", "certificate_pem", "not_after", "subject", "x5t", "x5t_s256")

    def __init__(self, certificate_pem: str, key_pem: Secret) -> None:
        """Check the pair; UsageError when either cannot be read, the key is not RSA or not the certificate's."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        try:
            cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise UsageError("the client certificate is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(key_pem.reveal().encode("ascii"), password=None)
        except TypeError:
            raise UsageError(
                "the client key is encrypted; give it unencrypted (jcsh encrypts it at rest): "
                "openssl pkey -in KEY.pem -out plain.pem"
            ) from None
        except (ValueError, UnicodeEncodeError):
            raise UsageError("the client key is not a PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise UsageError("the client key is not an RSA key: Entra ID signs client assertions with RS256 only")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
            raise UsageError("the client key does not belong to the client certificate")
        raw = cert.public_bytes(der)
        self._key_pem = key_pem
        self.certificate_pem = certificate_pem
        self.x5t = _b64url(hashlib.sha1(raw, usedforsecurity=False).digest())
        self.x5t_s256 = _b64url(hashlib.sha256(raw).digest())
        self.subject = cert.subject.rfc4514_string()
        self.not_after = cert.not_valid_after_utc.isoformat()

    def __repr__(self) -> str:
        return f"ClientCertificate({self.subject}, x5t={self.x5t})"

    def assertion(self, client_id: str, token_url: str, *, now: float, jti: str | None = None) -> Secret:
        """A signed client assertion (RFC 7523): iss = sub = client id, aud = token URL, short exp, unique jti."""
        from authlib.oauth2.rfc7523 import private_key_jwt_sign
        from joserfc.jwk import RSAKey

        issued = int(now)
        claims: dict[str, Any] = {"nbf": issued}
        if jti is not None:
            claims["jti"] = jti  # else authlib draws a random one
        header = {"alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256}
        signed = private_key_jwt_sign(
            RSAKey.import_key(self._key_pem.reveal()),
            client_id,
            token_url,
            alg="RS256",
            claims=claims,
            header=header,
            issued_at=issued,
            expires_in=ASSERTION_LIFETIME,
        )
        return Secret(signed if isinstance(signed, str) else signed.decode("ascii"))


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, decoded and NOT verified (for showing only); None for an opaque token."""
    if token.count(".") != 2:
        return None
    from joserfc.errors import JoseError
    from joserfc.jws import extract_compact

    try:
        claims = json.loads(extract_compact(token.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None
