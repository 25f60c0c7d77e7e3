"""The SMTP dialogue: security, trust, login, recipients, transcript; one result for every path."""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

from jcsh.runtime.credentials import SMTP
from jcsh.runtime.errors import ConfigError, ConnectFailed, JcshError, JobFailed, TempFailure, UsageError
from jcsh.runtime.greeting import not_smtp
from jcsh.runtime.hosts import bare_host, host_port
from jcsh.runtime.mail.message import BuiltMessage, MailRequest, build_message
from jcsh.runtime.mail.result import SendResult, certificate_fields, refusal, reply_text
from jcsh.runtime.mail.transcript import ReadTimeout, RecordingSMTP, RecordingSMTP_SSL, Transcript

if TYPE_CHECKING:
    from collections.abc import Callable

    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.mail.settings import MailSettings
    from jcsh.runtime.tls.trust import TrustPolicy

__all__ = ["SendResult", "MailSession", "send_mail", "password_allowed", "MailRequest"]


def password_allowed(encrypted: bool, peer_address: str) -> bool:
    """May a password cross this connection? Only encrypted, or to a loopback peer."""
    if encrypted:
        return True
    try:
        ip = ipaddress.ip_address(peer_address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


class _Reconnect(Exception):
    """The server closed a reused connection before the transaction began."""


class _Link:
    """What one connection established, copied into every result sent over it."""

    __slots__ = ("authenticated_as", "certificate", "tls", "verified", "warnings")

    def __init__(self) -> None:
        self.tls: dict[str, str] | None = None
        self.verified = False
        self.certificate: dict[str, str] | None = None
        self.authenticated_as: str | None = None
        self.warnings: list[str] = []


class MailSession:
    """One SMTP connection reused for many messages; reconnects when the server closed it."""

    def __init__(
        self,
        settings: MailSettings,
        credentials: CredentialStore,
        *,
        transcript: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.host = (settings.server.value or "").strip()
        self.port = int(settings.port.value)
        self.security = str(settings.security.value)
        self._transcript = Transcript(transcript, on_line)
        self._client: RecordingSMTP | None = None
        self._link = _Link()
        self._policy: TrustPolicy | None = None
        self._context: ssl.SSLContext | None = None
        self._stage = "connecting"
        self._clean = True  # no transaction left open on the connection
        self._refused_certificate: dict[str, str] | None = None  # the one a failed trust check saw

    def __enter__(self) -> MailSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MailSession({self.host!r}, {self.port}, {self.security!r}, connected={self._client is not None})"

    @property
    def _bare_host(self) -> str:
        return bare_host(self.host)

    # -- one message ---------------------------------------------------------------------------

    def send(self, request: MailRequest) -> SendResult:
        """Send one message; UsageError for bad input, otherwise a result (status and error)."""
        started = time.perf_counter()
        result = SendResult(self.host or None, self.port, self.security)
        try:
            built = build_message(self.settings, request)  # UsageError escapes: nothing was tried
            result.message_id = built.message_id
            result.warnings.extend(built.warnings)
            if not self.host:
                raise ConfigError("no mail server is configured; run `jcsh configure`")
            self._deliver(built, result)
        except UsageError:
            raise
        except JcshError as e:
            result.fail(e)
            if self._refused_certificate is not None:  # trust failed: say which certificate it was
                result.certificate, self._refused_certificate = self._refused_certificate, None
            self._transcript.event(f"failed: {e.message}")
            if self._client is not None and not self._clean:
                self._reset()
        finally:
            result.elapsed_ms = round((time.perf_counter() - started) * 1000)
            if self._transcript.enabled:
                result.transcript = self._transcript.take()
        return result

    def _deliver(self, built: BuiltMessage, result: SendResult) -> None:
        for attempt in range(2):
            fresh = self._client is None
            try:
                if fresh:
                    try:
                        self._connect()
                    except BaseException:  # half set up (no TLS, no login): never reuse it
                        self._drop()
                        raise
                self._copy_link(result)
                self._transaction(built, result, reused=not fresh)
                return
            except _Reconnect:
                self._drop()
                if fresh or attempt:
                    raise ConnectFailed(f"{self._where()} closed the connection before MAIL FROM") from None
                self._transcript.event("the server closed the connection; reconnecting")
            except JcshError:
                raise
            except Exception as e:  # network and TLS failures: the connection is gone
                self._drop()
                raise self._explain(e) from None

    def _copy_link(self, result: SendResult) -> None:
        link = self._link
        result.tls, result.verified, result.certificate = link.tls, link.verified, link.certificate
        result.authenticated_as = link.authenticated_as
        result.warnings[:0] = link.warnings

    def _transaction(self, built: BuiltMessage, result: SendResult, reused: bool) -> None:
        client = self._client
        assert client is not None
        data = built.as_bytes()
        features = client.esmtp_features
        options: list[str] = []
        if "size" in features:
            limit = int(features["size"].split()[0]) if features["size"].split() else 0
            if limit and len(data) > limit:
                raise JobFailed(f"the message is {len(data)} bytes; {self._where()} accepts at most {limit} (SIZE)")
            options.append(f"SIZE={len(data)}")
        if built.smtputf8:
            if "smtputf8" not in features:
                raise JobFailed(f"an address needs SMTPUTF8, which {self._where()} does not offer")
            options.append("SMTPUTF8")
        self._stage = "MAIL FROM"
        try:
            code, message = client.mail(built.envelope_from, options)
        except ReadTimeout:
            raise
        except smtplib.SMTPServerDisconnected:
            raise _Reconnect() from None
        if code == 421 and reused:  # an idle connection the server is closing
            raise _Reconnect()
        self._clean = False
        if code != 250:
            raise refusal(f"the sender {built.envelope_from} (MAIL FROM)", code, message)
        self._stage = "RCPT TO"
        accepted: list[str] = []
        refused: dict[str, str] = {}
        codes: list[int] = []
        for rcpt in built.recipients:
            code, message = client.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            else:
                refused[rcpt] = reply_text(code, message)
                codes.append(code)
                if code == 421:  # the server is closing: the rest cannot be asked
                    for rest in built.recipients[len(accepted) + len(refused) :]:
                        refused[rest] = "not tried: the server closed the connection"
                    break
        result.refused = refused
        if refused and (not accepted or not self.settings.send_partial.value):
            listed = "; ".join(f"{a}: {r}" for a, r in refused.items())
            tail = "nothing was sent" if not accepted else "SendPartial is false, so nothing was sent"
            text = f"the server refused {len(refused)} of {len(built.recipients)} recipient(s) ({listed}); {tail}"
            if 421 in codes:
                self._drop()
            raise TempFailure(text) if all(400 <= c < 500 for c in codes) else JobFailed(text, kind="refused")
        self._stage = "DATA"
        try:
            code, message = client.data(data)
        except smtplib.SMTPDataError as e:
            raise refusal("DATA", e.smtp_code, e.smtp_error) from None
        if code != 250:
            raise refusal("the message (end of DATA)", code, message)
        self._clean = True
        result.final_reply = reply_text(code, message)
        result.accepted = accepted
        result.status = "partial" if refused else "sent"
        if refused:
            result.exit_code = 1
            result.error = {
                "kind": "partial",
                "message": f"sent to {len(accepted)} of {len(built.recipients)} recipients; "
                f"{len(refused)} refused (SendPartial is true)",
            }

    # -- the connection ------------------------------------------------------------------------

    def _timeouts(self) -> dict[str, float]:
        s = self.settings
        return {
            "connect_timeout": s.connect_timeout_ms.value / 1000,
            "read_timeout": s.read_timeout_ms.value / 1000,
            "write_timeout": s.write_timeout_ms.value / 1000,
        }

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            from jcsh.runtime.mail.trust import trust_policy
            from jcsh.runtime.tls.trust import client_context

            self._policy = trust_policy(self.settings, self.credentials)
            self._context = client_context(self._policy, self._bare_host)
        return self._context

    def _connect(self) -> None:
        self._link = _Link()
        self._clean = True
        host, t = self._bare_host, self._transcript
        kwargs: dict[str, Any] = {**self._timeouts(), "local_hostname": "localhost"}
        self._stage = "connecting"
        t.event(f"connecting to {self._where()} ({self.security})")
        if self.security == "TLS":
            client: RecordingSMTP = RecordingSMTP_SSL(t, context=self._tls_context(), **kwargs)
        else:
            client = RecordingSMTP(t, **kwargs)
        self._client = client
        client._host = host  # smtplib takes the TLS server_hostname from here, set only by __init__
        code, message = client.connect(host, self.port)  # the greeting (for TLS, after the handshake)
        if not 200 <= code <= 599:  # smtplib reads a line without a reply code as -1
            raise not_smtp(self._where(), message)
        if code != 220:
            raise refusal("the connection (greeting)", code, message)
        if self.security == "TLS":
            self._tls_done()
        client.local_hostname = self._ehlo_name()
        self._hello()
        if self.security in ("STARTTLS", "STARTTLSRequired"):
            self._starttls()
        self._login()

    def _ehlo_name(self) -> str:
        name = self.settings.localhost.value
        if name:
            return str(name)
        hostname = socket.gethostname()
        if "." in hostname:
            return hostname
        # RFC 5321 4.1.4: no FQDN -> an address literal (getfqdn() may stall on DNS)
        assert self._client is not None and self._client.sock is not None
        ip = self._client.sock.getsockname()[0]
        return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"

    def _hello(self) -> None:
        client = self._client
        assert client is not None
        self._stage = "EHLO"
        code, message = client.ehlo()
        if 400 <= code < 500:
            raise refusal("EHLO", code, message)
        if not 200 <= code < 300:  # an old server: try HELO
            code, message = client.helo()
            if not 200 <= code < 300:
                raise refusal("EHLO/HELO", code, message)

    def _starttls(self) -> None:
        client, t = self._client, self._transcript
        assert client is not None
        if not client.has_extn("starttls"):
            if self.security == "STARTTLSRequired":
                raise ConnectFailed(
                    f"{self._where()} does not offer STARTTLS, which mail.smtp.starttls.required "
                    "demands; nothing was sent",
                    kind="tls",
                )
            self._link.warnings.append(
                f"{self._where()} does not offer STARTTLS: sent in plain text "
                "(set mail.smtp.starttls.required=true to refuse instead)"
            )
            t.event("STARTTLS not offered: continuing in plain text")
            return
        context = self._tls_context()
        self._stage = "STARTTLS"
        try:
            client.starttls(context=context)
        except smtplib.SMTPResponseException as e:
            raise ConnectFailed(
                f"{self._where()} refused STARTTLS: {reply_text(e.smtp_code, e.smtp_error)}; "
                "nothing was sent (no downgrade to plain text)",
                kind="tls",
            ) from None
        self._tls_done()
        self._hello()

    def _tls_done(self) -> None:
        client, link = self._client, self._link
        assert client is not None and isinstance(client.sock, ssl.SSLSocket)
        sock = client.sock
        cipher = sock.cipher()
        link.tls = {"version": sock.version() or "", "cipher": cipher[0] if cipher else ""}
        link.certificate = certificate_fields(sock.getpeercert() or {}, sock.getpeercert(binary_form=True))
        assert self._policy is not None
        skipped = self._policy.skips_verification(self._bare_host)
        if skipped:
            link.warnings.append(f"certificate not verified ({skipped})")
        elif not self._policy.check_hostname:
            link.warnings.append("host name not checked against the certificate (ssl.checkserveridentity=false)")
        link.verified = skipped is None and self._policy.check_hostname
        trust = "verified" if link.verified else f"NOT verified ({skipped or 'host name not checked'})"
        who = f" {link.certificate['subject']} issued by {link.certificate['issuer']}" if link.certificate else ""
        self._transcript.event(f"TLS {link.tls['version']} {link.tls['cipher']}; certificate{who}: {trust}")

    def _login(self) -> None:
        ref = self.settings.credential.value
        if ref is None:
            return
        client, t = self._client, self._transcript
        assert client is not None and client.sock is not None
        cred = self.credentials.find(SMTP, ref.endpoint, ref.virtual_user)
        if cred is None:
            raise ConfigError(f"no smtp credential for endpoint {ref.endpoint!r}, virtual user {ref.virtual_user!r}")
        user = ref.real_user or cred.real_user or self.settings.user.value
        if not user:
            raise ConfigError(f"the smtp credential {cred.identity()} has no real user to log in as")
        offered = client.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
        if not offered:
            self._link.warnings.append(f"{self._where()} offers no AUTH: sent without logging in as {user}")
            return
        if mechanism is None:
            raise JobFailed(f"{self._where()} offers AUTH {' '.join(offered)}; jcsh logs in with PLAIN or LOGIN only")
        encrypted = isinstance(client.sock, ssl.SSLSocket)
        peer = client.sock.getpeername()[0]
        if not password_allowed(encrypted, peer):
            raise JobFailed(
                f"refusing to send the password for {user} unencrypted to {self._where()} ({peer}); "
                "use ConnectionSecurity STARTTLS or TLS",
                kind="insecure",
            )
        if not encrypted:
            self._link.warnings.append(f"the password for {user} crossed an unencrypted connection (loopback peer)")
        self._stage = "AUTH"
        client.user, client.password = user, self.credentials.secret(cred).reveal()
        try:
            method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            client.auth(mechanism, method, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            raise refusal(f"the login as {user} ({mechanism})", e.smtp_code, e.smtp_error) from None
        finally:
            client.password = ""
        self._link.authenticated_as = user
        t.event(f"logged in as {user} ({mechanism})")

    # -- failures ------------------------------------------------------------------------------

    def _where(self) -> str:
        return host_port(self.host, self.port)

    def _explain(self, e: Exception) -> JcshError:
        """The user-facing error for a network or TLS exception at the current stage."""
        from jcsh.runtime.mail.explain import explain_failure, peer_certificate

        def fetch() -> bytes | None:
            der = peer_certificate(self._bare_host, self.port, self.security, self._timeouts())
            self._refused_certificate = certificate_fields({}, der)
            return der

        return explain_failure(e, stage=self._stage, where=self._where(), security=self.security, peer_der=fetch)

    def _reset(self) -> None:
        """RSET after a failed transaction so the connection can carry the next message."""
        if self._client is None:
            return
        try:
            code, _ = self._client.rset()
            self._clean = code == 250
        except Exception:
            self._clean = False
        if not self._clean:
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._clean = True

    def take_transcript(self) -> list[str]:
        """Transcript lines recorded since the last result (e.g. the QUIT after close())."""
        return self._transcript.take()

    def close(self) -> None:
        """QUIT politely, then close."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.sock is not None:
                client.quit()
        except Exception:
            pass
        finally:
            client.close()


def send_mail(
    settings: MailSettings,
    credentials: CredentialStore,
    request: MailRequest,
    *,
    transcript: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> SendResult:
    """Send one message over a fresh connection (UsageError for bad input, else a result)."""
    session = MailSession(settings, credentials, transcript=transcript, on_line=on_line)
    try:
        result = session.send(request)
    finally:
        session.close()
    if result.transcript is not None:
        result.transcript.extend(session.take_transcript())  # the QUIT
    return result
