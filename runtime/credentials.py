"""Credentials: protocols, and credentials identified by protocol + endpoint + virtual user.

Secrets are encrypted at rest with Fernet under `secret.key` (mode 0600) in the home folder.
The plaintext is only ever held by a `Secret`, whose repr and str never show it.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from jcsh.runtime.errors import ConfigError, NotFound, UsageError
from jcsh.runtime.registry import Registry

if TYPE_CHECKING:
    from jcsh.runtime.fernet_key import FernetKey

__all__ = ["CredentialStore", "Credential", "Secret", "SMTP", "X509", "KEY_NAME"]

SMTP = "smtp"
X509 = "X509_TrustedCertificate"
KEY_NAME = "secret.key"
_CHECK = b"jcsh key check"
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
    """Protocols and credentials, in the registry's database."""

    def __init__(self, registry: Registry, home: Path) -> None:
        self.registry = registry
        self.conn: sqlite3.Connection = registry.conn
        self.key_path = home / KEY_NAME
        self._fernet: FernetKey | None = None

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.key_path.parent)!r})"

    # -- protocols ----------------------------------------------------------------------------

    def protocols(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM protocol ORDER BY name")]

    def add_protocol(self, name: str) -> None:
        name = _check_field("protocol name", name)  # type: ignore[assignment]
        if any(c.isspace() for c in name):
            raise UsageError(f"protocol name {name!r} contains a space")
        with self.registry.transaction():
            if self.conn.execute("SELECT 1 FROM protocol WHERE name = ?", (name,)).fetchone():
                raise UsageError(f"protocol {name!r} already exists")
            self.conn.execute("INSERT INTO protocol(name) VALUES (?)", (name,))

    def remove_protocol(self, name: str) -> None:
        with self.registry.transaction():
            if not self.conn.execute("SELECT 1 FROM protocol WHERE name = ?", (name,)).fetchone():
                raise NotFound(f"protocol {name!r} does not exist")
            (used,) = self.conn.execute("SELECT COUNT(*) FROM credential WHERE protocol = ?", (name,)).fetchone()
            if used:
                raise UsageError(f"protocol {name!r} is used by {used} credential(s); remove them first")
            self.conn.execute("DELETE FROM protocol WHERE name = ?", (name,))

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
            self.conn.execute(
                "INSERT OR REPLACE INTO credential(protocol, endpoint, virtual_user, real_user, secret, certificate) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (protocol, endpoint, virtual_user, real_user, token, certificate),
            )
        return Credential(protocol, endpoint, virtual_user, real_user, token is not None, certificate)

    def check_can_add(self, protocol: str, endpoint: str, virtual_user: str, *, replace: bool = False) -> None:
        """Raise UsageError when the protocol is missing or the identity is taken (and not replace)."""
        if not self.conn.execute("SELECT 1 FROM protocol WHERE name = ?", (protocol,)).fetchone():
            raise UsageError(
                f"protocol {protocol!r} does not exist; create it with `jcsh credential protocol add {protocol}`"
            )
        if not replace and self._row(protocol, endpoint, virtual_user) is not None:
            raise UsageError(
                f"a credential {protocol} {endpoint} {virtual_user} already exists; use --replace to overwrite it"
            )

    def _row(self, protocol: str, endpoint: str, virtual_user: str) -> tuple[Any, ...] | None:
        return self.conn.execute(
            "SELECT protocol, endpoint, virtual_user, real_user, secret IS NOT NULL, certificate FROM credential "
            "WHERE protocol = ? AND endpoint = ? AND virtual_user = ?",
            (protocol, endpoint, virtual_user),
        ).fetchone()

    def list(self, protocol: str | None = None) -> list[Credential]:
        sql = "SELECT protocol, endpoint, virtual_user, real_user, secret IS NOT NULL, certificate FROM credential"
        params: tuple[str, ...] = ()
        if protocol is not None:
            sql += " WHERE protocol = ?"
            params = (protocol,)
        rows = self.conn.execute(sql + " ORDER BY protocol, endpoint, virtual_user", params).fetchall()
        return [Credential(p, e, v, r, bool(s), c) for p, e, v, r, s, c in rows]

    def find(self, protocol: str, endpoint: str, virtual_user: str) -> Credential | None:
        """The credential with exactly this identity (case-sensitive), or None."""
        row = self._row(protocol, endpoint, virtual_user)
        return Credential(row[0], row[1], row[2], row[3], bool(row[4]), row[5]) if row else None

    def remove(self, protocol: str, endpoint: str, virtual_user: str) -> None:
        with self.registry.transaction():
            cur = self.conn.execute(
                "DELETE FROM credential WHERE protocol = ? AND endpoint = ? AND virtual_user = ?",
                (protocol, endpoint, virtual_user),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no credential {protocol} {endpoint} {virtual_user}")

    def secret(self, credential: Credential) -> Secret:
        """Decrypt a credential's secret."""
        row = self.conn.execute(
            "SELECT secret FROM credential WHERE protocol = ? AND endpoint = ? AND virtual_user = ?",
            (credential.protocol, credential.endpoint, credential.virtual_user),
        ).fetchone()
        if row is None or row[0] is None:
            raise NotFound(f"credential {credential.identity()} has no secret")
        from jcsh.runtime.fernet_key import InvalidToken

        try:
            return Secret(self._cipher().decrypt(row[0]).decode("utf-8"))
        except InvalidToken:
            raise ConfigError(
                f"the secret of {credential.identity()} cannot be decrypted with {self.key_path}"
            ) from None

    def trusted_certificates(self) -> builtins.list[Credential]:
        """Every X509_TrustedCertificate credential (private root CAs, self-signed certificates)."""
        return [c for c in self.list(X509) if c.certificate]

    # -- the key ------------------------------------------------------------------------------

    def _check_token(self) -> bytes | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        return row[0] if row else None

    def _cipher(self) -> FernetKey:
        if self._fernet is None:
            self._fernet = self._load_key()
        return self._fernet

    def _load_key(self) -> FernetKey:
        from jcsh.runtime.fernet_key import FernetKey, InvalidToken

        check = self._check_token()
        pending = self.key_path.with_name(KEY_NAME + ".new")
        if not self.key_path.exists():
            if check is not None:
                raise ConfigError(
                    f"{self.key_path} is missing, but the registry holds secrets encrypted with it; "
                    "restore it from your backup (nothing was changed)"
                )
            return self._create_key()
        for candidate in (self.key_path, pending):
            if not candidate.exists():
                continue
            try:
                fernet = FernetKey(_read_key(candidate))
            except ValueError:
                raise ConfigError(f"{candidate} is not a valid key file") from None
            if check is None:
                return fernet
            try:
                fernet.decrypt(check)
            except InvalidToken:
                continue
            if candidate == pending:  # a rekey was interrupted after its commit: finish it
                os.replace(pending, self.key_path)
            return fernet
        raise ConfigError(
            f"{self.key_path} does not match the secrets in this registry (wrong key?); nothing was changed"
        )

    def _create_key(self) -> FernetKey:
        from jcsh.runtime.fernet_key import FernetKey

        key = FernetKey.generate()
        try:
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return FernetKey(_read_key(self.key_path))
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
            f.flush()
            os.fsync(f.fileno())
        fernet = FernetKey(key)
        with self.registry.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('key_check', ?)", (fernet.encrypt(_CHECK),)
            )
        return fernet

    def rekey(self) -> int:
        """Re-encrypt every secret under a new key in one transaction; returns how many."""
        from jcsh.runtime.fernet_key import FernetKey

        old = self._cipher()
        new_key = FernetKey.generate()
        new = FernetKey(new_key)
        pending = self.key_path.with_name(KEY_NAME + ".new")
        backup = self.key_path.with_name(KEY_NAME + ".old")
        with self.registry.transaction():
            rows = self.conn.execute(
                "SELECT protocol, endpoint, virtual_user, secret FROM credential WHERE secret IS NOT NULL"
            ).fetchall()
            for p, e, v, token in rows:
                self.conn.execute(
                    "UPDATE credential SET secret = ? WHERE protocol = ? AND endpoint = ? AND virtual_user = ?",
                    (new.encrypt(old.decrypt(token)), p, e, v),
                )
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('key_check', ?)", (new.encrypt(_CHECK),))
            _write_key(pending, new_key)  # on disk before the commit, so a crash leaves a usable key
        # Committed: keep the old key as .old until the new one is in place and decrypts.
        os.replace(self.key_path, backup)
        os.replace(pending, self.key_path)
        self._fernet = None
        verified = self._cipher()
        for (token,) in self.conn.execute("SELECT secret FROM credential WHERE secret IS NOT NULL"):
            verified.decrypt(token)
        backup.unlink()
        return len(rows)


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None


def _write_key(path: Path, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
        f.flush()
        os.fsync(f.fileno())
