"""A real HTTPS server on loopback for MTA-STS policies, including the misbehaving ones.

with PolicyServer(cert_path, key_path) as web:
    web.serve("/.well-known/mta-sts.txt", "version: STSv1\\r\\n...")   # 200 text/plain
    web.serve(path, body, status=404) / serve(path, "", status=301, headers={"Location": ...})
    web.drip = 0.5       # seconds between bytes of the response: a slow server
    env = {"JCSH_MTA_STS_PORT": str(web.port)}
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["PolicyServer"]


class PolicyServer:
    """Serves fixed responses by path over TLS; a context manager. `requests` lists (host header, path)."""

    def __init__(self, cert_path: Path, key_path: Path, host: str = "127.0.0.1") -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        self.host = host
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.drip = 0.0
        self.requests: list[tuple[str, str]] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def serve(
        self, path: str, body: str | bytes, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> PolicyServer:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, {"Content-Type": "text/plain", **(headers or {})}, data)
        return self

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.headers.get("Host", ""), self.path))
                status, headers, body = owner.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"no"))
                head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                data = head.encode() + body
                try:
                    if owner.drip:
                        for i in range(len(data)):
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                            time.sleep(owner.drip)
                    else:
                        self.wfile.write(data)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in owner.host else socket.AF_INET

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that rejects our certificate is what some tests want

            def get_request(self) -> tuple[Any, Any]:
                sock, addr = super().get_request()
                sock.settimeout(5)
                return owner.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

        self._server = Server((self.host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PolicyServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
