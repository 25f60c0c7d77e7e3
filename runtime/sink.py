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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from jcsh.runtime.sink_config import (
    DROP,
    MECHANISMS,
    MODES,
    PASSWORD_MECHANISMS,
    STAGES,
    STALL,
    TOKEN_MECHANISMS,
    Received,
    SinkConfig,
    check_code,
    check_stage,
    parse_fail,
    read_token_file,
)

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
    "PASSWORD_MECHANISMS",
    "TOKEN_MECHANISMS",
    "read_token_file",
]

_OLD_TLS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)


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
