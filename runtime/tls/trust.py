"""One SSLContext factory for every client connection: system CAs + X509 credentials + settings."""

from __future__ import annotations

import os
import re
import ssl
import warnings

from jcsh.runtime.errors import ConfigError
from jcsh.runtime.hosts import bare_host
from jcsh.runtime.records import NamedTuple

__all__ = [
    "TrustPolicy",
    "client_context",
    "explain_verify_error",
    "PROTOCOL_NAMES",
    "protocol_version",
    "canonical_protocol",
    "restrict_versions",
    "LOW_SECURITY_CIPHERS",
]

# Product names, oldest first, and the ssl.TLSVersion each one means.
PROTOCOL_NAMES: tuple[str, ...] = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_ALIASES = {
    "TLSv1.0": "TLSv1",
    "TLS1": "TLSv1",
    "TLS1.0": "TLSv1",
    "TLS1.1": "TLSv1.1",
    "TLS1.2": "TLSv1.2",
    "TLS1.3": "TLSv1.3",
}
# OpenSSL 3 refuses TLS 1.0/1.1 (SHA-1 in the handshake) above security level 0.
LOW_SECURITY_CIPHERS = "DEFAULT:@SECLEVEL=0"


def protocol_version(name: str) -> ssl.TLSVersion:
    """The ssl.TLSVersion for a product name such as "TLSv1.2" (ConfigError if unknown)."""
    canonical = _ALIASES.get(name, name)
    if canonical not in PROTOCOL_NAMES:
        raise ConfigError(f"unknown TLS protocol {name!r}; known: {' '.join(PROTOCOL_NAMES)}")
    return ssl.TLSVersion[canonical.replace(".", "_")]


def canonical_protocol(name: str) -> str:
    """The product name for an alias such as "TLS1.2" (ConfigError if unknown)."""
    protocol_version(name)
    return _ALIASES.get(name, name)


class TrustPolicy(NamedTuple):
    """What a client trusts and allows: verification, host names, versions, extra CAs.

    Built by whoever knows the configuration (the mail module: runtime/mail/trust.py); this
    module knows nothing of mail settings.
    """

    verify: bool = True
    check_hostname: bool = True
    trust_hosts: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()  # product names; () = OpenSSL default
    extra_cas: tuple[str, ...] = ()  # PEM texts

    def skips_verification(self, host: str) -> str | None:
        """Why certificates of `host` are not verified at all, or None when they are."""
        if not self.verify:
            return "DontVerify"
        if "*" in self.trust_hosts:
            return "ssl.trust=*"
        wanted = bare_host(host).lower()
        if any(bare_host(h).lower() == wanted for h in self.trust_hosts):
            return f"ssl.trust lists {host}"
        return None

    def to_json(self) -> dict[str, object]:
        return {
            "verify": self.verify,
            "check_hostname": self.check_hostname,
            "trust_hosts": list(self.trust_hosts),
            "protocols": list(self.protocols),
            "extra_cas": len(self.extra_cas),
        }


_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def _hashed_system_folder() -> str | None:
    """The system CA folder when it alone holds the system trust, so that it can replace the bundle.

    Parsing the whole bundle costs ~30 ms a process; OpenSSL reads a hashed folder lazily, only
    the issuers a handshake needs. That is the same trust only where the bundle is generated from
    the folder (Debian's update-ca-certificates: the bundle lives in the hashed folder); a bundle
    anywhere else, as `SSL_CERT_FILE` may name, is loaded whole.
    """
    paths = ssl.get_default_verify_paths()
    if not (paths.cafile and paths.capath):
        return None
    folder = os.path.realpath(paths.capath)
    if os.path.dirname(os.path.realpath(paths.cafile)) != folder:
        return None
    try:
        with os.scandir(folder) as entries:
            hashed = any(_HASHED_NAME.fullmatch(e.name) for e in entries)
    except OSError:
        return None
    return folder if hashed else None


def client_context(policy: TrustPolicy, host: str) -> ssl.SSLContext:
    """A client context for `host` under `policy` (CERT_NONE only when the policy skips it)."""
    if policy.skips_verification(host):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA to load: nothing will be verified
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, capath=_hashed_system_folder())
        ctx.check_hostname = policy.check_hostname
        for pem in policy.extra_cas:
            try:
                ctx.load_verify_locations(cadata=pem)
            except (ssl.SSLError, ValueError) as e:
                raise ConfigError(f"an X509_TrustedCertificate credential holds no usable certificate: {e}") from None
    if policy.protocols:
        restrict_versions(ctx, policy.protocols)
    return ctx


def restrict_versions(ctx: ssl.SSLContext, names: tuple[str, ...] | list[str]) -> None:
    """Allow exactly the named versions on `ctx` (security level 0 when TLSv1/1.1 is among them).

    Not thread-safe (it silences DeprecationWarning for a moment): build contexts before threads.
    """
    versions = sorted({protocol_version(n) for n in names})
    low, high = versions[0], versions[-1]
    holes = [v for v in _ordered_versions() if low < v < high and v not in versions]
    # Old versions and the OP_NO_* flags (the only way to say "TLSv1 TLSv1.3" without the
    # versions between) are deprecated in Python, and asking for them is the point here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = low
        ctx.maximum_version = high
        for v in holes:
            flag = getattr(ssl, "OP_NO_" + v.name, None)
            if flag is not None:
                ctx.options |= flag
    if low <= ssl.TLSVersion.TLSv1_1:
        ctx.set_ciphers(LOW_SECURITY_CIPHERS)


def _ordered_versions() -> list[ssl.TLSVersion]:
    return [ssl.TLSVersion[n.replace(".", "_")] for n in PROTOCOL_NAMES]


# OpenSSL X509_V_ERR_* codes, by what they mean to an admin.
_UNTRUSTED_ISSUER = {2, 20, 21}  # unable to get issuer cert (locally), unable to verify leaf signature
_SELF_SIGNED = {18: "self-signed", 19: "self-signed root in chain"}
_EXPIRED = {10: "expired", 12: "CRL expired"}
_NOT_YET_VALID = {9, 11}
_HOST_MISMATCH = {62, 64}  # host name mismatch, IP address mismatch


def explain_verify_error(err: ssl.SSLCertVerificationError, peer_der: bytes | None) -> str:
    """One line saying why a server certificate was not trusted, naming subject and issuer."""
    code = getattr(err, "verify_code", None)
    message = (getattr(err, "verify_message", None) or str(err)).rstrip(".")
    info = _summary(peer_der)
    who = f" (subject {info['subject']}, issuer {info['issuer']})" if info else ""
    when = f", valid {info['not_before']} to {info['not_after']}" if info else ""
    if code in _HOST_MISMATCH:
        return f"host name mismatch: {message}{who}"
    if code in _SELF_SIGNED:
        return (
            f"{_SELF_SIGNED[code]}: not signed by a trusted CA{who}; "
            "trust it with an X509_TrustedCertificate credential"
        )
    if code in _UNTRUSTED_ISSUER:
        return (
            f"untrusted issuer: {message}{who}; add the issuer's root CA as an X509_TrustedCertificate "
            "credential, unless the server fails to send its intermediate certificates"
        )
    if code in _EXPIRED:
        return f"expired: {message}{who}{when}"
    if code in _NOT_YET_VALID:
        return f"not yet valid: {message}{who}{when}"
    return f"certificate not trusted: {message}" + (f" (code {code})" if code is not None else "") + who


def _summary(der: bytes | None) -> dict[str, object] | None:
    if not der:
        return None
    from jcsh.runtime.tls.certinfo import summarize  # cryptography: only when there is something to explain

    try:
        return summarize(der)
    except ValueError:
        return None
