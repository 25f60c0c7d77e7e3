"""The sink's connections: each reply written in one piece."""

from __future__ import annotations

import socket
import ssl

import pytest

from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.pki import TestCA


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
