"""A real OAuth 2.0 token endpoint on loopback for tests: http.server in a thread, optionally HTTPS.

Grants: client_credentials (client secret, or a JWT client assertion whose RS256 signature is
checked against the client's certificate) and refresh_token (rotated on each use). Faults on
demand: OAuth error answers, 429/503, a stall, a drip, an oversized or malformed body. It counts
hits and keeps the issued tokens so that an SMTP sink can accept exactly those.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

__all__ = ["TokenServer", "Client", "rsa_client_certificate"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Client:
    """An app registration: its id, and a secret or a certificate (PEM)."""

    def __init__(self, client_id: str, secret: str | None = None, certificate_pem: str | None = None) -> None:
        self.client_id, self.secret, self.certificate_pem = client_id, secret, certificate_pem


def rsa_client_certificate(name: str = "jcsh test app") -> tuple[str, str]:
    """A self-signed RSA certificate and its unencrypted key, PEM text, as app registrations use."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), key_pem.decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenServer:
    """The endpoint; `fault` decides the next answers (see _answer), `hits` counts requests."""

    def __init__(
        self,
        clients: list[Client],
        *,
        lifetime: int = 3600,
        rotate: bool = True,
        jwt_tokens: bool = False,
        tls_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.clients = {c.client_id: c for c in clients}
        self.lifetime = lifetime
        self.rotate = rotate
        self.jwt_tokens = jwt_tokens
        self.fault: str | None = None  # None: answer properly
        self.hits = 0
        self.forms: list[dict[str, str]] = []  # every request's form, as received
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expires at)
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> client id
        self.seen_jti: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                owner._handle(self)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # refused handshakes are expected
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls_context is not None else "http"
        self.port = self.server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{self.scheme}://{shown}:{self.port}/tenant/oauth2/v2.0/token"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- life ---------------------------------------------------------------------------------

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def issue_refresh_token(self, client_id: str) -> str:
        """A refresh token for the client, as a user's consent would have produced."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self.refresh_tokens[token] = client_id
        return token

    def valid(self, token: str) -> bool:
        """Whether the endpoint issued this access token and it has not expired."""
        with self._lock:
            found = self.access_tokens.get(token)
        return found is not None and found[1] > time.time()

    # -- answers ------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.hits += 1
        length = int(h.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(h.rfile.read(length).decode("ascii")).items()}
        with self._lock:
            self.forms.append(form)
        fault = self.fault
        special: dict[str, Callable[[], object]] = {
            "stall": lambda: self._stop.wait(10),
            "drip": lambda: self._drip(h),
            "oversized": lambda: self._send(h, 200, b'{"access_token": "' + b"x" * (400 * 1024) + b'"}'),
            "not-json": lambda: self._send(h, 200, b"<html>portal</html>", "text/html"),
            "no-token": lambda: self._json(h, 200, {"token_type": "Bearer", "expires_in": 3600}),
            "bad-expires": lambda: self._json(h, 200, {"access_token": "at-x", "expires_in": -5}),
            "429": lambda: self._send(h, 429, b"slow down", "text/plain", {"Retry-After": "30"}),
            "503": lambda: self._json(h, 503, {"error": "temporarily_unavailable", "error_description": "busy"}),
            "404": lambda: self._send(h, 404, b"<html>not here</html>", "text/html"),
            "header-flood": lambda: self._send(h, 200, b"{}", headers={f"X-Flood-{i}": "x" for i in range(150)}),
            "echo": lambda: self._json(h, 401, {"error": "invalid_client", "error_description": f"you sent {form}"}),
        }
        if fault in special:
            special[fault]()
            return
        if fault is not None and fault.startswith("error:"):
            self._error(h, 400, fault[6:], "AADSTS7000215: Invalid client secret provided.")
            return
        self._grant(h, form)

    def _grant(self, h: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            self._error(h, 400, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
            return
        grant = form.get("grant_type")
        if grant == "refresh_token":
            with self._lock:
                owner = self.refresh_tokens.get(form.get("refresh_token", ""))
                if owner == client.client_id and self.rotate:
                    del self.refresh_tokens[form["refresh_token"]]
            if owner != client.client_id:
                self._error(h, 400, "invalid_grant", "AADSTS70008: The refresh token has expired or is revoked.")
                return
            if client.secret is not None and form.get("client_secret") != client.secret:
                self._error(h, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
                return
        elif grant == "client_credentials":
            problem = self._authenticate(client, form)
            if problem:
                self._error(h, 401, "invalid_client", problem)
                return
        else:
            self._error(h, 400, "unsupported_grant_type", f"grant {grant!r}")
            return
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "access_token": self._access_token(client.client_id, form.get("scope")),
        }
        if form.get("scope"):
            answer["scope"] = form["scope"]
        if grant == "refresh_token" and self.rotate:
            answer["refresh_token"] = self.issue_refresh_token(client.client_id)
        self._json(h, 200, answer)

    def _authenticate(self, client: Client, form: dict[str, str]) -> str | None:
        if "client_assertion" not in form:
            ok = client.secret is not None and form.get("client_secret") == client.secret
            return None if ok else "AADSTS7000215: Invalid client secret provided."
        if form.get("client_assertion_type") != ASSERTION_TYPE or client.certificate_pem is None:
            return "AADSTS700027: Client assertion failed: wrong assertion type or no certificate registered."
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import RSAKey

        cert = x509.load_pem_x509_certificate(client.certificate_pem.encode("ascii"))
        public = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            token = jwt.decode(form["client_assertion"], RSAKey.import_key(public), algorithms=["RS256"])
        except (JoseError, ValueError) as e:
            return f"AADSTS700027: Client assertion contains an invalid signature: {type(e).__name__}"
        der = cert.public_bytes(serialization.Encoding.DER)
        header, claims, now = token.header, token.claims, time.time()
        if header.get("x5t") != _b64url(hashlib.sha1(der).digest()):
            return "AADSTS700027: the x5t thumbprint is not that of the registered certificate."
        if header.get("x5t#S256") != _b64url(hashlib.sha256(der).digest()):
            return "AADSTS700027: the x5t#S256 thumbprint is not that of the registered certificate."
        if (claims.get("aud"), claims.get("iss"), claims.get("sub")) != (self.url, client.client_id, client.client_id):
            return "AADSTS700021: aud, iss or sub of the client assertion is wrong."
        if not (now < claims.get("exp", 0) <= now + 600) or claims.get("nbf", now) > now + 5:
            return "AADSTS700024: Client assertion is not within its valid time range."
        with self._lock:
            if claims.get("jti") in self.seen_jti or not claims.get("jti"):
                return "AADSTS7000272: The jti of the client assertion was already used."
            self.seen_jti.add(claims["jti"])
        return None

    def _access_token(self, client_id: str, scope: str | None) -> str:
        expires = time.time() + self.lifetime
        if self.jwt_tokens:
            from joserfc import jwt
            from joserfc.jwk import OctKey

            claims = {
                "aud": "https://outlook.office365.com",
                "appid": client_id,
                "roles": ["SMTP.SendAsApp"],
                "exp": int(expires),
                "jti": secrets.token_hex(8),
            }
            token = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secrets.token_bytes(32)))
        else:
            token = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens[token] = (client_id, expires)
        return token

    def _error(self, h: BaseHTTPRequestHandler, status: int, error: str, description: str) -> None:
        trace = "0b4c1e2a-trace"
        self._json(
            h,
            status,
            {
                "error": error,
                "error_description": f"{description} Trace ID: {trace} Correlation ID: 77d1-corr",
                "error_codes": [int("".join(c for c in description.split(":")[0] if c.isdigit()) or 0)],
                "trace_id": trace,
                "correlation_id": "77d1-corr",
            },
        )

    def _json(self, h: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        self._send(h, status, json.dumps(body).encode("utf-8"))

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:  # the client gave up (an oversized answer): nothing to do
            pass

    def _drip(self, h: BaseHTTPRequestHandler) -> None:
        """Headers, then a byte every 0.1 s: each read is quick, the whole answer never ends."""
        body = b'{"access_token": "' + b"a" * 1000 + b'"}'
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for byte in body:
            if self._stop.wait(0.1):
                return
            try:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            except OSError:
                return
