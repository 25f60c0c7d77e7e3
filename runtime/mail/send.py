"""The SMTP transaction and sessions of many messages; one result for every path."""

from __future__ import annotations

import time

from jcsh.runtime.errors import ConfigError, ConnectFailed, JcshError, JobFailed, TempFailure, UsageError
from jcsh.runtime.hosts import bare_host, host_port
from jcsh.runtime.mail.connection import Connection, TrustSetup
from jcsh.runtime.mail.message import BuiltMessage, MailRequest, build_message
from jcsh.runtime.mail.result import SendResult, refusal
from jcsh.runtime.smtp.flight import Flight
from jcsh.runtime.smtp.transcript import Transcript
from jcsh.runtime.smtp.wire import BDAT_CHUNK, WIRE_ERRORS, Reply, ServerClosed, StepTimeout, Timeouts, Wire

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable

    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.mail.settings import MailSettings

__all__ = ["SendResult", "MailSession", "send_mail", "MailRequest", "QUIT_AFTER"]

QUIT_AFTER = ("connect", "tls", "auth", "rcpt")  # the steps `testmail --quit-after` can stop after


class _Reconnect(Exception):
    """The server closed a reused connection before the transaction began."""


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
        self._trust = TrustSetup(settings, credentials, bare_host(self.host))
        self._conn: Connection | None = None  # the open connection
        self._tried: Connection | None = None  # the connection the current message went over, or tried to
        self._linked = False  # the connection's facts are in the current result
        self._cap: float | None = None  # a monotonic deadline no step may pass (a script's time limit)
        self._clean = True  # no transaction left open on the connection

    def __enter__(self) -> MailSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MailSession({self.host!r}, {self.port}, {self.security!r}, connected={self._conn is not None})"

    # -- one message ---------------------------------------------------------------------------

    def send(self, request: MailRequest, *, deadline: float | None = None, quit_after: str | None = None) -> SendResult:
        """Send one message; UsageError for bad input, otherwise a result (status and error).

        `deadline` (time.monotonic()) bounds every step of this call, on top of the step timeouts.
        `quit_after` (connect, tls, auth, rcpt) checks the dialogue up to that step and sends nothing.
        """
        if quit_after is not None and quit_after not in QUIT_AFTER:
            raise UsageError(f"quit_after must be one of {', '.join(QUIT_AFTER)}, not {quit_after!r}")
        started = time.perf_counter()
        self._cap, self._linked, self._tried = deadline, False, self._conn
        if self._conn is not None and self._conn.wire is not None:  # reused: this call's deadline from now on
            self._conn.wire.timeouts = self._timeouts()
        result = SendResult(self.host or None, self.port, self.security)
        try:
            built = build_message(self.settings, request)  # UsageError escapes: nothing was tried
            result.message_id = built.message_id
            result.warnings.extend(built.warnings)
            if not self.host:
                raise ConfigError("no mail server is configured; run `jcsh configure`")
            if quit_after is not None:
                self._check(built, result, quit_after)
            else:
                self._deliver(built, result)
        except UsageError:
            raise
        except JcshError as e:
            self._failed(e, result)
        finally:
            result.elapsed_ms = round((time.perf_counter() - started) * 1000)
            if self._transcript.enabled:
                result.transcript = self._transcript.take()
        return result

    def _failed(self, e: JcshError, result: SendResult) -> None:
        conn = self._tried
        if conn is not None and not self._linked and conn.stage != "connect":
            conn.copy_to(result)  # what it got to, e.g. TLS and trust before a refused login
        result.fail(e)
        if conn is not None:
            result.step, result.tls_failure = conn.stage, conn.tls_failure
            if conn.refused_certificate is not None:  # trust failed: say which certificate it was
                result.certificate, conn.refused_certificate = conn.refused_certificate, None
        self._transcript.event(f"failed: {e.message}")
        if self._conn is not None and not self._clean:
            self._reset()

    def _deliver(self, built: BuiltMessage, result: SendResult) -> None:
        for attempt in range(2):
            fresh = self._conn is None
            try:
                if self._conn is None:
                    conn = self._tried = Connection(self.settings, self.credentials, self._transcript, self._trust)
                    try:
                        conn.open(self._timeouts())
                    except BaseException:  # half set up (no TLS, no login): never reuse it
                        conn.close()
                        raise
                    self._conn, self._clean = conn, True
                self._conn.copy_to(result)
                self._linked = True
                self._transaction(built, result, reused=not fresh)
                return
            except _Reconnect:
                self._drop()
                if fresh or attempt:
                    raise ConnectFailed(f"{self._where()} closed the connection before MAIL FROM") from None
                self._transcript.event("the server closed the connection; reconnecting")
            except WIRE_ERRORS:  # timed out, broke the protocol or hung up: the connection is unusable
                self._drop()
                raise
            except JcshError:
                raise
            except Exception as e:  # socket and TLS failures: the connection is gone
                self._drop()
                assert self._tried is not None
                raise self._tried.explain(e, self._timeouts()) from None

    def _check(self, built: BuiltMessage, result: SendResult, step: str) -> None:
        """`--quit-after`: a fresh connection up to `step`, then QUIT (after RCPT: RSET first); nothing is sent."""
        self._drop()  # a check always shows the whole dialogue, from the connect on
        conn = self._tried = Connection(self.settings, self.credentials, self._transcript, self._trust)
        try:
            conn.open(self._timeouts(), upto=step)
            conn.copy_to(result)
            self._linked = True
            if step == "rcpt":
                self._conn = conn
                self._recipients(conn, built, result)
        except WIRE_ERRORS:
            conn.close()
            raise
        except JcshError:
            self._conn = conn
            self.close()
            raise
        except Exception as e:
            conn.close()
            raise conn.explain(e, self._timeouts()) from None
        self._conn = conn
        self.close()  # QUIT
        result.status, result.quit_after = "checked", step
        self._transcript.event(f"checked up to {step}; nothing was sent")

    def _recipients(self, conn: Connection, built: BuiltMessage, result: SendResult) -> None:
        """MAIL FROM and one RCPT TO per recipient, each verdict kept; then RSET. Exit 1 when one is refused."""
        assert conn.wire is not None
        wire = conn.wire
        conn.stage = "MAIL FROM"
        reply = wire.command(f"MAIL FROM:<{built.envelope_from}>" + (" SMTPUTF8" if built.smtputf8 else ""))
        if reply.code != 250:
            raise refusal(f"the sender {built.envelope_from} (MAIL FROM)", reply)
        conn.stage = "RCPT TO"
        verdicts = []
        for rcpt in built.recipients:
            reply = wire.command(f"RCPT TO:<{rcpt}>", "RCPT TO")
            ok = reply.code in (250, 251)
            verdicts.append({"address": rcpt, "verdict": "accepted" if ok else "refused", "reply": str(reply)})
            if ok:
                result.accepted.append(rcpt)
            else:
                result.refused[rcpt] = str(reply)
        result.recipients = verdicts
        conn.stage = "RSET"
        wire.command("RSET")
        if result.refused:
            result.exit_code = 1
            result.error = {
                "kind": "refused",
                "message": f"the server refused {len(result.refused)} of {len(verdicts)} recipient(s) "
                "(checked; nothing was sent)",
            }

    def _transaction(self, built: BuiltMessage, result: SendResult, reused: bool) -> None:
        conn = self._conn
        assert conn is not None and conn.wire is not None
        wire = conn.wire
        data = built.as_bytes()
        options = ""
        if "size" in conn.features:
            words = conn.features["size"].split()
            limit = int(words[0]) if words and words[0].isdigit() else 0
            if limit and len(data) > limit:
                raise JobFailed(f"the message is {len(data)} bytes; {conn.where} accepts at most {limit} (SIZE)")
            options += f" SIZE={len(data)}"
        if built.smtputf8:
            if "smtputf8" not in conn.features:
                raise JobFailed(f"an address needs SMTPUTF8, which {conn.where} does not offer")
            options += " SMTPUTF8"
        # PIPELINING (RFC 2920): MAIL and every RCPT in one write, and the message's start (DATA, or
        # the whole message as BDAT when CHUNKING is offered) with them when a refused recipient
        # cannot leave a partial message: one recipient, or SendPartial true.
        pipelining = "pipelining" in conn.features
        chunking = "chunking" in conn.features
        partial_ok = bool(self.settings.send_partial.value)
        rcpts = built.recipients
        tail: list[str | bytes] = []
        if pipelining and (len(rcpts) == 1 or partial_ok):
            tail = Wire.bdat(data, BDAT_CHUNK) if chunking else ["DATA"]
        flight = Flight(wire, pipelining)
        conn.stage = "MAIL FROM"
        try:
            flight.send(
                [f"MAIL FROM:<{built.envelope_from}>{options}", *(f"RCPT TO:<{r}>" for r in rcpts), *tail], "MAIL FROM"
            )
        except ServerClosed:
            if reused:  # an idle connection the server closed: nothing was taken
                raise _Reconnect() from None
            raise
        self._clean = False
        try:
            reply = flight.reply("MAIL FROM")
        except ServerClosed:
            if reused and not chunking_sent(tail):  # no reply at all: the server had closed the idle connection
                raise _Reconnect() from None
            raise
        if reply.code == 421:  # closing: nothing more will be answered
            self._drop()
            if reused:
                raise _Reconnect()
            raise refusal(f"the sender {built.envelope_from} (MAIL FROM)", reply)
        if reply.code != 250:
            flight.drain(self._drop)  # the RCPTs' (and DATA's) replies, still owed, answer nothing
            raise refusal(f"the sender {built.envelope_from} (MAIL FROM)", reply)
        conn.stage = "RCPT TO"
        accepted: list[str] = []
        refused: dict[str, str] = {}
        codes: list[int] = []
        for rcpt in rcpts:
            reply = flight.ask(f"RCPT TO:<{rcpt}>", "RCPT TO")
            if reply.code in (250, 251):
                accepted.append(rcpt)
                continue
            refused[rcpt] = str(reply)
            codes.append(reply.code)
            if reply.code == 421:  # the server is closing: the rest cannot be asked
                for rest in rcpts[len(accepted) + len(refused) :]:
                    refused[rest] = "not tried: the server closed the connection"
                break
        result.refused = refused
        closed = 421 in codes
        if closed or (refused and (not accepted or not partial_ok)):
            if closed:
                self._drop()
                tail_text = "the server closed the connection, so nothing was sent"
            else:
                # DATA's 554/503 (or BDAT's) to a transaction without recipients is no verdict on the message.
                if flight.pending and any(r.code == 354 for r in flight.drain(self._drop)):
                    self._drop()  # a server waiting for a message nobody should get: hang up instead
                tail_text = "nothing was sent" if not accepted else "SendPartial is false, so nothing was sent"
            listed = "; ".join(f"{a}: {r}" for a, r in refused.items())
            text = f"the server refused {len(refused)} of {len(rcpts)} recipient(s) ({listed}); {tail_text}"
            raise TempFailure(text) if all(400 <= c < 500 for c in codes) else JobFailed(text, kind="refused")
        if chunking:
            reply = self._chunks(conn, flight, data, sent=bool(tail))
        else:
            conn.stage = "DATA"
            reply = flight.ask("DATA", "DATA")
            if reply.code != 354:
                raise refusal("DATA", reply)
            reply = self._transfer(conn, wire, data)
        if reply.code != 250:
            raise refusal("the message (end of DATA)" if not chunking else "the message (BDAT)", reply)
        self._clean = True
        result.final_reply = str(reply)
        result.accepted = accepted
        result.status = "partial" if refused else "sent"
        if refused:
            result.exit_code = 1
            result.error = {
                "kind": "partial",
                "message": f"sent to {len(accepted)} of {len(rcpts)} recipients; "
                f"{len(refused)} refused (SendPartial is true)",
            }

    def _chunks(self, conn: Connection, flight: Flight, data: bytes, *, sent: bool) -> Reply:
        """The message as BDAT chunks (already in flight when `sent`); the reply to the LAST one is final.

        A refused chunk before the last is the message's verdict: the replies still owed answer nothing.
        """
        conn.stage = "the message transfer"
        if not sent:
            flight.send(Wire.bdat(data, BDAT_CHUNK), conn.stage)
        while True:
            last = flight.next_command().endswith(" LAST")
            try:
                reply = flight.reply(conn.stage)
            except (StepTimeout, ServerClosed) as e:
                if last:
                    raise _no_final_reply(conn, e) from None
                raise
            if last:
                return reply
            if reply.code != 250:
                flight.drain(self._drop)
                return reply

    def _transfer(self, conn: Connection, wire: Wire, data: bytes) -> Reply:
        """The message and its final reply: one step; a missing reply is not a refusal."""
        conn.stage = "the message transfer"
        deadline = wire.deadline(conn.stage)
        try:
            wire.transfer(data, deadline)
        except ServerClosed:
            raise ConnectFailed(
                f"{conn.where} closed the connection during the message transfer; the message was not delivered"
            ) from None
        try:
            return wire.read_reply(deadline)
        except (StepTimeout, ServerClosed) as e:
            raise _no_final_reply(conn, e) from None

    # -- the connection ------------------------------------------------------------------------

    def _timeouts(self) -> Timeouts:
        return self.settings.timeouts(self._cap)

    def _where(self) -> str:
        return host_port(self.host, self.port)

    def _reset(self) -> None:
        """RSET after a failed transaction so the connection can carry the next message."""
        if self._conn is None or self._conn.wire is None:
            return
        try:
            self._clean = self._conn.wire.command("RSET").code == 250
        except Exception:
            self._clean = False
        if not self._clean:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._clean = True

    def take_transcript(self) -> list[str]:
        """Transcript lines recorded since the last result (e.g. the QUIT after close())."""
        return self._transcript.take()

    def close(self, *, deadline: float | None = None) -> None:
        """QUIT politely (briefly, and not past `deadline`), then close."""
        conn, self._conn = self._conn, None
        if conn is not None and conn.wire is not None:
            self._cap = deadline
            conn.wire.timeouts = self._timeouts()
            conn.wire.quit()


def _no_final_reply(conn: Connection, e: StepTimeout | ServerClosed) -> JcshError:
    """The whole message, its end included, is gone and no final reply came: it may be queued already."""
    after = "jcsh sent the whole message, so the server may still deliver it (sending it again can duplicate it)"
    if isinstance(e, StepTimeout):
        return StepTimeout(f"{e.message}: no final reply; {after}", step=e.step, spent=e.spent, by_cap=e.by_cap)
    return ServerClosed(f"{conn.where} closed the connection without a final reply; {after}", step=e.step)


def chunking_sent(tail: list[str | bytes]) -> bool:
    """Whether a pipelined group carried the message itself (BDAT), not only DATA."""
    return any(isinstance(item, bytes) for item in tail)


def send_mail(
    settings: MailSettings,
    credentials: CredentialStore,
    request: MailRequest,
    *,
    transcript: bool = False,
    deadline: float | None = None,
    on_line: Callable[[str], None] | None = None,
    quit_after: str | None = None,
) -> SendResult:
    """Send one message over a fresh connection (UsageError for bad input, else a result).

    `deadline` (time.monotonic()) bounds every step on top of the configured timeouts.
    """
    session = MailSession(settings, credentials, transcript=transcript, on_line=on_line)
    try:
        result = session.send(request, deadline=deadline, quit_after=quit_after)
    finally:
        session.close(deadline=deadline)
    if result.transcript is not None:
        result.transcript.extend(session.take_transcript())  # the QUIT
    return result
