"""The MTA-STS policy's HTTPS GET: the connection, and the answer read as http.client reads it.

http.client imports email.parser and its policy machinery (~6 ms, the largest cost `tls probe --mx`
has beyond its probes). A plain answer (an HTTP/1.x status line, `name: value` header lines, no
Transfer-Encoding, at most one Content-Length) is read here, with http.client's results: status,
stripped reason, every value of a header joined with ", ", and read(amt)'s body. Anything else is
handed, from its first byte on, to http.client's own HTTPResponse, which then reads and judges it
(and raises) exactly as it did when it read the socket itself.
"""

from __future__ import annotations

import io
import re
import socket
import ssl
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Response", "PinnedHTTPS", "read_response", "request_bytes"]

_STATUS = re.compile(rb"HTTP/1\.[01] ([2-5][0-9][0-9])(?: ([\x20-\x7e]*))?\r\n")
_HEADER = re.compile(rb"([\x21-\x39\x3b-\x7e]+):([\x20-\x7e\t]*)\r\n")  # email's header line, ASCII
_HEAD_LIMIT = 64 * 1024  # http.client's longest line: a longer header block is its to judge
_MAX_HEADERS = 100  # http.client's limit


class Response:
    """What fetch_policy reads of an answer: status, reason, headers (http.client's getheader) and body."""

    def __init__(self, status: int, reason: str, headers: dict[str, list[str]], body: bytes) -> None:
        self.status, self.reason, self._headers, self.body = status, reason, headers, body

    def getheader(self, name: str) -> str | None:
        values = self._headers.get(name.lower())
        return ", ".join(values) if values else None


def request_bytes(host: str, port: int, path: str) -> bytes:
    """The GET http.client sends for request("GET", path, {Accept: text/plain, Connection: close})."""
    try:
        host_enc = host.encode("ascii")
    except UnicodeEncodeError:
        host_enc = host.encode("idna")
    if port != 443:
        host_enc += b":" + str(port).encode("ascii")
    return (
        b"GET " + path.encode("ascii") + b" HTTP/1.1\r\nHost: " + host_enc + b"\r\nAccept-Encoding: identity\r\n"
        b"Accept: text/plain\r\nConnection: close\r\n\r\n"
    )


def read_response(recv: Callable[[int], bytes], amt: int) -> Response:
    """Read one answer to a GET from recv (b"" at the end), its body up to amt bytes."""
    data, end = b"", -1
    while end < 0 and len(data) <= _HEAD_LIMIT:
        chunk = recv(16384)
        if not chunk:
            break
        data += chunk
        end = _blank_line(data)
    # end: where the empty line starts; plain only when it and the lines before it end in CRLF
    # (and no longer than http.client's limit for one line, so that no line of it can be)
    plain = None
    if 2 <= end <= _HEAD_LIMIT and data[end - 2 : end + 2] == b"\r\n\r\n":
        plain = _plain_head(data[:end])
    if plain is None:
        return _by_http_client(data, recv, amt)
    status, reason, headers = plain
    length: int | None = None
    if "content-length" in headers:
        length = int(headers["content-length"][0])
    if status in (204, 304):
        length = 0
    want = amt if length is None else min(amt, length)
    body = data[end + 2 : end + 2 + want]
    while len(body) < want:
        chunk = recv(min(65536, want - len(body)))
        if not chunk:
            break
        body += chunk
    return Response(status, reason, headers, body)


def _blank_line(data: bytes) -> int:
    """Where the first empty line (http.client's end of headers: b"\\r\\n" or b"\\n") starts, or -1."""
    ends = [i + 1 for i in (data.find(b"\n\r\n"), data.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else -1


def _plain_head(head: bytes) -> tuple[int, str, dict[str, list[str]]] | None:
    """Status, reason and headers of a plain header block (CRLF lines, ending with one), else None."""
    status = _STATUS.match(head)
    if status is None:
        return None
    headers: dict[str, list[str]] = {}
    at, count = status.end(), 0
    while at < len(head):
        line = _HEADER.match(head, at)
        if line is None or count == _MAX_HEADERS:
            return None
        name = line.group(1).decode("ascii").lower()
        headers.setdefault(name, []).append(line.group(2).decode("ascii").lstrip(" \t"))
        at, count = line.end(), count + 1
    if "transfer-encoding" in headers:
        return None
    lengths = headers.get("content-length", [])
    # a length of thousands of digits is past int()'s limit: http.client reads such an answer to EOF
    if len(lengths) > 1 or (lengths and not (lengths[0].isdigit() and len(lengths[0]) <= 18)):
        return None
    return int(status.group(1)), (status.group(2) or b"").decode("ascii").strip(), headers


class _Replay(io.RawIOBase):
    """The bytes already read, then the rest of the connection: http.client reads it from the start."""

    def __init__(self, prefix: bytes, recv: Callable[[int], bytes]) -> None:
        self._prefix, self._recv = prefix, recv

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        chunk = self._recv(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)


class _ReplaySocket:
    def __init__(self, raw: _Replay) -> None:
        self._raw = raw

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(self._raw)


def _by_http_client(prefix: bytes, recv: Callable[[int], bytes], amt: int) -> Response:
    import http.client

    response = http.client.HTTPResponse(_ReplaySocket(_Replay(prefix, recv)), method="GET")  # type: ignore[arg-type]
    response.begin()
    body = response.read(amt)
    headers: dict[str, list[str]] = {}
    for name in ("location", "content-type"):  # the headers fetch_policy reads
        value = response.getheader(name)
        if value is not None:
            headers[name] = [value]
    return Response(response.status, response.reason, headers, body)


def is_http_error(err: BaseException) -> bool:
    """Whether err is http.client's (loaded only when it read an answer that was not plain)."""
    import sys

    client = sys.modules.get("http.client")
    return client is not None and isinstance(err, client.HTTPException)


class PinnedHTTPS:
    """HTTPS to the addresses we resolved (each in turn until one connects), verified for `host`."""

    def __init__(
        self,
        host: str,
        addresses: Sequence[str],
        port: int,
        context: ssl.SSLContext,
        timeout: float,
        sni: Callable[[str], str | bytes],
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._addresses, self._context, self._sni = addresses, context, sni
        self._raw: socket.socket | None = None
        self.sock: ssl.SSLSocket | None = None
        self.killed = False

    def connect(self) -> None:
        for i, address in enumerate(self._addresses):
            self._cut_if_killed()  # no next address once the deadline has passed
            try:
                # an address as bytes: getaddrinfo runs every str through the idna codec (~10 ms to import)
                host: str | bytes = address.encode("ascii") if address.isascii() else address
                # typeshed says str, but create_connection hands host to getaddrinfo, which takes bytes
                self._raw = socket.create_connection((host, self.port), self.timeout)  # type: ignore[arg-type]
                break
            except OSError:
                if self.killed or i == len(self._addresses) - 1:
                    raise
        assert self._raw is not None
        self._cut_if_killed()  # the watchdog fired while connecting: there was no socket to cut then
        self.sock = self._context.wrap_socket(self._raw, server_hostname=self._sni(self.host))
        self._cut_if_killed()

    def _cut_if_killed(self) -> None:
        if self.killed:
            raise TimeoutError("the MTA-STS policy fetch ran out of time")

    def get(self, path: str, amt: int) -> Response:
        """Connect, send the GET, and read the answer (its body up to amt bytes)."""
        self.connect()
        assert self.sock is not None
        self.sock.sendall(request_bytes(self.host, self.port, path))
        return read_response(self.sock.recv, amt)

    def kill(self) -> None:
        """Cut the connection from another thread (the watchdog): any read in progress ends."""
        # wrap_socket takes the descriptor over from the raw socket; shut down whichever holds it,
        # through the plain socket method (SSLSocket.shutdown would drop the TLS object under a reader).
        self.killed = True
        for sock in (self.sock, self._raw):
            if sock is not None and sock.fileno() >= 0:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
                return

    def close(self) -> None:
        for sock in (self.sock, self._raw):
            if sock is not None:
                sock.close()
