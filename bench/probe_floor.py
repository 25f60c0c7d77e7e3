"""The floor of `jcsh tls probe` in Python: what a probe does on the wire, and nothing else.

    python bench/probe_floor.py HOST PORT CAFILE [TARGETS]

One STARTTLS connection per version (TLS 1.0-1.3, every cipher at security level 0), the TLS 1.3
one verifying against CAFILE, all at once on threads, EHLO after TLS and QUIT, as jcsh does;
TARGETS (default 1) times over, concurrently. No settings, no home, no summary: run it with the
same interpreter as jcsh (`python -I -S` leaves out site and the editable install's finder) to
see how close to `openssl s_client` run once per version a Python process can get at all.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import warnings

_VERSIONS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)


def _reply(f: object) -> bytes:
    while True:
        line: bytes = f.readline()  # type: ignore[attr-defined]
        if line[3:4] != b"-":
            return line


def _one(host: str, port: int, ctx: ssl.SSLContext, out: list[object]) -> None:
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    _reply(f)
    s.sendall(b"EHLO floor.example\r\n")
    _reply(f)
    s.sendall(b"STARTTLS\r\n")
    _reply(f)
    try:
        t = ctx.wrap_socket(s, server_hostname=host)
    except ssl.SSLError as e:
        out.append(e)
        s.close()
        return
    out.append((t.version(), t.cipher(), t.getpeercert(binary_form=True)))
    t.sendall(b"EHLO floor.example\r\n")
    t.recv(65536)
    t.sendall(b"QUIT\r\n")
    t.close()


def main() -> None:
    host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    targets = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    contexts = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for version in _VERSIONS:
            if version is ssl.TLSVersion.TLSv1_3:
                ctx = ssl.create_default_context(cafile=cafile)
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.set_ciphers("ALL:@SECLEVEL=0")
            ctx.minimum_version = ctx.maximum_version = version
            contexts.append(ctx)
    out: list[object] = []
    threads = [threading.Thread(target=_one, args=(host, port, c, out)) for _ in range(targets) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(out) != len(threads):
        sys.exit(1)


if __name__ == "__main__":
    main()
