"""Credentials: protocols, and credentials identified by protocol + endpoint + virtual user.

Secrets are encrypted at rest with Fernet under `secret.key` (mode 0600) in the home folder.
The plaintext is only ever held by a `Secret`, whose repr and str never show it.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

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
from jcsh.runtime.registry import Registry
from jcsh.runtime.store import CredentialRow, Identity, StoreFault

if TYPE_CHECKING:
    from jcsh.runtime.fernet_key import FernetKey

__all__ = [
    "CredentialStore",
    "Credential",
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


class Credential(NamedTuple):
    """A credential as listed: never its secret."""

    protocol: str
    endpoint: str
    virtual_user: str
    real_user: str | None
    has_secret: bool
    certificate: str | None = None  # PEM, for X509_TrustedCertificate

    def identity(self) -> str:
        return f"{self.protocol} {self.endpoint} {self.virtual_user}"

    @classmethod
    def from_row(cls, row: CredentialRow) -> Credential:
        return cls(row.protocol, row.endpoint, row.virtual_user, row.real_user, row.secret is not None, row.certificate)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "endpoint": self.endpoint,
            "virtual_user": self.virtual_user,
            "real_user": self.real_user,
            "has_secret": self.has_secret,
            "has_certificate": self.certificate is not None,
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
            row = CredentialRow(protocol, endpoint, virtual_user, real_user, token, certificate)
            self.store.put_credential(row)
        return Credential.from_row(row)

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
