"""SASL mechanisms for SMTP AUTH, by naming convention (`auth_<mech>`), chosen as JavaMail does.

Pure: a `SaslExchange` turns the server's challenges into the client's responses (base64 text, as
the AUTH dialogue carries them); `mechanism_order` and `choose_mechanism` pick the mechanism from
`mail.<transport>.auth.mechanisms`, `mail.<transport>.auth.<mech>.disable` and the credential's
kind. No socket here: the SMTP wire sends and reads.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

from jcsh.runtime.errors import ConnectFailed, JobFailed
from jcsh.runtime.mail.keys import MAIL
from jcsh.runtime.records import NamedTuple

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:  # settings import this module to show the order: keep it light
    from typing import Any

    from jcsh.runtime.credentials import Secret

__all__ = [
    "CredentialKind",
    "SaslExchange",
    "SaslFailure",
    "MechanismOrder",
    "mechanism_order",
    "choose_mechanism",
    "parse_mechanisms",
    "unknown_mechanisms",
    "IMPLEMENTED",
    "PASSWORD_DEFAULT",
    "OAUTH_DEFAULT",
]

IMPLEMENTED = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER")
PASSWORD_DEFAULT = ("LOGIN", "PLAIN", "DIGEST-MD5", "NTLM")  # JavaMail's order
OAUTH_DEFAULT = ("XOAUTH2", "OAUTHBEARER")
# Mechanisms a server may offer that jcsh knows of but does not speak, and why.
_NOT_IMPLEMENTED = {
    "DIGEST-MD5": "obsolete (RFC 6331)",
    "NTLM": "a Windows-domain mechanism jcsh does not speak",
    "GSSAPI": "Kerberos, which jcsh does not speak",
    "SCRAM-SHA-1": "not implemented",
    "SCRAM-SHA-256": "not implemented",
    "EXTERNAL": "client certificates are not used for SMTP login",
    "ANONYMOUS": "not a login",
}
_NAME = re.compile(r"^[A-Z0-9_-]{1,20}$")  # RFC 4422 mechanism names


class CredentialKind(StrEnum):
    """What a credential proves itself with: a password, or an OAuth 2.0 access token."""

    PASSWORD = "password"
    OAUTH2 = "oauth2"


class SaslFailure(NamedTuple):
    """The server's error details sent in a 334 during XOAUTH2/OAUTHBEARER (RFC 7628 3.2.2)."""

    status: str | None
    scope: str | None
    schemes: str | None
    openid_configuration: str | None

    def describe(self) -> str:
        parts = [f"{k} {v}" for k, v in (("status", self.status), ("scope", self.scope)) if v]
        return ", ".join(parts) or "no details"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _saslname(login: str) -> str:
    """RFC 5801: ',' and '=' in the authorization identity are escaped."""
    return login.replace("=", "=3D").replace(",", "=2C")


class SaslExchange:
    """One AUTH exchange, client side; `auth_<mech>(challenge)` answers each step.

    `command()` is the AUTH line (with the initial response where the mechanism has one);
    `answer(text)` takes the text of a 334 reply and gives the line to send. Step methods get the
    decoded challenge (None for the initial response) and return raw bytes.
    """

    def __init__(self, mechanism: str, login: str, secret: Secret, *, host: str = "", port: int = 0) -> None:
        self.mechanism = mechanism.upper()
        if self.mechanism not in IMPLEMENTED:
            raise ValueError(f"SASL mechanism {mechanism!r} is not implemented")
        self.login = login
        self._secret = secret
        self.host, self.port = host, port
        self.step = 0  # challenges answered so far
        self.failure: SaslFailure | None = None

    def __repr__(self) -> str:
        return f"SaslExchange({self.mechanism} as {self.login!r}, step {self.step})"

    def _method(self) -> Any:
        return getattr(self, "auth_" + self.mechanism.lower().replace("-", "_"))

    def command(self) -> str:
        """`AUTH <MECH>` with the base64 initial response when the mechanism sends one first."""
        first = self._method()(None)
        return f"AUTH {self.mechanism}" if first is None else f"AUTH {self.mechanism} {_b64(first) or '='}"

    def answer(self, challenge: str) -> str:
        """The line answering a 334 whose text is `challenge` (base64); ConnectFailed (3) if out of turn."""
        text = challenge.strip()
        try:
            decoded = base64.b64decode(text, validate=True) if text not in ("", "=") else b""
        except (binascii.Error, ValueError):
            raise ConnectFailed(
                f"the server's AUTH {self.mechanism} challenge is not base64", kind="protocol"
            ) from None
        self.step += 1
        response = self._method()(decoded)
        if response is None:
            raise ConnectFailed(
                f"the server sent AUTH {self.mechanism} a challenge out of turn (step {self.step})", kind="protocol"
            )
        return _b64(response)

    # -- the mechanisms: None when there is nothing to send at this step -----------------------

    def auth_plain(self, challenge: bytes | None) -> bytes | None:
        if challenge is None:
            return b"\0" + self.login.encode("utf-8") + b"\0" + self._secret.reveal().encode("utf-8")
        return None

    def auth_login(self, challenge: bytes | None) -> bytes | None:
        # Steps, not the prompt text: servers word "Username:" and "Password:" as they like.
        if challenge is None:
            return None
        if self.step == 1:
            return self.login.encode("utf-8")
        if self.step == 2:
            return self._secret.reveal().encode("utf-8")
        return None

    def auth_cram_md5(self, challenge: bytes | None) -> bytes | None:
        if challenge is None or self.step != 1:
            return None
        import hmac  # only here: its import costs ~4 ms, and settings import this module

        digest = hmac.new(self._secret.reveal().encode("utf-8"), challenge, "md5").hexdigest()
        return f"{self.login} {digest}".encode()

    def auth_xoauth2(self, challenge: bytes | None) -> bytes | None:
        if challenge is None:
            return f"user={self.login}\x01auth=Bearer {self._secret.reveal()}\x01\x01".encode()
        if self.step == 1:  # the error details: answer an empty line, the 5xx follows
            self.failure = _failure(challenge)
            return b""
        return None

    def auth_oauthbearer(self, challenge: bytes | None) -> bytes | None:
        if challenge is None:
            gs2 = f"n,a={_saslname(self.login)},"
            fields = f"host={self.host}\x01port={self.port}\x01auth=Bearer {self._secret.reveal()}\x01\x01"
            return (gs2 + "\x01" + fields).encode("utf-8")
        if self.step == 1:  # RFC 7628 3.2.3: a single %x01 lets the server finish with its 5xx
            self.failure = _failure(challenge)
            return b"\x01"
        return None


def _failure(challenge: bytes) -> SaslFailure:
    import json

    try:
        data = json.loads(challenge)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return SaslFailure(None, None, None, None)

    def field(name: str) -> str | None:
        value = data.get(name)
        return " ".join(str(value).split())[:200] if value not in (None, "") else None

    return SaslFailure(field("status"), field("scope"), field("schemes"), field("openid-configuration"))


# -- choosing ---------------------------------------------------------------------------------


def parse_mechanisms(value: str) -> tuple[str, ...]:
    """`mail.smtp.auth.mechanisms`: names separated by spaces (commas tolerated), upper-cased, once each."""
    names = tuple(dict.fromkeys(n.upper() for n in value.replace(",", " ").split()))
    if not names:
        raise ValueError("names no SASL mechanism")
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise ValueError(f"holds {bad[0]!r}, which is not a SASL mechanism name")
    return names


def unknown_mechanisms(names: Iterable[str]) -> list[str]:
    """Names jcsh neither implements nor knows as someone else's mechanism (likely typos)."""
    return [n for n in names if n not in IMPLEMENTED and n not in _NOT_IMPLEMENTED]


class MechanismOrder(NamedTuple):
    """The mechanisms to try, in order, for one credential kind, and where the list came from."""

    mechanisms: tuple[str, ...]
    origin: str  # the registry path of auth.mechanisms, or "default"
    prefix: str  # "mail.smtp." or "mail.smtps."
    kind: CredentialKind = CredentialKind.PASSWORD
    notes: tuple[str, ...] = ()


def _bool(value: str) -> bool | None:
    word = value.strip().lower()
    return True if word == "true" else False if word == "false" else None


def mechanism_order(properties: Mapping[str, tuple[str, str]], transport: str, kind: CredentialKind) -> MechanismOrder:
    """The order as JavaMail builds it; properties map a name to (value, registry path).

    Default: LOGIN PLAIN DIGEST-MD5 NTLM for a password (XOAUTH2 only with
    `auth.xoauth2.disable=false`, the password then being the token, as in JavaMail); XOAUTH2 then
    OAUTHBEARER for an OAuth 2.0 credential. A listed mechanism counts unless its
    `auth.<mech>.disable` is true. An OAuth credential cannot use password mechanisms.
    """
    prefix = f"mail.{transport}."
    listed = properties.get(prefix + "auth.mechanisms")
    names: tuple[str, ...]
    try:
        names = parse_mechanisms(listed[0]) if listed else ()
    except ValueError:
        names = ()  # the settings report the bad value
    origin = listed[1] if listed and names else "default"
    explicit = bool(names)
    if not explicit:
        names = OAUTH_DEFAULT if kind is CredentialKind.OAUTH2 else (*PASSWORD_DEFAULT, "XOAUTH2")
    chosen: list[str] = []
    notes: list[str] = []
    for name in names:
        switch = properties.get(f"{prefix}auth.{name.lower()}.disable")
        disabled = _bool(switch[0]) if switch else None
        if kind is CredentialKind.OAUTH2 and name not in OAUTH_DEFAULT:
            if explicit:
                notes.append(f"{name} needs a password: not used with an OAuth 2.0 credential")
            continue
        if kind is CredentialKind.PASSWORD and name == "XOAUTH2" and not explicit and disabled is not False:
            continue  # JavaMail's default: listed last, disabled unless auth.xoauth2.disable=false
        if disabled and switch:
            notes.append(f"{name} is turned off by {switch[1]}")
            continue
        chosen.append(name)
    return MechanismOrder(tuple(chosen), origin, prefix, kind, tuple(notes))


def choose_mechanism(order: MechanismOrder, offered: Iterable[str], where: str) -> tuple[str, tuple[str, ...]]:
    """The first mechanism of the order that the server offers and jcsh implements, and notes.

    JobFailed (exit 1) when there is none: it says what the server offers and which property to set.
    """
    offers = [o.upper() for o in offered]
    notes = list(order.notes)
    for name in order.mechanisms:
        if name not in offers:
            continue
        if name not in IMPLEMENTED:
            why = _NOT_IMPLEMENTED.get(name, "not implemented")
            notes.append(f"{name} is offered but skipped: {why}")
            continue
        return name, tuple(notes)
    path = f"{MAIL}/JavaMail/{order.prefix}auth.mechanisms"
    by_password = [o for o in offers if o in IMPLEMENTED and o not in OAUTH_DEFAULT]
    by_token = [o for o in offers if o in OAUTH_DEFAULT]
    considered = " ".join(order.mechanisms) or "none"
    message = f"{where} offers AUTH {' '.join(offers) or '(nothing)'}; jcsh tried {considered} (from {order.origin})"
    if order.kind is CredentialKind.OAUTH2:
        if by_token:
            message += f"; set {path} to {' '.join(by_token)}"
        else:
            message += ": the server takes no OAuth 2.0 token (XOAUTH2 or OAUTHBEARER) here"
            message += f"; it offers password login ({' '.join(by_password)})" if by_password else ""
    elif by_password:
        message += f"; set {path} to {' '.join(by_password)}"
    elif by_token:
        message += ": it takes OAuth 2.0 tokens only; store an OAuth 2.0 credential (jcsh credential add --oauth2 ...)"
    else:
        message += f"; jcsh implements {' '.join(IMPLEMENTED)}, none of which it offers"
    raise JobFailed(message + (f" ({'; '.join(notes)})" if notes else ""))
