"""Known server and token-endpoint replies, kept as data: provider, code, cause, fix and reference."""

from __future__ import annotations

import re

from jcsh.runtime.records import NamedTuple

__all__ = ["Explanation", "KnownReply", "REPLIES", "explain"]

_EXO = "Exchange Online"
_GMAIL = "Gmail"
_ENTRA = "Entra ID"
_ANY = "SMTP"
_EXO_HOSTS = ("office365.com", "outlook.com")
_GMAIL_HOSTS = ("gmail.com", "googlemail.com", "google.com")
_OAUTH_ADD = (
    "jcsh credential add --protocol smtp --endpoint smtp.office365.com --virtual-user default "
    "--real-user MAILBOX --oauth2 client-credentials --entra-tenant TENANT --client-id ID --client-secret-stdin"
)
_MS_SMTP_AUTH = (
    "https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/"
    "authenticated-client-smtp-submission"
)
_MS_OAUTH = (
    "https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/"
    "how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth"
)
_MS_DEVICES = (
    "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/"
    "how-to-set-up-a-multifunction-device-or-application-to-send-email-using-microsoft-365-or-office-365"
)
_MS_NDR = (
    "https://learn.microsoft.com/en-us/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/"
    "non-delivery-reports-in-exchange-online"
)
_ENTRA_CODES = "https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes"


class Explanation(NamedTuple):
    """Why a reply came, and what to do: the `explanation` of a result."""

    provider: str
    cause: str
    fix: str
    reference: str

    def to_json(self) -> dict[str, str]:
        return {"provider": self.provider, "cause": self.cause, "fix": self.fix, "reference": self.reference}


class KnownReply(NamedTuple):
    """One row: code and enhanced code must match when given; then the text pattern or the server's
    host must (when either is given). The first matching row wins, so specific rows come first."""

    provider: str
    code: int | None
    enhanced: str | None
    pattern: str | None  # a regular expression, searched case-insensitively in the reply text
    hosts: tuple[str, ...]  # server host names (or their parent domains) of this provider
    cause: str
    fix: str
    reference: str


REPLIES: tuple[KnownReply, ...] = (
    # -- Exchange Online -----------------------------------------------------------------------
    KnownReply(
        _EXO, 535, "5.7.139", None, (),
        "SMTP AUTH is turned off for the tenant or for this mailbox (or security defaults block it)",
        "turn on Authenticated SMTP for the mailbox (Microsoft 365 admin center > user > Mail > Manage email "
        "apps) or Set-CASMailbox -SmtpClientAuthenticationDisabled $false; better, log in with OAuth 2.0: "
        + _OAUTH_ADD,
        _MS_SMTP_AUTH,
    ),
    KnownReply(
        _EXO, 550, "5.7.30", None, (),
        "Basic authentication (a password) is not accepted for SMTP client submission in this tenant",
        "use an OAuth 2.0 credential: " + _OAUTH_ADD,
        _MS_OAUTH,
    ),
    KnownReply(
        _EXO, 535, "5.7.3", None, (),
        "authentication unsuccessful: wrong password, or for OAuth a token without SMTP.SendAsApp / "
        "mailbox permission, a wrong audience or scope, or a mailbox the app's service principal may not use",
        "check the login name (the mailbox address); for OAuth use scope https://outlook.office365.com/.default, "
        "register the app's service principal in Exchange (New-ServicePrincipal) and grant it the mailbox "
        "(Add-MailboxPermission); `jcsh credential token` shows the token's audience and roles",
        _MS_OAUTH,
    ),
    KnownReply(
        _EXO, 530, "5.7.57", None, (),
        "the client did not log in before MAIL FROM: Exchange Online accepts mail on port 587 only after AUTH",
        "add an smtp credential for the server (a login is required), or send directly to the tenant's MX "
        "(direct send, internal recipients only)",
        _MS_DEVICES,
    ),
    KnownReply(
        _EXO, 550, "5.7.60", None, (),
        "the logged-in mailbox may not send as this From address",
        "send From the login mailbox, or grant it Send As on the From mailbox (Add-RecipientPermission)",
        _MS_DEVICES,
    ),
    KnownReply(
        _EXO, 554, "5.2.252", None, (),
        "SendAsDenied: the logged-in mailbox may not send as this From address",
        "send From the login mailbox, or grant it Send As on the From mailbox (Add-RecipientPermission)",
        _MS_NDR,
    ),
    KnownReply(
        _EXO, 550, "5.7.54", None, (),
        "unable to relay: the recipient is outside the tenant and the connection was not authenticated",
        "log in (SMTP AUTH on smtp.office365.com:587) or set up a connector for this server's address",
        _MS_DEVICES,
    ),
    # -- Gmail ---------------------------------------------------------------------------------
    KnownReply(
        _GMAIL, 534, "5.7.9", None, (),
        "Google wants an app password: the account has 2-Step Verification and the normal password was used",
        "create an app password (Google Account > Security > App passwords) and store it as the credential's "
        "password, or use OAuth 2.0 (--google)",
        "https://support.google.com/mail/?p=InvalidSecondFactor",
    ),
    KnownReply(
        _GMAIL, 534, "5.7.14", None, (),
        "Google blocked the sign-in until someone signs in with a browser (a new location or a suspicious login)",
        "sign in to the account with a browser from this network, then retry; for unattended sending use an app "
        "password or OAuth 2.0",
        "https://support.google.com/mail/?p=WebLoginRequired",
    ),
    KnownReply(
        _GMAIL, 535, "5.7.8", r"username and password not accepted|badcredentials", _GMAIL_HOSTS,
        "Google did not accept the login: a wrong password, or the account password where an app password "
        "(or OAuth 2.0) is needed",
        "store an app password as the credential's password, or use OAuth 2.0 (--google)",
        "https://support.google.com/mail/?p=BadCredentials",
    ),
    KnownReply(
        _ANY, 535, "5.7.8", None, (),
        "the server refused the login (RFC 4954: authentication credentials invalid)",
        "check the login name and the password or token of the credential",
        "https://www.rfc-editor.org/rfc/rfc4954#section-6",
    ),
    # -- any server ----------------------------------------------------------------------------
    KnownReply(
        _ANY, 530, None, r"starttls", (),
        "the server requires STARTTLS before this command",
        "jcsh registry set /configuration/mail/ConnectionSecurity STARTTLSRequired",
        "https://www.rfc-editor.org/rfc/rfc3207",
    ),
    KnownReply(
        _ANY, 530, "5.7.0", None, (),
        "the server requires a login before MAIL FROM (authentication required)",
        "add an smtp credential for the server: jcsh credential add --protocol smtp --endpoint SERVER "
        "--virtual-user default --real-user LOGIN --password-stdin",
        "https://www.rfc-editor.org/rfc/rfc4954#section-6",
    ),
    KnownReply(
        _ANY, 554, "5.7.1", r"relay", (),
        "relay access denied: the server does not forward mail for this sender/recipient without a login",
        "log in with an smtp credential, or ask the server's admin to allow relaying from this host",
        "https://www.rfc-editor.org/rfc/rfc5321#section-3.6",
    ),
    KnownReply(
        _ANY, None, None, r"relay(ing)? (access )?(denied|not permitted)|unable to relay", (),
        "relay access denied: the server does not forward mail for this sender/recipient without a login",
        "log in with an smtp credential, or ask the server's admin to allow relaying from this host",
        "https://www.rfc-editor.org/rfc/rfc5321#section-3.6",
    ),
    # -- token endpoints ------------------------------------------------------------------------
    KnownReply(
        _ENTRA, None, None, r"AADSTS7000215\b", (),
        "the client secret is wrong (a secret's ID was given instead of its value, or another app's)",
        "copy the secret's Value from the app registration (Certificates & secrets) and add the credential again",
        _ENTRA_CODES,
    ),
    KnownReply(
        _ENTRA, None, None, r"AADSTS7000222\b", (),
        "the client secret has expired",
        "create a new client secret in the app registration and add the credential again",
        _ENTRA_CODES,
    ),
    KnownReply(
        _ENTRA, None, None, r"AADSTS700016\b", (),
        "no application with this client id in the tenant (wrong client id or tenant, or not consented)",
        "check --client-id (Application (client) ID) and the tenant of the token URL",
        _ENTRA_CODES,
    ),
    KnownReply(
        _ENTRA, None, None, r"AADSTS90002\b", (),
        "the tenant of the token URL does not exist",
        "use the tenant's ID or its verified domain in --entra-tenant / the token URL",
        _ENTRA_CODES,
    ),
    KnownReply(
        _ENTRA, None, None, r"AADSTS(700027|700024|700021)\b", (),
        "the client assertion was refused: the certificate is not registered for the app, or the key, "
        "thumbprint or clock is off",
        "upload the certificate (not the key) to the app registration's Certificates & secrets, and check "
        "the clock of this machine",
        "https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials",
    ),
    KnownReply(
        _ENTRA, None, None, r"AADSTS(70011|1002012)\b", (),
        "the scope is not valid for the client-credentials grant",
        "use the scope https://outlook.office365.com/.default",
        _MS_OAUTH,
    ),
    KnownReply(
        "OAuth 2.0", None, None, r"\binvalid_grant\b", (),
        "the refresh token is expired, revoked or was already used (rotated)",
        "obtain a new refresh token and add the credential again (--oauth2 refresh-token --refresh-token-stdin)",
        "https://www.rfc-editor.org/rfc/rfc6749#section-5.2",
    ),
)  # fmt: skip

# A code with its enhanced code anywhere; a bare code only at the start or after ": " (not a port).
_ENHANCED = re.compile(r"\b([2-5]\d\d)[ -]+([2-5]\.\d{1,3}\.\d{1,3})\b")
_BARE = re.compile(r"(?:^|: )([2-5]\d\d)\b")
_COMPILED = {r.pattern: re.compile(r.pattern, re.IGNORECASE) for r in REPLIES if r.pattern}


def _host_matches(server: str | None, hosts: tuple[str, ...]) -> bool:
    if not server:
        return False
    name = server.lower().rstrip(".")
    return any(name == h or name.endswith("." + h) for h in hosts)


def explain(text: str, *, code: int | None = None, server: str | None = None) -> Explanation | None:
    """The explanation of a reply or error message, or None when no row knows it.

    The code and enhanced code are read from the text ("... 535 5.7.8 ...") unless `code` is given.
    """
    found = _ENHANCED.search(text)
    enhanced = found.group(2) if found else None
    bare = found or _BARE.search(text)
    if code is None and bare:
        code = int(bare.group(1))
    for row in REPLIES:
        if row.code is not None and row.code != code:
            continue
        if row.enhanced is not None and row.enhanced != enhanced:
            continue
        if row.pattern or row.hosts:
            by_text = row.pattern is not None and _COMPILED[row.pattern].search(text) is not None
            if not by_text and not _host_matches(server, row.hosts):
                continue
        return Explanation(row.provider, row.cause, row.fix, row.reference)
    return None
