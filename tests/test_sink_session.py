"""The sink's connections: each built from the first one's blueprint, each reply written in one piece."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from typing import Any

import pytest

from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.sink_smtp import _SinkSMTP
from tests.support.pki import TestCA

MESSAGE = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hello sink\r\n\r\nbody\r\n"
TABLES = ("_smtp_methods", "_auth_methods", "_handle_hooks")


def _both(sink: Sink) -> tuple[Any, Any]:
    """(a protocol from the controller's factory, one from aiosmtpd's SMTP.__init__), made in the server thread."""
    controller = sink._controller
    assert controller is not None and controller._blueprint is not None and controller._blueprint.usable

    async def make() -> tuple[Any, Any]:
        return controller.factory(), _SinkSMTP(controller.handler, **controller.SMTP_kwargs)

    return asyncio.run_coroutine_threadsafe(make(), controller.loop).result(5)


def _method_names(table: dict[str, Any], owner: object) -> dict[str, tuple[str, bool]]:
    """name -> (function name, bound to owner) for a table of bound methods or AUTH mechanism records."""
    out = {}
    for name, value in table.items():
        method = getattr(value, "method", value)
        out[name] = (method.__func__.__qualname__, method.__self__ is owner)
    return out


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "starttls", "chunking": True},
        {"auth": {"u": "p"}, "auth_mechanisms": ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"), "oauth_accept": bool},
        {"size_limit": 1000, "require_starttls": True, "mode": "starttls", "auth": {"u": "p"}},
    ],
)
def test_a_connection_from_the_blueprint_is_what_smtp_init_makes(kw: dict[str, Any]) -> None:
    with Sink(SinkConfig(port=0, **kw)) as sink:
        fast, full = _both(sink)
        again, _ = _both(sink)
    assert type(fast) is type(full) and set(vars(fast)) == set(vars(full))
    for name, value in vars(full).items():
        mine = vars(fast)[name]
        if name in TABLES:
            assert _method_names(mine, fast) == _method_names(value, full), name
        elif isinstance(value, (asyncio.StreamReader, asyncio.Future, list)) or name == "_stream_reader_wr":
            assert type(mine) is type(value) and mine is not vars(again)[name], name  # each connection its own
        elif getattr(value, "__self__", None) is full:  # a method of the connection: bound to its own
            assert mine.__func__ is value.__func__ and mine.__self__ is fast, name
        else:
            assert mine == value, name
    assert fast._stream_reader is not again._stream_reader and fast._held is not again._held


@pytest.mark.timeout(20)
def test_interleaved_sessions_keep_their_own_envelopes() -> None:
    with Sink(SinkConfig(port=0, auth={"u": "p"})) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as a, smtplib.SMTP(sink.host, sink.port, timeout=5) as b:
            a.ehlo()
            b.ehlo()
            a.login("u", "p")
            assert a.mail("a@example.test")[0] == 250 and b.mail("b@example.test")[0] == 250
            assert b.rcpt("to-b@example.test")[0] == 250 and a.rcpt("to-a@example.test")[0] == 250
            assert a.data(MESSAGE)[0] == 250 and b.data(MESSAGE)[0] == 250
        got = sorted(sink.wait_for(2), key=lambda r: r.mail_from)
    assert [(r.mail_from, r.rcpt_tos, r.authenticated_as) for r in got] == [
        ("a@example.test", ["to-a@example.test"], "u"),
        ("b@example.test", ["to-b@example.test"], None),
    ]


def _reply(sock: socket.socket, buf: bytearray) -> bytes:
    """One whole plain-text reply (every line), read from buf and then the socket."""
    while True:
        start = 0
        while (end := buf.find(b"\r\n", start)) >= 0:
            if buf[start + 3 : start + 4] == b" ":
                reply = bytes(buf[: end + 2])
                del buf[: end + 2]
                return reply
            start = end + 2
        data = sock.recv(4096)
        assert data, bytes(buf)
        buf += data


def _records(raw: bytes) -> list[int]:
    """The content types of the TLS records in raw bytes from the wire."""
    types, i = [], 0
    while i + 5 <= len(raw):
        types.append(raw[i])
        i += 5 + int.from_bytes(raw[i + 3 : i + 5], "big")
    assert i == len(raw), "not whole records"
    return types


@pytest.mark.timeout(20)
def test_a_multiline_reply_after_starttls_is_one_tls_record(pki: TestCA) -> None:
    leaf = pki.issue()
    with Sink(
        SinkConfig(port=0, mode="starttls", chunking=True, cert_path=leaf.chain_path, key_path=leaf.key_path)
    ) as sink:
        sock = socket.create_connection((sink.host, sink.port), timeout=5)
        buf = bytearray()
        assert _reply(sock, buf).startswith(b"220 ")
        sock.sendall(b"EHLO client.example.test\r\n")
        assert b"250-STARTTLS" in _reply(sock, buf)
        sock.sendall(b"STARTTLS\r\n")
        assert _reply(sock, buf).startswith(b"220 ")
        ctx = ssl.create_default_context(cafile=str(pki.root_path))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # its session ticket comes in the handshake, not after it
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        tls.write(b"EHLO client.example.test\r\n")
        sock.sendall(outgoing.read())
        raw, plain = b"", b""
        while b"\r\n250 " not in plain:
            data = sock.recv(65536)
            assert data, plain
            raw += data
            incoming.write(data)
            while True:
                try:
                    plain += tls.read(65536)
                except ssl.SSLWantReadError:
                    break
        sock.close()
    assert plain.startswith(b"250-") and plain.count(b"\r\n") >= 5 and plain.endswith(b"\r\n")
    assert _records(raw) == [23]  # application data, once: aiosmtpd alone writes a record per line
