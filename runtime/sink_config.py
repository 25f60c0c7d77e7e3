"""The sink's configuration and what it records: stages, fault codes, mechanisms, `SinkConfig`, `Received`.

A leaf: `runtime.sink` (the server), `runtime.sink_smtp` and `runtime.sink_auth` (its aiosmtpd
side) all import it, and the aiosmtpd side knows the server only as `SinkState`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import mailbox

    from aiosmtpd.smtp import SMTP

__all__ = [
    "SinkConfig",
    "SinkState",
    "Received",
    "parse_fail",
    "check_stage",
    "check_code",
    "read_token_file",
    "DROP",
    "STALL",
    "STAGES",
    "MODES",
    "MECHANISMS",
    "PASSWORD_MECHANISMS",
    "TOKEN_MECHANISMS",
]

MODES = ("plain", "starttls", "implicit")
STAGES = ("connect", "helo", "auth", "mail", "rcpt", "data")  # and "rcpt:<address>"
DROP = 0  # as a fail code: hang up without replying
STALL = 1  # as a fail code: never reply (the client's timeout ends it)
_WORDS = {"drop": DROP, "stall": STALL}
PASSWORD_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
TOKEN_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
MECHANISMS = PASSWORD_MECHANISMS + TOKEN_MECHANISMS
_MAX_TOKEN_FILE = 1 << 20


def read_token_file(path: Path) -> frozenset[str]:
    """The access tokens in a file, one a line (blank lines skipped); ValueError says what is wrong."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_TOKEN_FILE + 1)
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from None
    if len(data) > _MAX_TOKEN_FILE:
        raise ValueError(f"{path} is larger than 1 MB: not a token list")
    tokens = set()
    for n, raw in enumerate(data.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if any(b < 0x21 or b > 0x7E for b in line):  # never quote the line: it may be a token
            raise ValueError(f"{path} line {n} is not one token (spaces, control or non-ASCII characters)")
        tokens.add(line.decode("ascii"))
    if not tokens:
        raise ValueError(f"{path} holds no token")
    return frozenset(tokens)


def check_stage(stage: str) -> str:
    """The stage, lower-cased; ValueError when it is not one of STAGES or rcpt:<address>."""
    stage = stage.strip().lower()
    if stage not in STAGES and not (stage.startswith("rcpt:") and "@" in stage[5:]):
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}, rcpt:<address>")
    return stage


def check_code(code: int) -> int:
    """The code; ValueError unless 400-599, DROP or STALL."""
    if not (code in (DROP, STALL) or 400 <= code <= 599):
        raise ValueError(f"code {code} is not 400-599, drop or stall")
    return code


def parse_fail(spec: str) -> tuple[str, int]:
    """`STAGE=CODE` (CODE 400-599, `drop` or `stall`) -> (stage, code); ValueError says what is wrong."""
    stage, sep, code_text = spec.rpartition("=")  # rpartition: an address may hold "="
    if not sep or not stage.strip():
        raise ValueError(f"{spec!r} is not STAGE=CODE")
    code_text = code_text.strip().lower()
    if code_text in _WORDS:
        return check_stage(stage), _WORDS[code_text]
    if not code_text.isdigit():
        raise ValueError(f"code {code_text!r} is not 400-599, drop or stall")
    return check_stage(stage), check_code(int(code_text))


@dataclass
class SinkConfig:
    """How the sink listens, secures, authenticates and fails."""

    host: str = "127.0.0.1"
    port: int = 2525  # 0 = any free port
    mode: str = "plain"  # "plain" | "starttls" | "implicit"
    require_starttls: bool = False  # refuse MAIL/AUTH before STARTTLS (530)
    auth: dict[str, str] = field(default_factory=dict)  # user -> password
    auth_mechanisms: tuple[str, ...] = ()  # offered; () = PLAIN LOGIN with users, XOAUTH2 OAUTHBEARER with tokens
    oauth_token_file: Path | None = None  # access tokens accepted by XOAUTH2/OAUTHBEARER, re-read at each AUTH
    oauth_accept: Callable[[str], bool] | None = None  # in-process tests: tokens a live endpoint issued
    auth_require_tls: bool = False
    auth_required: bool = False  # refuse MAIL before a successful AUTH (530), like submission servers
    fail: dict[str, int] = field(default_factory=dict)  # stage -> code (see parse_fail)
    cert_path: Path | None = None
    key_path: Path | None = None
    cert_dir: Path | None = None  # where a generated certificate goes (default: a temp folder)
    min_version: ssl.TLSVersion | None = None
    max_version: ssl.TLSVersion | None = None
    ciphers: str | None = None  # an OpenSSL cipher list for TLS 1.2 and older (cipher-scan tests)
    server_cipher_order: bool = True  # False: follow the client's order of suites
    maildir: Path | None = None
    size_limit: int | None = None  # advertise SIZE
    hostname: str = "jcsh-sink"  # EHLO name
    pipelining: bool = True  # advertise PIPELINING: aiosmtpd reads pipelined commands in order, as RFC 2920 asks
    chunking: bool = False  # advertise CHUNKING and take BDAT (RFC 3030), as Postfix and Exim do by default

    def __repr__(self) -> str:  # the auth table holds passwords
        users = ", ".join(self.auth) or "none"
        return f"SinkConfig({self.host}:{self.port} {self.mode} auth users: {users})"

    def offered_mechanisms(self) -> tuple[str, ...]:
        """The AUTH mechanisms the sink offers (none without users or tokens)."""
        if self.auth_mechanisms:
            return self.auth_mechanisms
        tokens = self.oauth_token_file is not None or self.oauth_accept is not None
        return (("PLAIN", "LOGIN") if self.auth else ()) + (TOKEN_MECHANISMS if tokens else ())

    def check(self) -> None:
        """Raise ValueError for a contradictory configuration."""
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not 0-65535")
        if self.require_starttls and self.mode != "starttls":
            raise ValueError("require_starttls needs mode starttls")
        tokens = self.oauth_token_file is not None or self.oauth_accept is not None
        if self.auth_required and not self.auth and not tokens:
            raise ValueError("auth_required needs at least one user in auth or an OAuth token list")
        for mech in self.auth_mechanisms:
            if mech not in MECHANISMS:
                raise ValueError(f"AUTH mechanism {mech!r} is not one of {', '.join(MECHANISMS)}")
            if mech in PASSWORD_MECHANISMS and not self.auth:
                raise ValueError(f"{mech} needs at least one user and password")
            if mech in TOKEN_MECHANISMS and not tokens:
                raise ValueError(f"{mech} needs a list of accepted access tokens")
        if (self.cert_path is None) != (self.key_path is None):
            raise ValueError("give both a certificate and its key, or neither")
        for stage, code in self.fail.items():
            check_stage(stage)
            check_code(code)
        if self.size_limit is not None and self.size_limit <= 0:
            raise ValueError(f"size limit {self.size_limit} is not positive")


@dataclass
class Received:
    """One accepted message, as the sink saw it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls_version: str | None
    authenticated_as: str | None
    peer: str
    queue_id: str = ""

    def message(self) -> EmailMessage:
        """The content parsed with the default (modern) policy."""
        return message_from_bytes(self.content, policy=policy.default)

    @property
    def subject(self) -> str | None:
        """The Subject as `message()["Subject"]` gives it; plain ASCII ones without parsing the message."""
        plain, subject = _plain_subject(self.content)
        return subject if plain else self.message()["Subject"]

    def to_json(self) -> dict[str, Any]:
        return {
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "size": len(self.content),
            "subject": self.subject,
            "tls_version": self.tls_version,
            "authenticated_as": self.authenticated_as,
            "peer": self.peer,
            "queue_id": self.queue_id,
        }


def _plain_subject(content: bytes) -> tuple[bool, str | None]:
    """(True, the Subject or None) for a message whose header block is plain; (False, None) otherwise.

    Plain: ASCII, CRLF line ends, every line a field or a continuation, no encoded word or control
    character in the Subject. The sink prints one line a message: parsing the whole message with
    email's header registry for it was a third of the sink's time in a batch.
    """
    import re

    end = content.find(b"\r\n\r\n")
    if end < 0 or not content[:end].isascii():
        return False, None
    subject: list[bytes] | None = None
    collecting = False
    for i, line in enumerate(content[:end].split(b"\r\n")):
        if b"\r" in line or b"\n" in line:
            return False, None
        if line[:1] in (b" ", b"\t"):
            if i == 0:
                return False, None
            if collecting:
                subject.append(line)  # type: ignore[union-attr]
            continue
        if re.match(rb"[!-9;-~]+:", line) is None:
            return False, None
        collecting = subject is None and line[:8].lower() == b"subject:"
        if collecting:
            subject = [line[8:].lstrip(b" \t")]
    if subject is None:
        return True, None
    value = b"".join(subject).decode("ascii")
    if "=?" in value or any((c < " " and c != "\t") or c == "\x7f" for c in value):
        return False, None
    return True, value


class SinkState(Protocol):
    """What the aiosmtpd hooks need of `runtime.sink.Sink` (which imports them, not the reverse)."""

    config: SinkConfig
    maildir: mailbox.Maildir | None
    sessions: set[SMTP]
    trigger_peer: tuple[str, int] | None

    def event(self, text: str) -> None: ...

    def deliver(self, received: Received) -> None: ...
