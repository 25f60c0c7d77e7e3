"""`mail`: the mail module's settings, configure, send, test mails, and sessions for many messages."""

from __future__ import annotations

from typing import Any

from jcsh.stdlib.errors import error_for, request
from jcsh.stdlib.records import check_flag, check_text, check_texts, to_records

__all__ = ["MailStub", "MailSessionStub"]


def _message(
    to: Any, subject: Any, body: Any, cc: Any, bcc: Any, from_addr: Any, html: Any, headers: Any, attachments: Any
) -> dict[str, Any]:
    if headers is None:
        headers = {}
    if type(headers) is not dict or not all(type(k) is str and type(v) is str for k, v in headers.items()):
        raise TypeError("headers must be a dict of strings")
    return {
        "to": check_texts(to, "to"),
        "cc": check_texts(cc, "cc"),
        "bcc": check_texts(bcc, "bcc"),
        "from": check_text(from_addr, "from_addr", optional=True),
        "subject": check_text(subject, "subject", optional=True),
        "body": check_text(body, "body", optional=True),
        "html": check_text(html, "html", optional=True),
        "headers": dict(headers),
        "attachments": check_texts(attachments, "attachments"),
    }


def _delivered(record: Any) -> Any:
    """A message not delivered to every recipient raises, as JavaMail's Transport.send throws.

    The error's `result` is the whole record (refused recipients, server replies, transcript).
    """
    if record.get("status") == "sent":
        return record
    error = record.get("error") or {}
    raised = error_for(str(error.get("kind") or "failed"), str(error.get("message") or f"mail {record.get('status')}"))
    raised.result = record
    raise raised


class MailStub:
    """The mail module: settings with their origin, configure, send and test mails."""

    __slots__ = ("_link",)

    def __init__(self, link: Any) -> None:
        self._link = link

    def settings(self, server: str | None = None) -> Any:
        """Every effective mail setting as {"value", "origin"}, plus warnings (as `jcsh mail settings --json`)."""
        return to_records(request(self._link, "mail.settings", {"server": check_text(server, "server", optional=True)}))

    def configure(self, from_addr: str, server: str | None = None) -> Any:
        """System_Mail_Configure: store From and Server (detected from the domain when None); the result record."""
        return to_records(
            request(
                self._link,
                "mail.configure",
                {"from": check_text(from_addr, "from_addr"), "server": check_text(server, "server", optional=True)},
            )
        )

    def send(
        self,
        to: Any,
        subject: str | None = None,
        body: str | None = None,
        *,
        cc: Any = None,
        bcc: Any = None,
        from_addr: str | None = None,
        html: str | None = None,
        headers: Any = None,
        attachments: Any = None,
        server: str | None = None,
        transcript: bool = False,
    ) -> Any:
        """Send one message; the result record, or a JcshError (with `.result`) when not all were delivered.

        Scripts cannot attach files (that would let a script read any file): attachments must stay empty.
        """
        params = _message(to, subject, body, cc, bcc, from_addr, html, headers, attachments)
        params.update(
            server=check_text(server, "server", optional=True), transcript=check_flag(transcript, "transcript")
        )
        return _delivered(to_records(request(self._link, "mail.send", params)))

    def test(
        self,
        to: Any,
        *,
        subject: str | None = None,
        body: str | None = None,
        server: str | None = None,
        transcript: bool = False,
        quit_after: str | None = None,
    ) -> Any:
        """Send a test mail like `jcsh testmail`; the result record says which step failed (never raises for it).

        quit_after="connect"|"tls"|"auth"|"rcpt" checks up to that step and sends nothing (status "checked").
        """
        params = _message(to, subject, body, None, None, None, None, None, None)
        params.update(
            server=check_text(server, "server", optional=True),
            transcript=check_flag(transcript, "transcript"),
            quit_after=check_text(quit_after, "quit_after", optional=True),
        )
        return to_records(request(self._link, "mail.test", params))

    def session(self, server: str | None = None, transcript: bool = False) -> MailSessionStub:
        """One connection for many messages: `with mail.session() as s: s.send(...)`."""
        opened = request(
            self._link,
            "mail.session.open",
            {"server": check_text(server, "server", optional=True), "transcript": check_flag(transcript, "transcript")},
        )
        return MailSessionStub(self._link, int(opened["id"]))

    def __repr__(self) -> str:
        return "mail"


class MailSessionStub:
    """Messages sent over one SMTP connection (reconnects when the server closes it)."""

    __slots__ = ("_id", "_link")

    def __init__(self, link: Any, session_id: int) -> None:
        self._link = link
        self._id = session_id

    def send(
        self,
        to: Any,
        subject: str | None = None,
        body: str | None = None,
        *,
        cc: Any = None,
        bcc: Any = None,
        from_addr: str | None = None,
        html: str | None = None,
        headers: Any = None,
        attachments: Any = None,
    ) -> Any:
        """Send one message on this session's connection; as `mail.send`, raises when not all were delivered."""
        params = _message(to, subject, body, cc, bcc, from_addr, html, headers, attachments)
        params["id"] = self._id
        return _delivered(to_records(request(self._link, "mail.session.send", params)))

    def close(self) -> None:
        """Close the connection (QUIT)."""
        request(self._link, "mail.session.close", {"id": self._id})

    def __enter__(self) -> MailSessionStub:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mail session {self._id}>"
