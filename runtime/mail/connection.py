"""One SMTP connection set up as the mail settings say: greeting, EHLO, STARTTLS and trust, login."""

from __future__ import annotations

import socket
import ssl

from jcsh.runtime.credentials import SMTP
from jcsh.runtime.errors import ConfigError, ConnectFailed, JcshError
from jcsh.runtime.hosts import bare_host, host_port
from jcsh.runtime.mail.result import SendResult, certificate_fields, refusal
from jcsh.runtime.smtp.dial import connect
from jcsh.runtime.smtp.wire import NotTls, Reply, StepTimeout, Timeouts, Wire, features, shown

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from jcsh.runtime.credentials import Credential, CredentialStore, Secret
    from jcsh.runtime.mail.settings import MailSettings
    from jcsh.runtime.smtp.transcript import Transcript
    from jcsh.runtime.tls.trust import TrustPolicy

__all__ = ["Connection", "TrustSetup"]


class TrustSetup:
    """The trust policy and client context of a session, made once on first need (loading CAs takes ~30 ms)."""

    __slots__ = ("_context", "_credentials", "_host", "_policy", "_settings")

    def __init__(self, settings: MailSettings, credentials: CredentialStore, host: str) -> None:
        self._settings, self._credentials, self._host = settings, credentials, host
        self._policy: TrustPolicy | None = None
        self._context: ssl.SSLContext | None = None

    def policy(self) -> TrustPolicy:
        if self._policy is None:
            from jcsh.runtime.mail.trust import trust_policy

            self._policy = trust_policy(self._settings, self._credentials)
        return self._policy

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            from jcsh.runtime.tls.trust import client_context

            self._context = client_context(self.policy(), self._host)
        return self._context

    def token_context(self, host: str) -> ssl.SSLContext:
        """The context for an OAuth token endpoint: the mail trust's CAs and versions, always verified.

        DontVerify and ssl.trust are exceptions made for a mail server; the client secret never
        goes to an endpoint whose certificate was not checked.
        """
        from jcsh.runtime.tls.trust import client_context

        strict = self.policy()._replace(verify=True, check_hostname=True, trust_hosts=())
        return client_context(strict, host)


class Connection:
    """What one connection established (copied into every result sent over it), or how far it got."""

    def __init__(
        self, settings: MailSettings, credentials: CredentialStore, transcript: Transcript, trust: TrustSetup
    ) -> None:
        self.settings, self.credentials, self.transcript, self._trust = settings, credentials, transcript, trust
        self.host = bare_host((settings.server.value or "").strip())
        self.port = int(settings.port.value)
        self.security = str(settings.security.value)
        self.where = host_port(self.host, self.port)
        self.wire: Wire | None = None
        self.features: dict[str, str] = {}
        self.tls: dict[str, str] | None = None
        self.verified = False
        self.certificate: dict[str, str] | None = None
        self.authenticated_as: str | None = None
        self.warnings: list[str] = []
        self.stage = "connect"  # the step under way, or the one that failed
        self.tls_failure: str | None = None  # why TLS was not established, when that is what failed
        self.refused_certificate: dict[str, str] | None = None  # the one a failed trust check saw

    def copy_to(self, result: SendResult) -> None:
        result.tls, result.verified, result.certificate = self.tls, self.verified, self.certificate
        result.authenticated_as = self.authenticated_as
        result.warnings[:0] = self.warnings

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()

    def open(self, timeouts: Timeouts, *, upto: str | None = None) -> None:
        """Connect, greet, EHLO, STARTTLS as the settings say, log in; raises at the first failure.

        `upto` ("connect", "tls", "auth") stops after that step (`testmail --quit-after`); a step
        that was to be checked but did not happen (no TLS, no login) is a failure.
        """
        t = self.transcript
        t.event(f"connecting to {self.where} ({self.security})")
        # Connect and greeting are one step (the TCP connect alone also within the connect timeout).
        deadline = timeouts.deadline("connect", max(timeouts.read, timeouts.connect))
        wire = self.wire = connect(self.host, self.port, timeouts, deadline, transcript=t)
        if self.security == "TLS":
            self._handshake(None)
            deadline = wire.deadline("the greeting")
        self.stage = deadline.step = "the greeting"
        try:
            greeting = wire.read_reply(deadline, greeting=True)
        except StepTimeout as e:
            if self.security == "TLS" or e.by_cap:
                raise
            hint = " (is this an implicit-TLS port such as 465? then set ConnectionSecurity TLS)"
            raise StepTimeout(e.message + hint, step=e.step, spent=e.spent, by_cap=e.by_cap) from None
        if 400 <= greeting.code < 600:
            raise refusal("the connection (greeting)", greeting)
        if greeting.code != 220:
            raise ConnectFailed(
                f"{self.where} greeted with {shown(str(greeting), 80)} instead of 220 (protocol error)",
                kind="protocol",
            )
        self._hello()
        if upto == "connect":
            return
        if self.security in ("STARTTLS", "STARTTLSRequired"):
            self._starttls()
        if upto == "tls":
            if wire.tls is None:
                self.tls_failure = "not established"
                raise ConnectFailed(
                    f"no TLS to check with {self.where}: ConnectionSecurity is {self.security}"
                    + (" and the server does not offer STARTTLS" if self.security == "STARTTLS" else ""),
                    kind="tls",
                )
            return
        self._login()
        if upto == "auth" and self.authenticated_as is None:
            raise ConfigError(
                f"no login to check with {self.where}: "
                + (
                    "no smtp credential is configured for it"
                    if self.settings.credential.value is None
                    else "the server offers no AUTH"
                )
            )

    def _ehlo_name(self) -> str:
        name = self.settings.localhost.value
        if name:
            return str(name)
        hostname = socket.gethostname()
        if "." in hostname:
            return hostname
        # RFC 5321 4.1.4: no FQDN -> an address literal (getfqdn() may stall on DNS)
        assert self.wire is not None
        ip = self.wire.sock.getsockname()[0]
        return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"

    def _hello(self) -> None:
        wire = self.wire
        assert wire is not None
        self.stage = "EHLO"
        name = self._ehlo_name()
        reply = wire.command(f"EHLO {name}")
        if 400 <= reply.code < 500:
            raise refusal("EHLO", reply)
        if 200 <= reply.code < 300:
            self.features = features(reply)
            return
        self.stage = "HELO"  # an old server
        self.features = {}
        reply = wire.command(f"HELO {name}")
        if not 200 <= reply.code < 300:
            raise refusal("EHLO/HELO", reply)

    def _starttls(self) -> None:
        wire, t = self.wire, self.transcript
        assert wire is not None
        self.stage = "STARTTLS"
        if "starttls" not in self.features:
            if self.security == "STARTTLSRequired":
                self.tls_failure = "does not offer STARTTLS"
                raise ConnectFailed(
                    f"{self.where} does not offer STARTTLS, which mail.smtp.starttls.required "
                    "demands; nothing was sent",
                    kind="tls",
                )
            self.warnings.append(
                f"{self.where} does not offer STARTTLS: sent in plain text "
                "(set mail.smtp.starttls.required=true to refuse instead)"
            )
            t.event("STARTTLS not offered: continuing in plain text")
            return
        context = self._trust.context()
        reply = wire.command("STARTTLS")
        if reply.code != 220:
            self.tls_failure = f"refused STARTTLS ({reply})"
            raise ConnectFailed(
                f"{self.where} refused STARTTLS ({reply}); nothing was sent (no downgrade to plain text)",
                kind="tls",
            )
        self._handshake(reply, context)
        self._hello()

    def _handshake(self, agreed: Reply | None, context: ssl.SSLContext | None = None) -> None:
        """The TLS handshake, after `agreed` (the 220 to STARTTLS) or first thing (implicit TLS)."""
        wire = self.wire
        assert wire is not None
        context = context or self._trust.context()
        self.stage = "the TLS handshake"
        try:
            wire.start_tls(context, self.host, wire.deadline(self.stage, wire.timeouts.read))
        except NotTls as e:
            said = shown(e.first, 40)
            if agreed is None:
                self.tls_failure = "answered in plain text, not TLS"
                message = (
                    f"{self.where} answered in plain text, not TLS: {said} (is this a plain or STARTTLS "
                    "port? then set ConnectionSecurity STARTTLS); nothing was sent"
                )
            else:
                self.tls_failure = f"agreed to STARTTLS ({agreed}), then spoke plain text"
                message = (
                    f"{self.where} agreed to STARTTLS ({agreed}) and then spoke plain text: {said}; nothing was sent"
                )
            raise NotTls(message, e.first) from None
        self._tls_done()

    def _tls_done(self) -> None:
        wire = self.wire
        assert wire is not None and wire.tls is not None
        tls, policy = wire.tls, self._trust.policy()
        cipher = tls.cipher()
        self.tls = {"version": tls.version() or "", "cipher": cipher[0] if cipher else ""}
        self.certificate = certificate_fields(tls.getpeercert() or {}, tls.getpeercert(binary_form=True))
        skipped = policy.skips_verification(self.host)
        if skipped:
            self.warnings.append(f"certificate not verified ({skipped})")
        elif not policy.check_hostname:
            self.warnings.append("host name not checked against the certificate (ssl.checkserveridentity=false)")
        self.verified = skipped is None and policy.check_hostname
        trust = "verified" if self.verified else f"NOT verified ({skipped or 'host name not checked'})"
        who = f" {self.certificate['subject']} issued by {self.certificate['issuer']}" if self.certificate else ""
        self.transcript.event(f"TLS {self.tls['version']} {self.tls['cipher']}; certificate{who}: {trust}")

    def _login(self) -> None:
        ref = self.settings.credential.value
        if ref is None:
            return
        wire, t = self.wire, self.transcript
        assert wire is not None
        cred = self.credentials.find(SMTP, ref.endpoint, ref.virtual_user)
        if cred is None:
            raise ConfigError(f"no smtp credential for endpoint {ref.endpoint!r}, virtual user {ref.virtual_user!r}")
        user = ref.real_user or cred.real_user or self.settings.user.value
        if not user:
            raise ConfigError(f"the smtp credential {cred.identity()} has no real user to log in as")
        offered = self.features.get("auth", "").upper().split()
        if not offered:
            self.warnings.append(f"{self.where} offers no AUTH: sent without logging in as {user}")
            return
        from jcsh.runtime.credentials import CredentialKind
        from jcsh.runtime.mail.sasl import CredentialKind as SaslKind
        from jcsh.runtime.mail.sasl import SaslExchange, choose_mechanism, mechanism_order

        oauth = cred.kind is CredentialKind.OAUTH2
        order = mechanism_order(
            self.settings.raw_properties,
            str(self.settings.transport.value),
            SaslKind.OAUTH2 if oauth else SaslKind.PASSWORD,
        )
        mechanism, notes = choose_mechanism(order, offered, self.where)
        for note in notes:
            t.event(note)
        what = "the access token" if oauth else "the password"
        if wire.tls is None:
            if not cred.allow_plaintext:
                raise ConnectFailed(
                    f"refusing to send {what} for {cred.endpoint} over an unencrypted connection "
                    f"(to {self.where}); use ConnectionSecurity STARTTLS or TLS, or add the credential "
                    "with --allow-plaintext for a test server",
                    kind="insecure",
                )
            self.warnings.append(
                f"{what} for {user} crossed an unencrypted connection (the credential allows plain text)"
            )
        secret = self._token(cred, wire) if oauth else self.credentials.secret(cred)
        self.stage = "AUTH"
        exchange = SaslExchange(mechanism, user, secret, host=self.host, port=self.port)
        reply = wire.authenticate(exchange, wire.deadline("AUTH"))
        if reply.code != 235:
            raise refusal(f"the login as {user} ({mechanism})", reply)
        self.authenticated_as = user
        t.event(f"logged in as {user} ({mechanism})")

    def _token(self, cred: Credential, wire: Wire) -> Secret:
        """The access token, cached or fetched now (within the step timeout and the command's deadline)."""
        from jcsh.runtime.mail.tokens import access_token

        self.stage = "the token request"
        left = wire.deadline(self.stage).left()
        token, source = access_token(
            self.credentials, cred, context_for=self._trust.token_context, timeout=max(left, 0.01)
        )
        self.transcript.event(f"OAuth 2.0 access token from the {source} (never shown)")
        return token.access_token

    def explain(self, e: Exception, timeouts: Timeouts) -> JcshError:
        """The user-facing error for a socket or TLS exception at the current stage."""
        from jcsh.runtime.mail.explain import explain_failure, peer_certificate

        def fetch() -> bytes | None:
            der = peer_certificate(self.host, self.port, self.security, timeouts)
            self.refused_certificate = certificate_fields({}, der)
            return der

        error = explain_failure(e, stage=self.stage, where=self.where, peer_der=fetch)
        if error.kind == "trust":
            self.tls_failure = "certificate not trusted"
        elif error.kind == "tls":
            self.tls_failure = f"handshake failed ({getattr(e, 'reason', None) or e})"
        return error
