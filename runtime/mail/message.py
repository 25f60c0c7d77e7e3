"""Building a message with the `email` package: addresses, headers, bodies, attachment policy."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from jcsh.runtime.annotations import cast
from jcsh.runtime.errors import JobFailed, UsageError

# The email package (~55 M instructions to import) only for what needs it: a plain address, the
# Date and the Message-ID come from runtime/mail/plain.py, which writes what email.utils writes.
from jcsh.runtime.mail.plain import format_datetime, localtime, make_msgid, plain_address
from jcsh.runtime.records import NamedTuple

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from email.headerregistry import Address
    from email.message import EmailMessage

    from jcsh.runtime.mail.settings import MailSettings

__all__ = ["MailRequest", "BuiltMessage", "build_message", "parse_address", "check_header_value"]

# Headers build_message writes itself: an extra header of the same name would duplicate or
# (Bcc) leak them, so these come only from the request's own fields.
_OWN_HEADERS = frozenset(
    {
        "to",
        "cc",
        "bcc",
        "from",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
    }
)
# Extra headers the email package parses as addresses or dates (its header registry) rather than
# keeping their text: the plain composer leaves them to it.
_STRUCTURED = frozenset(
    {
        "sender",
        "reply-to",
        "orig-date",
        "resent-date",
        "resent-sender",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-bcc",
    }
)
_FIELD_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 ftext: printable ASCII except ':'
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but TAB
_NON_ASCII_LOCAL = "local-part contains non-ASCII characters"


class MailRequest(NamedTuple):
    """What to send: recipients, sender override, subject, bodies, extra headers, attachments."""

    to: Sequence[str]
    cc: Sequence[str] = ()
    bcc: Sequence[str] = ()
    from_: str | None = None
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    headers: Mapping[str, str] | None = None
    attachments: Sequence[str] = ()


class BuiltMessage(NamedTuple):
    """A message ready for the SMTP dialogue: its bytes' source, envelope and warnings."""

    message: EmailMessage | bytes  # bytes when written by the plain composer (see _plain_bytes)
    envelope_from: str
    recipients: list[str]  # addr-specs in To, Cc, Bcc order, duplicates removed
    message_id: str
    smtputf8: bool  # an address needs SMTPUTF8 (non-ASCII local part)
    warnings: list[str]

    def as_bytes(self) -> bytes:
        if isinstance(self.message, bytes):
            return self.message
        from email import policy as email_policy

        return self.message.as_bytes(policy=email_policy.SMTPUTF8 if self.smtputf8 else email_policy.SMTP)


def check_header_value(name: str, value: str) -> str:
    """Refuse CR, LF and other control characters in a header value (header injection)."""
    if not isinstance(value, str):
        raise UsageError(f"the {name} header must be text, not {type(value).__name__}")
    if "\r" in value or "\n" in value:
        raise UsageError(f"the {name} header contains a line break (CR or LF); refused (header injection)")
    if _CONTROL.search(value) is not None:
        raise UsageError(f"the {name} header contains a control character; refused")
    return value


@functools.lru_cache(maxsize=512)  # batches repeat the same few addresses; the parser is slow
def parse_address(text: str, what: str = "address") -> tuple[Address, bool]:
    """One mailbox ("a@b.example" or "Name <a@b.example>") and whether it needs SMTPUTF8."""
    check_header_value(what, text)
    plain = plain_address(text)
    if plain is not None:  # it reads as itself, ASCII: no need to import email's header registry
        return cast("Address", plain), False  # it has every attribute of an Address read here
    from email import policy as email_policy

    try:
        header = email_policy.SMTP.header_factory("To", text)
    except Exception:  # the parser raises IndexError, HeaderParseError...: all mean "does not parse"
        raise UsageError(f"{what} {text!r} is not a valid email address") from None
    defects = [str(d) for d in header.defects]
    utf8 = any(_NON_ASCII_LOCAL in d for d in defects)
    defects = [d for d in defects if _NON_ASCII_LOCAL not in d]
    addresses = header.addresses
    if defects or len(addresses) != 1 or header.groups[0].display_name is not None:
        why = defects[0] if defects else ("it holds more than one address" if len(addresses) > 1 else "")
        raise UsageError(f"{what} {text!r} is not a valid email address" + (f": {why}" if why else ""))
    address = addresses[0]
    if not address.username or not address.domain:
        raise UsageError(f"{what} {text!r} is not a valid email address: it needs a user and a domain")
    return address, utf8 or not address.domain.isascii()


def _addresses(texts: Sequence[str], what: str) -> tuple[list[Address], bool]:
    if isinstance(texts, str):
        texts = [texts]
    parsed = [parse_address(t, f"{what} address") for t in texts]
    return [a for a, _ in parsed], any(u for _, u in parsed)


def _attachment(path_text: str, base: Path) -> tuple[Path | None, str | None]:
    """(resolved file, None) when readable inside AccessiblePath, else (None, why not)."""
    try:
        path = Path(path_text).expanduser().resolve(strict=True)  # symlinks followed
    except (OSError, RuntimeError):
        return None, f"attachment {path_text} does not exist"
    if not path.is_relative_to(base):
        return None, f"attachment {path_text} ({path}) lies outside AccessiblePath {base}"
    if not path.is_file():
        return None, f"attachment {path_text} is not a regular file"
    return path, None


def _mime_type(path: Path) -> tuple[str, str]:
    import mimetypes  # attachments only

    kind, encoding = mimetypes.guess_type(path.name, strict=False)
    if encoding == "gzip":
        return "application", "gzip"
    if kind is None or encoding is not None:
        return "application", "octet-stream"
    main, _, sub = kind.partition("/")
    return main, sub


def build_message(settings: MailSettings, request: MailRequest) -> BuiltMessage:
    """The EmailMessage for a request; UsageError for bad input, JobFailed for an attachment refused."""
    to, u1 = _addresses(request.to, "To")
    cc, u2 = _addresses(request.cc, "Cc")
    bcc, u3 = _addresses(request.bcc, "Bcc")
    if not (to or cc or bcc):
        raise UsageError("no recipient: give at least one To, Cc or Bcc address")
    sender_text = request.from_ or settings.from_.value
    if not sender_text:
        raise UsageError("no From address: set /configuration/mail/From (jcsh configure) or give --from")
    sender, u4 = parse_address(sender_text, "From address")
    envelope_text = settings.envelope_from.value
    envelope, u5 = parse_address(envelope_text, "mail.smtp.from") if envelope_text else (sender, False)
    subject = check_header_value("Subject", request.subject or "")
    extra: list[tuple[str, str]] = []
    for name, value in (request.headers or {}).items():
        if not isinstance(name, str) or not _FIELD_NAME.match(name):
            raise UsageError(f"header name {name!r} is not valid (printable ASCII, no spaces or ':')")
        if name.lower() in _OWN_HEADERS:
            raise UsageError(f"header {name} is set from its own option, not as an extra header")
        extra.append((name, check_header_value(name, value)))

    warnings: list[str] = []
    files: list[Path] = []
    base = Path(settings.accessible_path.value).expanduser().resolve() if request.attachments else Path()
    for text in request.attachments or []:
        path, why = _attachment(text, base)
        if path is not None:
            files.append(path)
        elif settings.attachment_error.value == "Skip":
            warnings.append(f"{why}; sent without it (AttachmentError=Skip)")
        else:
            raise JobFailed(f"{why}; nothing was sent (AttachmentError={settings.attachment_error.value})")

    # make_msgid() without a domain calls getfqdn(), a DNS lookup that can stall: use the sender's.
    date, message_id = format_datetime(localtime()), make_msgid(domain=sender.domain.strip("[]") or "jcsh.invalid")
    smtputf8 = u1 or u2 or u3 or u4 or u5
    seen: dict[str, None] = {}
    for address in (*to, *cc, *bcc):  # Bcc reaches the envelope only: it is never a header
        seen.setdefault(address.addr_spec, None)
    if request.html is None and not files and not smtputf8:
        data = _plain_bytes(sender, to, cc, subject, date, message_id, extra, request.body or "")
        if data is not None:
            return BuiltMessage(data, envelope.addr_spec, list(seen), message_id, False, warnings)

    from email import policy as email_policy
    from email.headerregistry import AddressHeader
    from email.message import EmailMessage

    msg = EmailMessage(policy=email_policy.SMTP)
    msg["From"] = sender
    if to:
        msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    for name, value in extra:
        try:
            msg[name] = value
            header = msg[name]
            defects = getattr(header, "defects", ()) if isinstance(header, AddressHeader) else ()
        except Exception:  # an address header's parser raises IndexError, HeaderParseError... (3.11, 3.12)
            defects = ("it does not parse",)
        if defects:  # 3.13 records what earlier versions raised as a defect: refuse it the same way
            raise UsageError(f"header {name} {value!r} is not a valid address list: {defects[0]}")
    msg.set_content(request.body or "")
    if request.html is not None:
        msg.add_alternative(request.html, subtype="html")
    for path in files:
        from jcsh.runtime.bounded import ATTACHMENT, read_bytes  # attachments only

        main, sub = _mime_type(path)
        try:
            data = read_bytes(path, f"attachment {path}", ATTACHMENT)
        except OSError as e:
            raise JobFailed(f"cannot read attachment {path}: {e.strerror}; nothing was sent") from None
        msg.add_attachment(data, maintype=main, subtype=sub, filename=path.name)

    return BuiltMessage(msg, envelope.addr_spec, list(seen), message_id, smtputf8, warnings)


@functools.cache
def _plain_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """What the plain composer writes as it is: (unstructured text, a display name, an addr-spec)."""
    atext = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    return (
        re.compile(r"[ -~]*\Z"),  # printable ASCII; "=?" (an encoded word's look) is checked apart
        re.compile(rf"{atext}(?: {atext})*\Z"),  # atoms: the email package neither quotes nor encodes them
        re.compile(rf"{atext}(?:\.{atext})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z"),
    )


def _plain_bytes(
    sender: Address,
    to: list[Address],
    cc: list[Address],
    subject: str,
    date: str,
    message_id: str,
    extra: list[tuple[str, str]],
    body: str,
) -> bytes | None:
    """The message the email package would write (policy SMTP), written directly, or None to let it.

    Only for what it writes unchanged: ASCII headers that need no folding (at most 78 characters a
    line), no quoting or encoding; a plain ASCII text body of lines of at most 78 characters, which
    it sends as 7bit. `EmailMessage` creates a header object per header and a generator per message:
    ~0.5 ms a message, most of a batch's client time. tests/test_mail_compose.py holds the two equal.
    """
    text, name, spec = _plain_patterns()

    def addresses(items: list[Address]) -> str | None:
        shown = []
        for a in items:
            addr = a.addr_spec  # a property that rebuilds the string at each call
            if not spec.match(addr) or (a.display_name and not name.match(a.display_name)):
                return None
            shown.append(f"{a.display_name} <{addr}>" if a.display_name else addr)
        return ", ".join(shown)

    fields = [("From", addresses([sender]))]
    if to:
        fields.append(("To", addresses(to)))
    if cc:
        fields.append(("Cc", addresses(cc)))
    fields += [("Subject", subject), ("Date", date), ("Message-ID", message_id), *extra]
    unstructured = {"Subject", *(n for n, _ in extra)}
    if any(n.lower() in _STRUCTURED for n, _ in extra):  # parsed and rewritten by the email package
        return None
    lines = []
    for field, value in fields:
        if value is None:
            return None
        if field in unstructured and (not text.match(value) or "=?" in value):
            return None
        line = f"{field}: {value}" if value else f"{field}:"
        if len(line) > 78:  # policy.SMTP.max_line_length: the email package would fold it
            return None
        lines.append(line)
    if not body.isascii():
        return None
    body_lines = body.encode("ascii").splitlines()  # bytes split at CR, LF and CRLF only, as email's
    if any(len(b) > 78 for b in body_lines):
        return None
    lines += ('Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: 7bit", "MIME-Version: 1.0", "")
    return ("\r\n".join(lines) + "\r\n").encode("ascii") + b"".join(b + b"\r\n" for b in body_lines or [b""])
