"""The test SMTP server (`jcsh sink`, and every mail test): aiosmtpd in a background thread.

Plain, STARTTLS or implicit TLS; AUTH PLAIN/LOGIN/CRAM-MD5 against a user table, XOAUTH2 and
OAUTHBEARER against a list of access tokens; a chosen reply code at a chosen stage for fault tests;
every accepted message kept as a `Received`, optionally in a Maildir.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mailbox

    from aiosmtpd.smtp import SMTP

    from jcsh.runtime.sink_smtp import SinkController

__all__ = [
    "SinkConfig",
    "Received",
    "Sink",
    "parse_fail",
    "check_stage",
    "check_code",
    "server_context",
    "DROP",
    "STALL",
    "STAGES",
    "MODES",
    "MECHANISMS",
    "read_token_file",
]

MODES = ("plain", "starttls", "implicit")
STAGES = ("connect", "helo", "auth", "mail", "rcpt", "data")  # and "rcpt:<address>"
DROP = 0  # as a fail code: hang up without replying
STALL = 1  # as a fail code: never reply (the client's timeout ends it)
_WORDS = {"drop": DROP, "stall": STALL}
_OLD_TLS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
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
        return self.message()["Subject"]

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


def server_context(
    cert: Path,
    key: Path,
    min_version: ssl.TLSVersion | None = None,
    max_version: ssl.TLSVersion | None = None,
    *,
    ciphers: str | None = None,
    server_cipher_order: bool = True,
) -> ssl.SSLContext:
    """A server SSLContext; TLSv1/1.1 get @SECLEVEL=0 ciphers, which OpenSSL 3 needs for them."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if min_version in _OLD_TLS or max_version in _OLD_TLS:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        min_version = min_version or ssl.TLSVersion.TLSv1
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if not server_cipher_order:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    with warnings.catch_warnings():  # ssl warns when old versions are enabled: that is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    return ctx


class Sink:
    """A running test SMTP server; a context manager."""

    def __init__(
        self,
        config: SinkConfig | None = None,
        *,
        on_message: Callable[[Received], None] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        config = config or SinkConfig()
        config.check()
        # A copy, so that the caller's config is left as given.
        self.config = replace(config, fail={k.lower(): v for k, v in config.fail.items()}, auth=dict(config.auth))
        self.on_message = on_message
        self.on_event = on_event
        self.host = self.config.host
        self.port = self.config.port
        self.cert_path: Path | None = self.config.cert_path
        self.key_path: Path | None = self.config.key_path
        self.messages: list[Received] = []
        self.events: list[str] = []  # connections, AUTH outcomes (never passwords), faults, errors
        self.maildir: mailbox.Maildir | None = None
        self._cond = threading.Condition()
        self._controller: SinkController | None = None
        self._tempdir: str | None = None
        self.trigger_peer: tuple[str, int] | None = None
        self.sessions: set[SMTP] = set()  # open connections, touched only in the server thread

    def __repr__(self) -> str:
        return f"Sink({self.host}:{self.port} {self.config.mode})"

    def event(self, text: str) -> None:
        with self._cond:
            self.events.append(text)
        if self.on_event is not None:
            with contextlib.suppress(Exception):  # a printing callback must not break the session
                self.on_event(text)

    def deliver(self, received: Received) -> None:
        with self._cond:
            self.messages.append(received)
            self._cond.notify_all()
        if self.on_message is not None:
            try:
                self.on_message(received)
            except Exception as e:  # a printing callback must not fail the SMTP session
                self.event(f"on_message failed: {e!r}")

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        """The messages once at least n have arrived; TimeoutError if they do not within timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= n, timeout):
                raise TimeoutError(f"{len(self.messages)} of {n} message(s) arrived within {timeout} s")
            return list(self.messages)

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.config.mode == "plain":
            return None
        if self.cert_path is None:
            from jcsh.runtime.tls.selfsigned import ensure_self_signed, generate_self_signed

            names = list(dict.fromkeys(["localhost", "127.0.0.1", "::1", self.host]))
            if self.config.cert_dir is not None:  # a kept folder: reuse, so a trusted copy stays valid
                self.cert_path, self.key_path, _ = ensure_self_signed(self.config.cert_dir, names)
            else:
                self._tempdir = tempfile.mkdtemp(prefix="jcsh-sink-")
                self.cert_path, self.key_path = generate_self_signed(Path(self._tempdir), names)
        assert self.key_path is not None
        cfg = self.config
        return server_context(
            self.cert_path,
            self.key_path,
            cfg.min_version,
            cfg.max_version,
            ciphers=cfg.ciphers,
            server_cipher_order=cfg.server_cipher_order,
        )

    def start(self) -> None:
        """Listen and serve in a background thread; returns once connections are accepted."""
        if self._controller is not None:
            return
        cfg = self.config
        if cfg.maildir is not None:
            for sub in ("tmp", "new", "cur"):  # Maildir(create=True) skips these when the folder exists
                (cfg.maildir / sub).mkdir(parents=True, exist_ok=True)
            import mailbox

            self.maildir = mailbox.Maildir(cfg.maildir, create=True)
        from jcsh.runtime.sink_smtp import SinkController, SinkHandler  # aiosmtpd only once a sink runs

        ctx = self._tls_context()
        handler = SinkHandler(self)
        controller = SinkController(
            handler,
            hostname=cfg.host,
            port=cfg.port,
            ssl_context=ctx if cfg.mode == "implicit" else None,
            server_hostname=cfg.hostname,
            ident="jcsh sink ESMTP",
            tls_context=ctx if cfg.mode == "starttls" else None,
            require_starttls=cfg.require_starttls,
            auth_require_tls=cfg.auth_require_tls,
            authenticator=handler.authenticate,
            auth_exclude_mechanism=[m for m in MECHANISMS if m not in cfg.offered_mechanisms()],
            data_size_limit=cfg.size_limit,
            decode_data=False,
            timeout=120,
        )
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            with contextlib.suppress(Exception):
                controller.loop.close()
            self._cleanup()
            raise
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        """Stop serving (open sessions are cut); safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.hang_up(self.sessions)
            controller.stop()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def __enter__(self) -> Sink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
