"""Credentials: protocols, and credentials identified by protocol + endpoint + virtual user.

Secrets are encrypted at rest with Fernet under `secret.key` (mode 0600) in the home folder.
The plaintext is only ever held by a `Secret`, whose repr and str never show it.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from jcsh.runtime.errors import NotFound, StoreError, UsageError
from jcsh.runtime.home import KEY_NAME, os_fault, rekey_leftovers
from jcsh.runtime.keyfile import (
    CHECK,
    fernet_of,
    opens,
    pending_key,
    previous_key,
    recover_rekey,
    sync_folder,
    write_key,
)
from jcsh.runtime.records import NamedTuple
from jcsh.runtime.registry import Registry
from jcsh.runtime.store import CredentialRow, Identity, StoreFault

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.fernet_key import FernetKey

__all__ = [
    "CredentialStore",
    "Credential",
    "CredentialKind",
    "OAuthClient",
    "CachedToken",
    "Secret",
    "SMTP",
    "X509",
    "KEY_NAME",
    "REKEY_STEPS",
]

SMTP = "smtp"
X509 = "X509_TrustedCertificate"
# The points `rekey` passes, in order; a crash after any of them is recovered on the next open.
REKEY_STEPS = ("re-encrypted", "new-key-written", "committed", "old-key-moved", "new-key-placed")
_MAX_FIELD = 255


class Secret:
    """A decrypted secret; shows as <redacted> everywhere but `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


class CredentialKind(StrEnum):
    """What a credential holds."""

    PASSWORD = "password"
    CERTIFICATE = "certificate"  # a trusted X.509 certificate (no secret)
    OAUTH2 = "oauth2"  # an OAuth 2.0 client: access tokens are fetched with it


# The secrets an OAuth 2.0 credential may hold (keys of its encrypted secret).
CLIENT_SECRET, REFRESH_TOKEN, CLIENT_KEY, ACCESS_TOKEN = "client_secret", "refresh_token", "client_key", "access_token"


class OAuthClient(NamedTuple):
    """An OAuth 2.0 client's settings as stored (never a secret): what `credential ls` shows."""

    grant: str  # runtime.mail.oauth.Grant
    token_url: str | None  # None for a static token
    client_id: str | None
    scope: str | None
    holds: tuple[str, ...]  # which secrets it holds: client_secret, refresh_token, client_key, access_token

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "holds": list(self.holds)}

    @classmethod
    def from_json(cls, text: str) -> OAuthClient:
        import json  # OAuth 2.0 credentials only: a password or certificate is not JSON (json: ~1 ms)

        data = json.loads(text)
        return cls(data["grant"], data.get("token_url"), data.get("client_id"), data.get("scope"), tuple(data["holds"]))


class CachedToken(NamedTuple):
    """An access token from the cache (decrypted; the token is a Secret)."""

    access_token: Secret
    obtained_at: float
    expires_in: int | None
    scope: str | None


class Credential(NamedTuple):
    """A credential as listed: never its secret."""

    protocol: str
    endpoint: str
    virtual_user: str
    real_user: str | None
    has_secret: bool
    certificate: str | None = None  # PEM, for X509_TrustedCertificate (and an OAuth client's certificate)
    kind: CredentialKind = CredentialKind.PASSWORD
    oauth: OAuthClient | None = None
    allow_plaintext: bool = False

    def identity(self) -> str:
        return f"{self.protocol} {self.endpoint} {self.virtual_user}"

    @classmethod
    def from_row(cls, row: CredentialRow) -> Credential:
        try:
            kind = CredentialKind(row.kind)
        except ValueError:
            kind = CredentialKind.PASSWORD
        oauth = OAuthClient.from_json(row.oauth) if row.oauth else None
        return cls(
            row.protocol,
            row.endpoint,
            row.virtual_user,
            row.real_user,
            row.secret is not None,
            row.certificate,
            kind,
            oauth,
            row.allow_plaintext,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "endpoint": self.endpoint,
            "virtual_user": self.virtual_user,
            "real_user": self.real_user,
            "kind": str(self.kind),
            "has_secret": self.has_secret,
            "has_certificate": self.certificate is not None,
            "allow_plaintext": self.allow_plaintext,
            "oauth2": self.oauth.to_json() if self.oauth else None,
        }


# C0/C1 controls; format characters (bidi overrides and isolates, zero-width ...); line separators.
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp")


def _check_field(what: str, value: object, *, optional: bool = False) -> str | None:
    if value is None or value == "":
        if optional:
            return None
        raise UsageError(f"{what} is required")
    if not isinstance(value, str):
        raise UsageError(f"{what} must be text")
    if len(value) > _MAX_FIELD:
        raise UsageError(f"{what} is {len(value)} characters long; the limit is {_MAX_FIELD}")
    import unicodedata

    bad = next((c for c in value if unicodedata.category(c) in _INVISIBLE), None)
    if bad is not None:
        # Names are shown in listings and logs: a control or bidi character would disguise them.
        raise UsageError(f"{what} contains a control character (U+{ord(bad):04X}; bidi and zero-width ones included)")
    if what != "real user" and value != value.strip():
        raise UsageError(f"{what} {value!r} has leading or trailing spaces")
    return value


class CredentialStore:
    """Protocols and credentials, in the registry's store."""

    def __init__(self, registry: Registry, home: Path) -> None:
        self.registry = registry
        self.store = registry.store
        self.key_path = home / KEY_NAME
        self._fernet: FernetKey | None = None

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.key_path.parent)!r})"

    def _missing(self, error: Exception) -> Exception:
        self.store.confirm_sound()  # damage must never read as "does not exist"
        return error

    # -- protocols ----------------------------------------------------------------------------

    def protocols(self) -> list[str]:
        found = self.store.protocols()
        if not found:
            self.store.confirm_sound()  # "none" must not be damage speaking
        return found

    def add_protocol(self, name: str) -> None:
        name = _check_field("protocol name", name)  # type: ignore[assignment]
        if any(c.isspace() for c in name):
            raise UsageError(f"protocol name {name!r} contains a space")
        with self.registry.transaction():
            if self.store.has_protocol(name):
                raise UsageError(f"protocol {name!r} already exists")
            self.store.add_protocol(name)

    def remove_protocol(self, name: str) -> None:
        with self.registry.transaction():
            if not self.store.has_protocol(name):
                raise self._missing(NotFound(f"protocol {name!r} does not exist"))
            used = self.store.protocol_users(name)
            if used:
                raise UsageError(f"protocol {name!r} is used by {used} credential(s); remove them first")
            self.store.remove_protocol(name)

    # -- credentials --------------------------------------------------------------------------

    def add(
        self,
        protocol: str,
        endpoint: str,
        virtual_user: str,
        *,
        real_user: str | None = None,
        secret: str | None = None,
        certificate: str | None = None,
        replace: bool = False,
        allow_plaintext: bool = False,
    ) -> Credential:
        """Store a credential; the same identity again is refused unless replace."""
        _check_field("endpoint", endpoint)
        _check_field("virtual user", virtual_user)
        real_user = _check_field("real user", real_user, optional=True)
        if protocol == X509:
            if not certificate:
                raise UsageError(f"a {X509} credential needs a certificate (--certificate FILE.pem)")
            if secret:
                raise UsageError(f"a {X509} credential holds a certificate, not a password")
        elif certificate:
            raise UsageError(f"only {X509} credentials hold a certificate")
        elif not secret:
            raise UsageError("the password is empty")
        with self.registry.transaction():
            self.check_can_add(protocol, endpoint, virtual_user, replace=replace)
            token = self._cipher().encrypt(secret.encode("utf-8")) if secret else None
            kind = CredentialKind.CERTIFICATE if certificate else CredentialKind.PASSWORD
            row = CredentialRow(
                protocol, endpoint, virtual_user, real_user, token, certificate, kind, allow_plaintext=allow_plaintext
            )
            self.store.put_credential(row)
        return Credential.from_row(row)

    def add_oauth(
        self,
        protocol: str,
        endpoint: str,
        virtual_user: str,
        client: OAuthClient,
        secrets: dict[str, str],
        *,
        real_user: str | None = None,
        certificate: str | None = None,
        replace: bool = False,
        allow_plaintext: bool = False,
    ) -> Credential:
        """Store an OAuth 2.0 client (its secrets encrypted together); nothing is fetched."""
        import json

        _check_field("endpoint", endpoint)
        _check_field("virtual user", virtual_user)
        real_user = _check_field("real user", real_user, optional=True)
        if protocol == X509:
            raise UsageError(f"a {X509} credential holds a certificate, not an OAuth 2.0 client")
        for name, value in secrets.items():
            if not value:
                raise UsageError(f"the {name.replace('_', ' ')} is empty")
        client = client._replace(holds=tuple(sorted(secrets)))
        with self.registry.transaction():
            self.check_can_add(protocol, endpoint, virtual_user, replace=replace)
            blob = self._cipher().encrypt(json.dumps(secrets).encode("utf-8"))
            oauth = json.dumps(client.to_json())
            row = CredentialRow(
                protocol,
                endpoint,
                virtual_user,
                real_user,
                blob,
                certificate,
                CredentialKind.OAUTH2,
                oauth,
                allow_plaintext,
            )
            self.store.put_credential(row)
        return Credential.from_row(row)

    def oauth_secrets(self, credential: Credential) -> dict[str, Secret]:
        """An OAuth 2.0 credential's secrets by name (client_secret, refresh_token, client_key, access_token)."""
        import json

        text = self.secret(credential).reveal()
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise StoreError(
                f"the secrets of {credential.identity()} are not an OAuth 2.0 client's; run `jcsh registry check`",
                cause=StoreFault.DAMAGED,
                path=str(self.store.location),
            )
        return {str(k): Secret(str(v)) for k, v in data.items()}

    def cached_token(self, credential: Credential) -> CachedToken | None:
        """The cached access token, or None (none cached, or the cache cannot be read: fetch again)."""
        row = self.store.credential(Identity(credential.protocol, credential.endpoint, credential.virtual_user))
        if row is None or row.token is None:
            return None
        import json

        from jcsh.runtime.fernet_key import InvalidToken

        try:
            data = json.loads(self._cipher().decrypt(row.token))
            expires = data["expires_in"]
            return CachedToken(
                Secret(str(data["access_token"])),
                float(data["obtained_at"]),
                int(expires) if expires is not None else None,
                data.get("scope"),
            )
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None  # a cache, not a secret of record: a token is fetched again

    def store_token(self, credential: Credential, token: CachedToken, rotated_refresh: Secret | None = None) -> None:
        """Cache an access token; a rotated refresh token replaces the stored one in the same transaction."""
        import json

        identity = Identity(credential.protocol, credential.endpoint, credential.virtual_user)
        data = {
            "access_token": token.access_token.reveal(),
            "obtained_at": token.obtained_at,
            "expires_in": token.expires_in,
            "scope": token.scope,
        }
        with self.registry.transaction():
            if rotated_refresh is not None:
                secrets = {k: v.reveal() for k, v in self.oauth_secrets(credential).items()}
                secrets[REFRESH_TOKEN] = rotated_refresh.reveal()
                self.store.set_secret(identity, self._cipher().encrypt(json.dumps(secrets).encode("utf-8")))
            self.store.set_token(identity, self._cipher().encrypt(json.dumps(data).encode("utf-8")))

    def check_can_add(self, protocol: str, endpoint: str, virtual_user: str, *, replace: bool = False) -> None:
        """Raise UsageError when the protocol is missing or the identity is taken (and not replace)."""
        if not self.store.has_protocol(protocol):
            raise self._missing(
                UsageError(
                    f"protocol {protocol!r} does not exist; create it with `jcsh credential protocol add {protocol}`"
                )
            )
        if not replace and self.store.credential(Identity(protocol, endpoint, virtual_user)) is not None:
            raise UsageError(
                f"a credential {protocol} {endpoint} {virtual_user} already exists; use --replace to overwrite it"
            )

    def list(self, protocol: str | None = None) -> list[Credential]:
        rows = self.store.credentials(protocol)
        if not rows:
            self.store.confirm_sound()
        return [Credential.from_row(row) for row in rows]

    def find(self, protocol: str, endpoint: str, virtual_user: str) -> Credential | None:
        """The credential with exactly this identity (case-sensitive), or None."""
        row = self.store.credential(Identity(protocol, endpoint, virtual_user))
        if row is None:
            self.store.confirm_sound()
            return None
        return Credential.from_row(row)

    def remove(self, protocol: str, endpoint: str, virtual_user: str) -> None:
        with self.registry.transaction():
            if not self.store.delete_credential(Identity(protocol, endpoint, virtual_user)):
                raise self._missing(NotFound(f"no credential {protocol} {endpoint} {virtual_user}"))

    def secret(self, credential: Credential) -> Secret:
        """Decrypt a credential's secret."""
        row = self.store.credential(Identity(credential.protocol, credential.endpoint, credential.virtual_user))
        if row is None or row.secret is None:
            raise self._missing(NotFound(f"credential {credential.identity()} has no secret"))
        from jcsh.runtime.fernet_key import InvalidToken

        try:
            return Secret(self._cipher().decrypt(row.secret).decode("utf-8"))
        except (InvalidToken, UnicodeDecodeError):
            raise StoreError(
                f"the secret of {credential.identity()} cannot be decrypted with {self.key_path}: it is damaged; "
                "run `jcsh registry check`",
                cause=StoreFault.DAMAGED,
                path=str(self.store.location),
            ) from None

    def trusted_certificates(self) -> builtins.list[Credential]:
        """Every X509_TrustedCertificate credential (private root CAs, self-signed certificates)."""
        return [c for c in self.list(X509) if c.certificate]

    # -- the key ------------------------------------------------------------------------------

    def _cipher(self) -> FernetKey:
        if self._fernet is None:
            self._fernet = self._load_key()
        return self._fernet

    def _load_key(self) -> FernetKey:
        home = self.key_path.parent
        if rekey_leftovers(home) and not self.store.read_only:
            recover_rekey(self.store, home)
        check = self.store.meta("key_check")
        # A read-only home cannot be tidied: any left-over key that matches will do.
        candidates = [p for p in (self.key_path, pending_key(home), previous_key(home)) if p.exists()]
        if not candidates:
            if check is not None:
                raise StoreError(
                    f"{self.key_path} is missing, but the registry holds secrets encrypted with it; "
                    "restore it from your backup (`jcsh restore`); nothing was changed",
                    cause=StoreFault.MISSING,
                    path=str(self.key_path),
                )
            return self._create_key()
        for candidate in candidates:
            fernet = fernet_of(candidate)
            if check is None or opens(fernet, check):
                return fernet
        raise StoreError(
            f"{self.key_path} does not match the secrets in this registry (wrong key?); "
            "restore the right one from your backup; nothing was changed",
            cause=StoreFault.DAMAGED,
            path=str(self.key_path),
        )

    def _create_key(self) -> FernetKey:
        from jcsh.runtime.fernet_key import FernetKey

        key = FernetKey.generate()
        try:
            write_key(self.key_path, key, exclusive=True)
        except FileExistsError:  # another process created it first: use theirs
            return fernet_of(self.key_path)
        except OSError as e:
            raise os_fault(e, self.key_path, writing=True) from None
        fernet = FernetKey(key)
        with self.registry.transaction():
            self.store.set_meta("key_check", fernet.encrypt(CHECK))
        return fernet

    def rekey(self, *, steps: Callable[[str], None] | None = None) -> int:
        """Re-encrypt every secret under a new key in one transaction; returns how many.

        `steps` is called with each name of REKEY_STEPS as it is passed (tests stop the process
        there to check that the next open recovers from a crash at that point).
        """
        from jcsh.runtime.fernet_key import FernetKey

        step = steps or (lambda name: None)
        old = self._cipher()
        new_key = FernetKey.generate()
        new = FernetKey(new_key)
        home = self.key_path.parent
        pending, backup = pending_key(home), previous_key(home)
        try:
            with self.registry.transaction():
                rows = [row for row in self.store.credentials() if row.secret is not None]
                for row in rows:
                    self.store.set_secret(row.identity, new.encrypt(old.decrypt(row.secret or b"")))
                    if row.token is not None:
                        self.store.set_token(row.identity, new.encrypt(old.decrypt(row.token)))
                self.store.set_meta("key_check", new.encrypt(CHECK))
                step("re-encrypted")
                write_key(pending, new_key)  # on disk before the commit, so a crash leaves a usable key
                step("new-key-written")
        except BaseException as e:
            if pending.exists():  # nothing was committed: the new key is of no use
                pending.unlink()
            if isinstance(e, OSError):
                raise os_fault(e, pending, writing=True) from None
            raise
        step("committed")
        try:
            # Committed: keep the old key as .old until the new one is in place and decrypts.
            os.replace(self.key_path, backup)
            step("old-key-moved")
            os.replace(pending, self.key_path)
            sync_folder(home)
            step("new-key-placed")
        except OSError as e:
            raise os_fault(e, self.key_path, writing=True) from None
        self._fernet = None
        verified = self._cipher()
        for row in self.store.credentials():
            if row.secret is not None:
                verified.decrypt(row.secret)
        if backup.exists():
            backup.unlink()
        return len(rows)
