"""`credentials`: list, look up, add and remove credentials; a secret never comes back."""

from __future__ import annotations

from typing import Any

from jcsh.stdlib.errors import request
from jcsh.stdlib.records import check_flag, check_text, to_records

__all__ = ["CredentialsStub"]


class CredentialsStub:
    """Credentials by protocol, endpoint and virtual user (secrets can be stored, never read)."""

    __slots__ = ("_link",)

    def __init__(self, link: Any) -> None:
        self._link = link

    def protocols(self) -> list[str]:
        """The protocol names (e.g. smtp, X509_TrustedCertificate)."""
        return list(request(self._link, "credentials.protocols"))

    def add_protocol(self, name: str) -> None:
        """Create a protocol."""
        request(self._link, "credentials.add_protocol", {"name": check_text(name, "name")})

    def list(self, protocol: str | None = None) -> list[Any]:
        """Every credential (of one protocol): records without secrets."""
        return to_records(
            request(self._link, "credentials.list", {"protocol": check_text(protocol, "protocol", optional=True)})
        )

    def find(self, protocol: str, endpoint: str, virtual_user: str = "default") -> Any:
        """The credential with exactly this identity, or None."""
        return to_records(request(self._link, "credentials.find", _identity(protocol, endpoint, virtual_user)))

    def add(
        self,
        protocol: str,
        endpoint: str,
        virtual_user: str = "default",
        *,
        real_user: str | None = None,
        secret: str | None = None,
        certificate: str | None = None,
        replace: bool = False,
    ) -> Any:
        """Store a credential (secret: a password; certificate: PEM text); returns it without the secret."""
        params = _identity(protocol, endpoint, virtual_user)
        params.update(
            real_user=check_text(real_user, "real_user", optional=True),
            secret=check_text(secret, "secret", optional=True),
            certificate=check_text(certificate, "certificate", optional=True),
            replace=check_flag(replace, "replace"),
        )
        return to_records(request(self._link, "credentials.add", params))

    def remove(self, protocol: str, endpoint: str, virtual_user: str = "default") -> None:
        """Remove a credential."""
        request(self._link, "credentials.remove", _identity(protocol, endpoint, virtual_user))

    def __repr__(self) -> str:
        return "credentials"


def _identity(protocol: Any, endpoint: Any, virtual_user: Any) -> dict[str, Any]:
    return {
        "protocol": check_text(protocol, "protocol"),
        "endpoint": check_text(endpoint, "endpoint"),
        "virtual_user": check_text(virtual_user, "virtual_user"),
    }
