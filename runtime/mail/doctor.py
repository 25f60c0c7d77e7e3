"""The mail doctor: traps in the current configuration, each with its level, keys and fix."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jcsh.runtime.mail import values
from jcsh.runtime.mail.keys import Level
from jcsh.runtime.mail.settings import MAIL, NO_SERVER, VERIFY_KEY, MailSettings, inspect_settings

if TYPE_CHECKING:
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import Registry

__all__ = ["Finding", "Level", "diagnose", "dns_findings", "LEVELS"]

LEVELS = tuple(Level)  # most serious first
_STARTTLS = ("starttls.enable", "starttls.enabled", "starttls.required")


@dataclass(frozen=True)
class Finding:
    """One trap: its level, the keys involved, what is wrong, how to fix it."""

    level: Level
    keys: tuple[str, ...]
    message: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "keys": list(self.keys), "message": self.message, "fix": self.fix}


def diagnose(
    registry: Registry,
    credentials: CredentialStore | None,
    *,
    cwd: Path | None = None,
    now: dt.datetime | None = None,
    dns_lifetime: float | None = None,
) -> list[Finding]:
    """Every finding, errors first; any error means the configuration cannot send as it is.

    With dns_lifetime, also From's SPF and DMARC as seen for the relay (DNS lookups, nothing else).
    """
    settings, problems = inspect_settings(registry, credentials, cwd=cwd)
    found: list[Finding] = []
    add = lambda level, keys, message, fix: found.append(Finding(level, tuple(keys), message, fix))  # noqa: E731
    upgraded = _transport_traps(settings, add)
    for p in problems:
        if not set(p.keys) & upgraded:
            found.append(Finding(p.level, p.keys, p.message, p.fix))
    unparsed = {k.rsplit("/", 1)[1] for p in problems if p.fatal for k in p.keys}
    if settings.server.value is None and "Server" not in unparsed:
        add(Level.ERROR, [f"{MAIL}/Server"], NO_SERVER, "jcsh configure --from ADDR [--server HOST]")
    _security_traps(settings, add)
    _trust_traps(settings, add)
    if credentials is not None and settings.server.value is not None:
        _login_traps(settings, credentials, add)
        _certificate_traps(credentials, now or dt.datetime.now(dt.UTC), add)
    _provider_traps(settings, now or dt.datetime.now(dt.UTC), add)
    _path_traps(settings, add)
    if "From" not in unparsed:
        _from_traps(settings, add)
        if dns_lifetime is not None:
            found += dns_findings(settings, lifetime=dns_lifetime)
    return sorted(found, key=lambda f: LEVELS.index(f.level))


def _transport_traps(s: MailSettings, add: Any) -> set[str]:
    """smtps reads only mail.smtps.*: STARTTLS flags under mail.smtp. are silently ignored (an error)."""
    if s.transport.value != "smtps":
        return set()
    ignored = [
        p
        for name, p in s.raw_properties.items()
        if name[len("mail.smtp.") :] in _STARTTLS and name.startswith("mail.smtp.")
    ]
    for prop in ignored:
        add(
            Level.ERROR,
            [prop.origin, s.transport.origin],
            f"Transport is smtps, which reads only mail.smtps.* properties: {prop.origin} is silently ignored "
            f"(security is {s.security.value}, from {s.security.origin})",
            f"for STARTTLS set {MAIL}/Transport to smtp; for implicit TLS remove {prop.origin}",
        )
    return {p.origin for p in ignored}


def _security_traps(s: MailSettings, add: Any) -> None:
    sec, port = s.security, s.port
    keys = [sec.origin, port.origin]
    if sec.value == "TLS" and port.value == 587:
        add(
            Level.ERROR,
            keys,
            f"implicit TLS on port 587 (security TLS from {sec.origin}, port from {port.origin}): "
            "587 speaks plain SMTP and upgrades with STARTTLS, so the handshake fails",
            "use STARTTLSRequired on 587, or implicit TLS on 465",
        )
    elif sec.value != "TLS" and port.value == 465:
        add(
            Level.ERROR,
            keys,
            f"security {sec.value} on port 465 (from {sec.origin}, port from {port.origin}): "
            "465 expects TLS from the first byte, so the client waits for a greeting that never comes",
            f"set {MAIL}/ConnectionSecurity to TLS, or use port 587 with STARTTLSRequired",
        )
    elif sec.value == "TLS" and port.value == 25:
        add(
            Level.WARNING,
            keys,
            "implicit TLS on port 25, where servers speak plain SMTP (+STARTTLS)",
            "use STARTTLS on 25, or implicit TLS on 465",
        )
    if sec.value == "STARTTLS":
        add(
            Level.NOTE,
            [sec.origin],
            "STARTTLS is opportunistic: when the server does not offer it, mail goes in plain text",
            f"set {MAIL}/ConnectionSecurity to STARTTLSRequired (or "
            "mail.smtp.starttls.required=true) to refuse plain text",
        )
    if sec.value == "None" and s.credential.value is not None:
        add(
            Level.WARNING,
            [sec.origin, s.credential.origin],
            "a login is configured but the connection is not encrypted: the password would travel in plain text",
            f"set {MAIL}/ConnectionSecurity to STARTTLSRequired or TLS",
        )


def _trust_traps(s: MailSettings, add: Any) -> None:
    if s.verify.value == "DontVerify":
        add(
            Level.WARNING,
            [VERIFY_KEY],
            f"{VERIFY_KEY} is DontVerify: any certificate is accepted, so the connection can be intercepted",
            f"jcsh registry set {VERIFY_KEY} Verify, and trust a private CA with an X509_TrustedCertificate credential",
        )
    if s.trust_hosts.value == ("*",):
        add(
            Level.WARNING,
            [s.trust_hosts.origin],
            f"{s.trust_hosts.origin} is '*': certificates of every host are accepted unverified",
            f"jcsh registry rm {s.trust_hosts.origin}",
        )
    elif s.trust_hosts.value:
        add(
            Level.NOTE,
            [s.trust_hosts.origin],
            "certificates of " + " ".join(s.trust_hosts.value) + " are accepted unverified (ssl.trust)",
            "trust the issuing CA instead, with an X509_TrustedCertificate credential",
        )
    if not s.check_server_identity.value:
        add(
            Level.WARNING,
            [s.check_server_identity.origin],
            "the server's certificate is not checked against its host name (ssl.checkserveridentity=false)",
            f"jcsh registry rm {s.check_server_identity.origin}",
        )
    old = [p for p in s.protocols.value if p in ("TLSv1", "TLSv1.1")]
    if old:
        add(
            Level.WARNING,
            [s.protocols.origin],
            f"{' and '.join(old)} are allowed: both are deprecated (RFC 8996)",
            "allow only TLSv1.2 TLSv1.3",
        )


def _login_traps(s: MailSettings, store: CredentialStore, add: Any) -> None:
    server = s.server.value or ""
    if s.credential.value is not None:
        if not s.user.value:
            add(
                Level.WARNING,
                [s.credential.origin, f"{MAIL}/User"],
                f"the credential smtp {server} default has no real user and User is not set: there is no login name",
                f"set the real user of the credential, or jcsh registry set {MAIL}/User LOGIN",
            )
        return
    if s.credential.origin != "default":  # turned off on purpose (auth=false), already reported
        return
    near = []
    for protocol in store.protocols():
        if protocol.lower() != "smtp":
            continue
        for c in store.list(protocol):
            if c.endpoint.lower() != server.lower():
                continue
            diffs = []
            if protocol != "smtp":
                diffs.append(f"protocol {protocol!r} is not 'smtp'")
            if c.endpoint != server:
                diffs.append(f"endpoint {c.endpoint!r} differs from the Server {server!r} in case")
            if c.virtual_user != "default":
                diffs.append(f"virtual user is {c.virtual_user!r}, not 'default'")
            near.append((c, diffs))
    for c, diffs in near:
        add(
            Level.WARNING,
            [f"credential {c.identity()}", s.server.origin],
            f"the credential {c.identity()} is not used: {'; '.join(diffs)} (the match is exact and case-sensitive)",
            f"re-create it as protocol smtp, endpoint {server}, virtual user default",
        )
    if near:
        return
    if "smtp" not in store.protocols():
        what = "there is no smtp credential protocol, so no login is possible"
        fix = "jcsh credential protocol add smtp, then jcsh credential add --protocol smtp ..."
    else:
        what = f"no smtp credential has endpoint {server} and virtual user default"
        fix = f"jcsh credential add --protocol smtp --endpoint {server} --virtual-user default --real-user LOGIN"
    level = Level.WARNING if s.user.value else Level.NOTE
    tail = (
        f"; {s.user.origin} names a login but there is no password for it"
        if s.user.value
        else ": mail is sent without login (fine for a relay or direct send)"
    )
    add(level, [s.server.origin] + ([s.user.origin] if s.user.value else []), what + tail, fix)


_EXO_SUBMISSION = ("smtp.office365.com", "smtp-legacy.office365.com")
_BASIC_AUTH_OFF = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)  # Exchange Online: off by default from end of Dec 2026


def _password_login(s: MailSettings) -> bool:
    """Whether the login is a password (the one test the provider rules make on the credential)."""
    ref = s.credential.value
    return ref is not None and ref.kind == "password"


def _provider_traps(s: MailSettings, now: dt.datetime, add: Any) -> None:
    host = (s.host or "").lower().rstrip(".")
    if host in _EXO_SUBMISSION and _password_login(s):
        when = (
            "disables Basic auth (passwords) for SMTP AUTH by default at the end of December 2026"
            if now < _BASIC_AUTH_OFF
            else "has disabled Basic auth (passwords) for SMTP AUTH by default since the end of December 2026"
        )
        add(
            Level.WARNING,
            [s.credential.origin, s.server.origin],
            f"Exchange Online {when}; this login is a password, which will be refused with "
            "550 5.7.30 Basic authentication is not supported for Client Submission",
            f"store an OAuth 2.0 client instead: jcsh credential add --protocol smtp --endpoint {s.server.value} "
            f"--virtual-user default --real-user {s.user.value or 'MAILBOX'} --oauth2 client-credentials "
            "--entra-tenant TENANT --client-id ID --client-secret-stdin --replace",
        )
    elif host == "smtp.gmail.com" and _password_login(s):
        add(
            Level.NOTE,
            [s.credential.origin, s.server.origin],
            "Gmail takes an app password (with 2-Step Verification), not the account password, since "
            '"less secure apps" ended; the account password is refused with 534 5.7.9 or 535 5.7.8',
            "store an app password (Google Account > Security > App passwords) as the credential's password, "
            "or an OAuth 2.0 client (--oauth2 ... --google)",
        )
    if host.endswith(".mail.protection.outlook.com") and s.port.value == 25 and s.credential.value is None:
        add(
            Level.NOTE,
            [s.server.origin, s.port.origin],
            f"{s.server.value} on port 25 without login is Exchange Online direct send: only recipients "
            "inside the tenant are accepted (others get 550 5.7.54 Unable to relay)",
            "for outside recipients log in on smtp.office365.com:587 (OAuth 2.0), or set up a connector "
            "for this host's address",
        )


def _certificate_traps(store: CredentialStore, now: dt.datetime, add: Any) -> None:
    from cryptography import x509

    for c in store.trusted_certificates():
        key = f"credential {c.identity()}"
        try:
            cert = x509.load_pem_x509_certificate((c.certificate or "").encode("ascii"))
        except ValueError:
            add(Level.WARNING, [key], f"the trusted certificate {c.identity()} cannot be read", "re-create it")
            continue
        subject = cert.subject.rfc4514_string()
        if cert.not_valid_after_utc < now:
            add(
                Level.WARNING,
                [key],
                f"the trusted certificate {c.identity()} ({subject}) expired on {cert.not_valid_after_utc:%Y-%m-%d}",
                "replace it with the current certificate of that CA or server",
            )
        elif cert.not_valid_before_utc > now:
            add(
                Level.WARNING,
                [key],
                f"the trusted certificate {c.identity()} ({subject}) is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d}",
                "check the clock, or the certificate",
            )


def _path_traps(s: MailSettings, add: Any) -> None:
    path = Path(s.accessible_path.value)
    if not path.exists():
        add(
            Level.WARNING,
            [s.accessible_path.origin],
            f"AccessiblePath {path} does not exist: every attachment will be refused",
            f"create it, or jcsh registry set {MAIL}/AccessiblePath FOLDER",
        )
    elif not path.is_dir():
        add(
            Level.WARNING,
            [s.accessible_path.origin],
            f"AccessiblePath {path} is not a folder: every attachment will be refused",
            f"jcsh registry set {MAIL}/AccessiblePath FOLDER",
        )


def _from_traps(s: MailSettings, add: Any) -> None:
    if s.from_.value is None:
        add(Level.NOTE, [f"{MAIL}/From"], "no default From: every mail must give its own", "jcsh configure --from ADDR")
        return
    server = s.host
    try:
        domain = values.parse_address(s.from_.value).domain.lower().rstrip(".")
    except ValueError:
        return  # reported as a value that does not parse
    if server is None or _is_ip(server):
        return
    host = server.lower().rstrip(".")
    if host != domain and not host.endswith("." + domain):
        add(
            Level.NOTE,
            [s.from_.origin, s.server.origin],
            f"From's domain {domain} is not the server's ({server}): "
            "fine when the server sends for that domain; check its SPF/DKIM and relay rules",
            "nothing to do if mail is accepted",
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def dns_findings(s: MailSettings, *, lifetime: float) -> list[Finding]:
    """SPF of From's domain not authorizing the relay: a warning with the fix; the DMARC policy: a note."""
    from jcsh.runtime.mail.dnsauth import check_dns_auth

    if s.from_.value is None or s.host is None:
        return []
    try:
        sender = values.parse_address(s.from_.value).addr_spec
    except ValueError:
        return []
    keys = (s.from_.origin, s.server.origin)
    auth = check_dns_auth(sender, s.host, lifetime=lifetime)
    found = _spf_findings(auth, keys)
    found.append(_dmarc_finding(auth, keys))
    return found


def _spf_findings(auth: Any, keys: tuple[str, ...]) -> list[Finding]:
    domain, relay = auth.domain, auth.relay
    if auth.relay_error:
        return [Finding(Level.WARNING, keys, f"SPF of {domain} not checked: {auth.relay_error}", "check Server")]
    if auth.spf_error:
        return [
            Finding(Level.WARNING, keys, f"SPF of {domain}: {auth.spf_error}", f"fix the SPF TXT record of {domain}")
        ]
    failing = [c for c in auth.spf if c.verdict.value != "pass"]
    if not failing:
        return []
    mechanisms = " ".join(f"ip{6 if ':' in c.address else 4}:{c.address}" for c in failing)
    if auth.spf_record is None:
        message = f"{domain} publishes no SPF record: receivers cannot tell that {relay} may send its mail"
        fix = f'publish TXT "v=spf1 {mechanisms} ~all" at {domain} (or include: your relay provider\'s SPF)'
    else:
        verdicts = "; ".join(
            f"{c.address}: {c.verdict.value}" + (f" ({c.explanation})" if c.explanation else "") for c in failing
        )
        message = f"SPF of {domain} does not authorize the relay {relay}: {verdicts}"
        head, _, tail = auth.spf_record.partition(" ")
        fix = f'add {mechanisms} to the SPF record of {domain}: "{(head + " " + mechanisms + " " + tail).strip()}"'
    if auth.private:
        message += f" ({', '.join(auth.private)} is private: receivers see the relay's public address; check that one)"
    return [Finding(Level.WARNING, keys, message, fix)]


def _dmarc_finding(auth: Any, keys: tuple[str, ...]) -> Finding:
    d = auth.dmarc
    if d.error:
        return Finding(
            Level.NOTE, keys, f"DMARC of {auth.domain}: {d.error}", f"fix the TXT record at _dmarc.{d.found_at}"
        )
    if d.record is None:
        return Finding(
            Level.NOTE,
            keys,
            f"{auth.domain} publishes no DMARC record: receivers apply their own policy to its mail",
            f'publish TXT "v=DMARC1; p=none; rua=mailto:<you>@{auth.domain}" at _dmarc.{auth.domain} '
            "to learn who sends as it",
        )
    where = "" if d.found_at == auth.domain else f" (inherited from {d.found_at})"
    effect = {"reject": "rejected", "quarantine": "quarantined (spam folder)", "none": "only reported"}.get(
        d.policy, ""
    )
    message = (
        f"DMARC policy of {auth.domain}{where}: p={d.policy}, pct={d.pct}: "
        f"mail failing both SPF and DKIM alignment is {effect}"
    )
    risky = d.policy in ("reject", "quarantine") and not auth.authorized
    fix = "authorize the relay in SPF or sign with DKIM for " + auth.domain if risky else "nothing to do"
    return Finding(Level.NOTE, keys, message, fix)
