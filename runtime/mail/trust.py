"""The trust policy the configured mail module applies: its settings plus X509_TrustedCertificate."""

from __future__ import annotations

from jcsh.runtime.tls.trust import TrustPolicy, canonical_protocol

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.mail.settings import MailSettings

__all__ = ["trust_policy"]


def trust_policy(settings: MailSettings, credentials: CredentialStore) -> TrustPolicy:
    """The policy for a connection the mail module makes (send, probe of the configured server)."""
    return TrustPolicy(
        verify=str(settings.verify.value).lower() != "dontverify",
        check_hostname=bool(settings.check_server_identity.value),
        trust_hosts=tuple(settings.trust_hosts.value),
        protocols=tuple(canonical_protocol(p) for p in settings.protocols.value),
        extra_cas=tuple(c.certificate for c in credentials.trusted_certificates() if c.certificate),
    )
