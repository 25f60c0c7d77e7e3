"""The aiosmtpd side of the sink: hooks (faults, AUTH, storage), session and controller.

Imported by `runtime.sink.Sink.start()` only, so that the sink's configuration can be built and
checked without loading aiosmtpd.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import ssl
import threading
import uuid
from collections.abc import Callable
from email._header_value_parser import get_addr_spec, get_angle_addr  # what aiosmtpd parses with
from email.errors import HeaderParseError
from types import MethodType
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from jcsh.runtime.hosts import host_port
from jcsh.runtime.sink_auth import SinkAuth
from jcsh.runtime.sink_config import DROP, STALL, Received, SinkState

__all__ = ["SinkHandler", "SinkController"]

_WORDS = {DROP: "drop", STALL: "stall"}
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?: +([^ \t(][^\r\n]*))?\Z")
_MAX_BDAT = 64 * 1024 * 1024  # a message's size without --size: the sink keeps every message in memory

# aiosmtpd logs to "mail.log"; without a handler its warnings would reach stderr through logging's
# last resort. A NullHandler keeps them quiet unless the application configures logging.
logging.getLogger("mail.log").addHandler(logging.NullHandler())


def _peer(session: Session) -> str:
    peer = session.peer if isinstance(session.peer, tuple) else ("?", 0)
    return host_port(str(peer[0]), int(peer[1]))


def _tls_version(server: SMTP) -> str | None:
    ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
    return ssl_object.version() if ssl_object is not None else None


class SinkHandler(SinkAuth):
    """aiosmtpd hooks: faults by stage, AUTH against the table or the tokens, storage of accepted mail."""

    def __init__(self, sink: SinkState) -> None:
        self.sink = sink
        self.config = sink.config

    async def fail(self, server: SMTP, stage: str) -> str | None:
        """The reply for a stage asked to fail, or None; drop, stall and 421 never return."""
        code = self.config.fail.get(stage)
        if code is None:
            return None
        self.sink.event(f"failing {stage} with {_WORDS.get(code, code)}")
        reply = f"{code} jcsh sink: failing {stage} as asked"
        if isinstance(server, _SinkSMTP):  # the replies held for a pipelined group go out before a drop or stall
            await server.flush()
        if code == 421:  # "closing transmission channel": say it, then do it
            await server.push(reply)
        if code in (DROP, 421) and server.transport is not None:
            server.transport.close()
        if code in (DROP, STALL, 421):
            await asyncio.Event().wait()  # until connection_lost() or stop() cancels this session
        return reply

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str) -> str:
        reply = await self.fail(server, "helo")
        if reply is not None:
            return reply
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        reply = await self.fail(server, "helo")
        if reply is not None:
            return [reply]
        session.host_name = hostname
        # Offer AUTH only when someone can log in, and not before a STARTTLS that is required.
        if not self.config.offered_mechanisms() or (self.config.require_starttls and session.ssl is None):
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        if self.config.pipelining:
            responses.insert(1, "250-PIPELINING")
        if self.config.chunking:
            responses.insert(1, "250-CHUNKING")
        return responses

    def handle_STARTTLS(self, server: SMTP, session: Session, envelope: Envelope) -> bool:
        self.sink.event(f"STARTTLS {_tls_version(server)}")
        return True

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> Any:
        reply = await self.fail(server, "auth")
        return MISSING if reply is None else reply

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):  # its repr would show the password: never log it
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        expected = self.config.auth.get(login)
        ok = expected is not None and hmac.compare_digest(expected.encode("utf-8"), auth_data.password)
        self.sink.event(f"AUTH {mechanism} {login}: {'accepted' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        reply = await self.fail(server, "mail")
        if reply is not None:
            return reply
        # Checked here rather than with aiosmtpd's auth_required, which warns when TLS is not required.
        if self.config.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        for stage in (f"rcpt:{address.lower()}", "rcpt"):
            reply = await self.fail(server, stage)
            if reply is not None:
                return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await self.fail(server, "data")
        if reply is not None:
            return reply
        content = envelope.original_content or b""
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            content=content,
            tls_version=_tls_version(server),
            authenticated_as=session.auth_data if session.authenticated else None,
            peer=_peer(session),
            queue_id=uuid.uuid4().hex[:12].upper(),
        )
        if self.sink.maildir is not None:
            received.queue_id = self.sink.maildir.add(content)
        self.sink.deliver(received)
        return f"250 OK: queued as {received.queue_id}"

    async def handle_exception(self, error: Exception) -> str:
        # A failed STARTTLS handshake lands here; record it instead of aiosmtpd's traceback log.
        cause = error.__cause__ or error
        self.sink.event(f"error: {type(cause).__name__}: {cause}")
        return f"451 jcsh sink: {type(error).__name__}"


class _Session(Session):
    """A Session whose login_data does not log aiosmtpd's deprecation warning on every AUTH."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP with a failing greeting when asked (stage "connect")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fresh()
        if not self.event_handler.config.chunking:  # not offered: BDAT is an unknown command, as in aiosmtpd
            del self._smtp_methods["BDAT"]

    def _fresh(self) -> None:
        """The sink's own state of a connection."""
        self._chunks_of: Envelope | None = None  # the transaction the BDAT chunks so far belong to
        self._chunks = bytearray()  # the transaction's chunks so far, joined as they come
        self._too_much = False
        self._held: list[bytes] = []  # lines not sent yet: a reply's first lines, a pipelined group's 250s

    def _create_session(self) -> Session:
        return _Session(self.loop)

    async def push(self, status: AnyStr) -> None:
        """A reply line; the lines of a multi-line reply, and a 250 while the next pipelined command
        already waits, are held and sent with the next.

        aiosmtpd writes each line on its own, a send (and after STARTTLS a TLS record) each: EHLO's
        lines were 13 of the 18 sends of a probe's STARTTLS connection. A continuation line (`250-`)
        is always followed by the rest of its reply from the same caller. RFC 2920 asks a server to
        send the replies to a group of MAIL/RCPT/RSET as a unit. A held reply never waits on the
        client: the command after it is already here and is answered at once (faults flush before
        they stall).
        """
        response = status if isinstance(status, bytes) else status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        more = response[response.rfind(b"\n") + 1 :][3:4] == b"-"  # the last line is "NNN-": more lines follow
        unread = getattr(self._reader, "_buffer", b"")  # asyncio.StreamReader's unread bytes
        grouped = response[:4] == b"250 " and b"\n" in unread
        if (more or grouped) and len(self._held) < 100:
            self._held.append(response + b"\r\n")
            return
        self._held.append(response + b"\r\n")
        await self.flush()

    async def flush(self) -> None:
        """Send the replies held so far."""
        if self._held:
            data, self._held = b"".join(self._held), []
            self._writer.write(data)
            await self._writer.drain()

    @syntax("BDAT size [LAST]")
    async def smtp_BDAT(self, arg: str | None) -> None:
        """A chunk of the message (RFC 3030): `size` octets follow the command; LAST ends the message.

        The chunk is read whatever the verdict, so that the next command is found where it starts.
        The message then goes where DATA's goes (the handler's DATA hook: faults, storage).
        """
        words = (arg or "").split()
        if not (1 <= len(words) <= 2 and words[0].isdigit() and words[1:] in ([], ["LAST"])):
            await self.push("501 5.5.4 Syntax: BDAT size [LAST]; closing (the chunk's end is unknown)")
            if self.transport is not None:
                self.transport.close()
            return
        size, last = int(words[0]), len(words) == 2
        limit = self.data_size_limit or _MAX_BDAT
        if size > limit:
            await self.push("552 5.3.4 Error: Too much mail data; closing")
            if self.transport is not None:
                self.transport.close()
            return
        chunk = await self._reader.readexactly(size)
        if await self.check_helo_needed() or await self.check_auth_needed("BDAT"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if self._chunks_of is not self.envelope:  # a new transaction: MAIL (or RSET) made a new envelope
            self._chunks_of, self._chunks, self._too_much = self.envelope, bytearray(), False
        # One growing buffer: a flood of small or empty chunks costs neither a list entry each nor
        # a re-count of everything received at each chunk.
        self._chunks += chunk
        self._too_much = self._too_much or len(self._chunks) > limit
        if self._too_much:
            self._chunks.clear()
        if not last:
            await self.push("552 5.3.4 Error: Too much mail data" if self._too_much else f"250 2.0.0 {size} octets")
            return
        content, too_much = bytes(self._chunks), self._too_much
        self._chunks_of, self._chunks = None, bytearray()
        if too_much:
            self._set_post_data_state()
            await self.push("552 5.3.4 Error: Too much mail data")
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's own parse of a MAIL/RCPT address, without the `typing.Protocol` class it
        defines at every call (~14 % of the sink's time in a batch of small messages), and a plain
        `<user@domain> PARAMS` read by a regular expression (email's parser: another ~15 %)."""
        if not arg:
            return "", ""
        plain = _PLAIN_PATH.match(arg)  # <dot-atom@domain> [params]: what email's parser returns, read directly
        if plain is not None:
            addr, rest = plain.group(1), plain.group(2) or ""
        else:
            try:
                address, rest = (get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec)(arg)
            except HeaderParseError:
                return None, None
            addr = address.addr_spec
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.event_handler.sink.sessions.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.sink.sessions.discard(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        handler: SinkHandler = self.event_handler
        assert self.session is not None
        if self.session.peer and tuple(self.session.peer[:2]) == handler.sink.trigger_peer:
            handler.sink.trigger_peer = None  # the Controller's start-up poke, not a client
            if self.transport is not None:
                self.transport.close()
            return
        handler.sink.event(f"connect {_peer(self.session)}")
        if "connect" in handler.config.fail:
            reply = await handler.fail(self, "connect")
            if reply is not None:
                await self.push(reply)
                if self.transport is not None:
                    self.transport.close()
            return
        await super()._handle_client()


_SHAREABLE = (type(None), bool, int, float, str, bytes, ssl.SSLContext, asyncio.AbstractEventLoop)


def _bound_to(method: Any, owner: object) -> bool:
    return getattr(method, "__self__", None) is owner


class _Blueprint:
    """What aiosmtpd's `SMTP.__init__` works out for a connection, worked out once for them all.

    `SMTP.__init__` finds its commands, hooks and AUTH mechanisms by introspection
    (`inspect.getmembers`, `dir`, `inspect.signature`) at every connection: ~170 us, a fifth of
    the sink's CPU for a STARTTLS connection. Every connection has the same handler and options,
    so the first connection's attributes are copied and its bound methods bound to each new one.
    `usable` is False when an attribute is of a kind this cannot copy safely (another aiosmtpd):
    then every connection goes through `SMTP.__init__`.
    """

    def __init__(self, first: _SinkSMTP) -> None:
        handler = first.event_handler
        self.loop = first.loop
        reader = asyncio.StreamReader(loop=self.loop)
        bare = asyncio.StreamReaderProtocol(reader, client_connected_cb=first._cb_client_connected, loop=self.loop)
        own = _SinkSMTP.__new__(_SinkSMTP)
        own._fresh()
        per_connection = {*vars(bare), *vars(own), "_smtp_methods", "_auth_methods", "_handle_hooks"}
        self.shared = {k: v for k, v in vars(first).items() if k not in per_connection}
        # Commands are methods of the connection; AUTH mechanisms of the connection or the handler.
        self.commands: list[tuple[str, Callable[..., Any]]] = [
            (name, getattr(m, "__func__", m)) for name, m in first._smtp_methods.items()
        ]
        self.mechanisms = list(first._auth_methods.items())  # (name, (method, is_builtin))
        self.hooks = dict(first._handle_hooks)
        self.usable = (
            all(isinstance(v, _SHAREABLE) or v is handler or _bound_to(v, handler) for v in self.shared.values())
            and all(_bound_to(first._smtp_methods[name], first) for name, _ in self.commands)
            and all(_bound_to(a.method, first if a.is_builtin else handler) for a in first._auth_methods.values())
            and all(_bound_to(hook, handler) for hook in self.hooks.values())
        )

    def build(self) -> _SinkSMTP:
        """A new connection's protocol, as `_SinkSMTP(handler, **options)` makes it."""
        server = _SinkSMTP.__new__(_SinkSMTP)
        reader = asyncio.StreamReader(loop=self.loop, limit=server.line_length_limit)
        asyncio.StreamReaderProtocol.__init__(
            server, reader, client_connected_cb=server._cb_client_connected, loop=self.loop
        )
        server.__dict__.update(self.shared)
        server.command_size_limits.clear()  # SMTP.__init__ resets this class-wide table at every connection
        server._smtp_methods = {name: MethodType(func, server) for name, func in self.commands}
        server._auth_methods = {
            name: a._replace(method=MethodType(a.method.__func__, server)) if a.is_builtin else a  # type: ignore[attr-defined]
            for name, a in self.mechanisms
        }
        server._handle_hooks = dict(self.hooks)
        server._fresh()
        return server


class SinkController(Controller):
    """Controller that binds port 0 to a free port and starts without a TLS handshake."""

    _blueprint: _Blueprint | None = None

    def factory(self) -> SMTP:
        if self._blueprint is not None and self._blueprint.usable:
            return self._blueprint.build()
        server = _SinkSMTP(self.handler, **self.SMTP_kwargs)
        if self._blueprint is None:
            self._blueprint = _Blueprint(server)
        return server

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _create_server(self) -> Any:
        return self._bind()

    def hang_up(self, sessions: set[SMTP]) -> None:
        """Stop accepting and close every open connection (from any thread), so nothing leaks past stop()."""

        async def close_all() -> None:
            if self.server is not None:
                self.server.close()
            for session in list(sessions):
                if session.transport is not None:
                    session.transport.close()
            for _ in range(3):  # let the connection_lost() callbacks run
                await asyncio.sleep(0)

        with contextlib.suppress(Exception):  # best effort: stop() ends the loop regardless
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(2.0)

    def _run(self, ready_event: threading.Event) -> None:
        super()._run(ready_event)
        if self._thread_exception is not None:  # could not bind: let start() raise now, not after its timeout
            self._factory_invoked.set()
            ready_event.set()

    def _trigger_server(self) -> None:
        if self._thread_exception is not None:
            return
        # asyncio builds the protocol on accept, before any TLS handshake: a bare connect is enough,
        # and works whatever TLS versions the server allows. The local address is known before the
        # connect so that the session can tell this poke from a client without a race.
        import socket

        family, kind, proto, _, address = socket.getaddrinfo(self.hostname, self.port, type=socket.SOCK_STREAM)[0]
        with contextlib.suppress(OSError), socket.socket(family, kind, proto) as s:
            s.settimeout(1.0)
            s.bind((address[0], 0))
            self.handler.sink.trigger_peer = s.getsockname()[:2]
            s.connect(address)
