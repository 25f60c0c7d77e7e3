"""The MTA-STS policy's HTTP answer read without http.client equals http.client's reading of the same bytes."""

from __future__ import annotations

import http.client
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jcsh.runtime.tls.checks.mta_sts_fetch import read_response, request_bytes

AMT = 64 * 1024 + 1
ROOT = Path(__file__).resolve().parent.parent


class _Sock:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


def _http_client(data: bytes) -> tuple[Any, ...]:
    """http.client's reading, as fetch_policy used it before: status, reason, two headers, read(AMT)."""
    try:
        response = http.client.HTTPResponse(_Sock(data), method="GET")
        response.begin()
        body = response.read(AMT)
        return (
            response.status,
            response.reason,
            response.getheader("Location"),
            response.getheader("Content-Type"),
            body,
        )
    except Exception as e:  # the error fetch_policy reports: its type and text
        return (type(e).__name__, str(e))


def _ours(data: bytes, step: int) -> tuple[Any, ...]:
    chunks = [data[i : i + step] for i in range(0, len(data), step)]

    def recv(n: int) -> bytes:
        if not chunks:
            return b""
        head = chunks[0][:n]
        chunks[0] = chunks[0][n:]
        if not chunks[0]:
            chunks.pop(0)
        return head

    try:
        r = read_response(recv, AMT)
        return (r.status, r.reason, r.getheader("Location"), r.getheader("Content-Type"), r.body)
    except Exception as e:
        return (type(e).__name__, str(e))


CASES = {
    "plain": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    "no length": b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nto the end",
    "longer than length": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhello",
    "short of length": b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nhello",
    "redirect": b"HTTP/1.1 301 Moved\r\nLocation: https://a.test/\r\nLocation:  https://b.test/ \r\n\r\n",
    "no reason": b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
    "spaced reason": b"HTTP/1.1 200   All   good  \r\nContent-Type:text/plain\r\n\r\nx",
    "204": b"HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\n\r\nignored",
    "chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
    "bad chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
    "bare LF": b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n\nok",
    "continue first": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "folded header": b"HTTP/1.1 200 OK\r\nContent-Type: text/\r\n plain\r\nContent-Length: 2\r\n\r\nok",
    "two lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokay",
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc",
    "latin-1 header": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\xe9\r\nContent-Length: 2\r\n\r\nok",
    "garbage": b"SMTP ready\r\n\r\n",
    "http/2": b"HTTP/2 200\r\n\r\n",
    "empty": b"",
    "cut in headers": b"HTTP/1.1 200 OK\r\nContent-Ty",
    "huge status": b"HTTP/1.1 200 " + b"x" * 70000 + b"\r\n\r\n",
    "many headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",
    "header without colon": b"HTTP/1.1 200 OK\r\nNot a header\r\nContent-Length: 2\r\n\r\nok",
    "big body": b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"y" * 70000,
    "length past int's digits": b"HTTP/1.1 200 OK\r\nContent-Length: " + b"0" * 5000 + b"5\r\n\r\nhello",
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("step", [1, 7, 65536])
def test_answers_read_as_http_client_reads_them(name: str, step: int) -> None:
    data = CASES[name]
    assert _ours(data, step) == _http_client(data)


_LINE = st.sampled_from(
    [b"Content-Type: text/plain", b"content-type:TEXT/PLAIN ; x", b"Location: /x", b"Content-Length: 4", b"X: \t y"]
)


@settings(max_examples=300)
@given(
    st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 404 Not Found", b"HTTP/1.1 302", b"HTTP/1.1 200 OK "]),
    st.lists(_LINE, max_size=5),
    st.sampled_from([b"\r\n", b"\n"]),
    st.binary(max_size=40),
    st.integers(min_value=1, max_value=50),
)
def test_generated_answers_read_as_http_client_reads_them(
    status: bytes, headers: list[bytes], eol: bytes, body: bytes, step: int
) -> None:
    data = eol.join([status, *headers, b""]) + eol + body
    assert _ours(data, step) == _http_client(data)


def test_the_request_is_http_clients() -> None:
    sent: list[bytes] = []

    class Conn(http.client.HTTPSConnection):  # default port 443, as the policy host's
        def send(self, data: Any) -> None:
            sent.append(bytes(data))

    for port in (443, 8443):
        sent.clear()
        conn = Conn("mta-sts.example.test", port)
        conn.sock = object()  # connected, as far as request() can tell
        conn.request("GET", "/.well-known/mta-sts.txt", headers={"Accept": "text/plain", "Connection": "close"})
        expected = b"".join(sent)
        assert request_bytes("mta-sts.example.test", port, "/.well-known/mta-sts.txt") == expected


def test_a_policy_fetch_imports_no_http_client() -> None:
    code = (
        "import sys\n"
        "from jcsh.runtime.tls.checks.mta_sts_fetch import read_response\n"
        "data = [b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok']\n"
        "r = read_response(lambda n: data.pop() if data else b'', 100)\n"
        "print(r.status, r.body, 'http.client' in sys.modules, 'email' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=20, check=True)
    assert out.stdout.split() == ["200", "b'ok'", "False", "False"]
