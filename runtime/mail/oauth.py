"""OAuth 2.0 access tokens for SMTP login: fetched and refreshed by the parent process, never by a script.

Grants: `client-credentials` (a client secret, or a certificate sent as a signed client assertion),
`refresh-token` (a rotated refresh token comes back in the Token, to be stored with it), and
`static` (an access token obtained elsewhere: used until it expires, never refreshed). Every
secret and token is held by a `Secret`; no message, repr or exception shows one.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from jcsh.runtime.credentials import Secret
from jcsh.runtime.errors import ConnectFailed, JcshError, JobFailed, TempFailure, UsageError
from jcsh.runtime.mail.oauth_http import HttpAnswer, TokenURL, check_token_url, post_form
from jcsh.runtime.mail.oauth_jwt import ASSERTION_TYPE, ClientCertificate, jwt_claims
from jcsh.runtime.mail.oauth_token import REUSE_MARGIN, Grant, Token, token_reusable
from jcsh.runtime.records import NamedTuple

__all__ = [
    "Grant",
    "TokenRequest",
    "Token",
    "TokenInfo",
    "OAuthFailure",
    "ClientCertificate",
    "check_token_url",
    "fetch_token",
    "static_token",
    "token_reusable",
    "token_info",
    "entra_endpoint",
    "GOOGLE_TOKEN_URL",
    "GOOGLE_SCOPE",
    "EXCHANGE_SCOPE",
    "REUSE_MARGIN",
]

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPE = "https://mail.google.com/"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
_MAX_LIFETIME = 10 * 365 * 86400  # an expires_in beyond ten years is a broken answer, not a token
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")  # what fits in `auth=Bearer <token>` of a SASL line
_SHOWN = 400  # characters of an endpoint's error description shown


class TokenRequest(NamedTuple):
    """What a token fetch needs: the client as stored, and its secrets (each a Secret)."""

    grant: Grant
    token_url: str
    client_id: str
    scope: str | None = None
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    certificate: ClientCertificate | None = None


class TokenInfo(NamedTuple):
    """A token's metadata for `credential token`: never the token itself."""

    expires_at: str | None  # ISO 8601, UTC
    scope: str | None
    audience: str | None
    app_id: str | None
    roles: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "expires_at": self.expires_at,
            "scope": self.scope,
            "audience": self.audience,
            "app_id": self.app_id,
            "roles": list(self.roles),
        }


class OAuthFailure(NamedTuple):
    """An endpoint's error answer, the fields a user needs to look it up (on the raised error's `result`)."""

    status: int
    error: str | None
    description: str | None
    trace_id: str | None = None
    correlation_id: str | None = None
    error_codes: tuple[str, ...] = ()
    error_uri: str | None = None
    retry_after: str | None = None


def entra_endpoint(tenant: str) -> tuple[str, str]:
    """Token URL and scope for Exchange Online in an Entra ID tenant (an id, a domain, or `organizations`)."""
    if not _TENANT.match(tenant or ""):
        raise UsageError(f"--entra-tenant {tenant!r} is not a tenant id or domain")
    return f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token", EXCHANGE_SCOPE


def static_token(access_token: Secret, *, now: float | None = None) -> Token:
    """A token obtained elsewhere: its lifetime from the JWT `exp` claim when it has one."""
    now = time.time() if now is None else now
    _check_token_text(access_token.reveal(), "the access token")
    claims = jwt_claims(access_token.reveal()) or {}
    exp = claims.get("exp")
    expires_in = int(exp - now) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    scope = claims.get("scp") if isinstance(claims.get("scp"), str) else None
    return Token(access_token, now, expires_in, scope)


def token_info(token: Token) -> TokenInfo:
    """Expiry and scope; for a JWT also its audience, app id and roles/scopes (decoded, not verified)."""
    claims = jwt_claims(token.access_token.reveal()) or {}
    expires = token.expires_at
    if expires is None and isinstance(claims.get("exp"), int | float):
        expires = float(claims["exp"])
    aud = claims.get("aud")
    audience = " ".join(str(a) for a in aud) if isinstance(aud, list) else (str(aud) if aud is not None else None)
    app_id = next((str(claims[k]) for k in ("appid", "azp", "client_id") if claims.get(k)), None)
    roles: list[str] = [str(r) for r in claims.get("roles", []) if isinstance(claims.get("roles"), list)]
    if isinstance(claims.get("scp"), str):
        roles += claims["scp"].split()
    return TokenInfo(
        datetime.fromtimestamp(expires, UTC).isoformat() if expires is not None else None,
        token.scope,
        audience,
        app_id,
        tuple(roles),
    )


def fetch_token(
    request: TokenRequest, *, context: ssl.SSLContext | None, timeout: float, now: float | None = None
) -> Token:
    """Ask the token endpoint for an access token, within `timeout` seconds in all.

    Unreachable, TLS or trust failure, a broken answer: ConnectFailed (3). Past the deadline:
    LimitHit (4). An OAuth error answer: JobFailed (1) naming error, description and trace ids.
    429 or 5xx: TempFailure (75). `context` verifies the endpoint's certificate (the trust of
    the mail server).
    """
    if request.grant is Grant.STATIC:
        raise JobFailed(
            "the static access token has expired and cannot be refreshed; add a new one with "
            "`jcsh credential add ... --oauth2 static --token-stdin --replace`"
        )
    url = check_token_url(request.token_url)
    now = time.time() if now is None else now
    form, secrets = _form(request, url, now)
    answer = post_form(url, urlencode(form).encode("ascii"), context=context, timeout=timeout)
    return _token(answer, request, url, now, secrets)


def _form(request: TokenRequest, url: TokenURL, now: float) -> tuple[list[tuple[str, str]], list[str]]:
    """The form fields, and the secret values in them (to scrub from anything the endpoint echoes)."""
    if not request.client_id:
        raise UsageError("the OAuth client has no client id")
    form = [("client_id", request.client_id)]
    secrets: list[str] = []
    if request.grant is Grant.REFRESH_TOKEN:
        if request.refresh_token is None:
            raise UsageError("the refresh-token grant needs a refresh token")
        form.insert(0, ("grant_type", "refresh_token"))
        form.append(("refresh_token", request.refresh_token.reveal()))
        secrets.append(request.refresh_token.reveal())
    else:
        form.insert(0, ("grant_type", "client_credentials"))
    if request.certificate is not None:
        assertion = request.certificate.assertion(request.client_id, url.url, now=now).reveal()
        form += [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]
        secrets.append(assertion)
    elif request.client_secret is not None:
        form.append(("client_secret", request.client_secret.reveal()))
        secrets.append(request.client_secret.reveal())
    elif request.grant is Grant.CLIENT_CREDENTIALS:
        raise UsageError("the client-credentials grant needs a client secret or a client certificate")
    if request.scope:
        form.append(("scope", request.scope))
    return form, secrets


def _scrub(text: str, secrets: list[str]) -> str:
    """Endpoint text as one line, without any of our secrets (a hostile endpoint may echo them)."""
    for s in secrets:
        if s:
            text = text.replace(s, "<redacted>")
    return " ".join(text.split())


def _text(value: object, secrets: list[str]) -> str | None:
    return _scrub(str(value), secrets) if value not in (None, "") else None


def _check_token_text(token: str, what: str) -> None:
    if not _TOKEN_CHARS.match(token):
        raise ConnectFailed(f"{what} is empty or holds spaces or control characters", kind="protocol")


def _token(answer: HttpAnswer, request: TokenRequest, url: TokenURL, now: float, secrets: list[str]) -> Token:
    where = f"the token endpoint {url.where}"
    try:
        data = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if answer.status == 200 and isinstance(data, dict) and "access_token" in data:
        return _success(data, request, where, now)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise _oauth_error(answer, data, request, where, secrets)
    status = f"{answer.status} {_scrub(answer.reason, secrets)}".strip()
    if answer.status == 429 or answer.status >= 500:
        retry = answer.headers.get("retry-after")
        hint = f"; it asks to retry after {_scrub(retry, secrets)[:40]}" if retry else ""
        err: JcshError = TempFailure(f"{where} answered {status}: try again later{hint}")
        err.result = OAuthFailure(answer.status, None, None, retry_after=retry)
        raise err
    if answer.status == 200:
        what = "JSON without an access_token" if isinstance(data, dict) else "not a JSON object"
        kind = answer.headers.get("content-type", "no content type")
        raise ConnectFailed(f"{where} answered 200 OK but {what} ({_scrub(kind, secrets)[:60]})", kind="protocol")
    if 300 <= answer.status < 400:
        location = _scrub(answer.headers.get("location", "nowhere"), secrets)[:200]
        raise JobFailed(f"{where} answered {status}, redirecting to {location}: set the token URL to the final one")
    raise JobFailed(f"{where} answered {status} without an OAuth error: is the token URL {url.url} right?")


def _success(data: dict[str, Any], request: TokenRequest, where: str, now: float) -> Token:
    access = data["access_token"]
    if not isinstance(access, str):
        raise ConnectFailed(f"{where} answered an access_token that is not text", kind="protocol")
    _check_token_text(access, f"the access_token from {where}")
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        shown = token_type[:20] if isinstance(token_type, str) else type(token_type).__name__
        raise JobFailed(f"{where} issued a token of type {shown!r}; SMTP login needs a Bearer token")
    expires_in = _lifetime(data.get("expires_in"), where)
    refresh = data.get("refresh_token")
    if refresh is not None and (not isinstance(refresh, str) or not refresh):
        raise ConnectFailed(f"{where} answered a refresh_token that is not text", kind="protocol")
    scope = data.get("scope")
    return Token(
        Secret(access),
        now,  # when the request was sent: the lifetime counts from no later than that
        expires_in,
        scope if isinstance(scope, str) else request.scope,
        Secret(refresh) if refresh is not None else None,
    )


def _lifetime(value: object, where: str) -> int | None:
    """expires_in: seconds as a number (some endpoints send a string of digits); None when absent."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= _MAX_LIFETIME:
        shown = repr(value)[:30]
        raise ConnectFailed(f"{where} answered expires_in {shown}, which is not a lifetime in seconds", kind="protocol")
    return int(value)


def _oauth_error(
    answer: HttpAnswer, data: dict[str, Any], request: TokenRequest, where: str, secrets: list[str]
) -> JcshError:
    codes = data.get("error_codes")
    failure = OAuthFailure(
        answer.status,
        _text(data.get("error"), secrets),
        _text(data.get("error_description"), secrets),
        _text(data.get("trace_id"), secrets),
        _text(data.get("correlation_id"), secrets),
        tuple(f"AADSTS{c}" for c in codes if isinstance(c, int)) if isinstance(codes, list) else (),
        _text(data.get("error_uri"), secrets),
        answer.headers.get("retry-after"),
    )
    description = failure.description or ""
    if len(description) > _SHOWN:
        description = description[: _SHOWN - 3] + "..."
    parts = [f"{where} refused the {request.grant.value} grant of client {request.client_id}: {failure.error}"]
    if description:
        parts[0] += f": {description}"
    extra = [c for c in failure.error_codes if c not in description]
    extra += [f"{k} {v}" for k, v in (("trace_id", failure.trace_id), ("correlation_id", failure.correlation_id)) if v]
    if failure.error_uri:
        extra.append(f"see {failure.error_uri}")
    message = parts[0] + (f" ({'; '.join(extra)})" if extra else "")
    temporary = answer.status == 429 or answer.status >= 500 or failure.error == "temporarily_unavailable"
    err: JcshError = TempFailure(message) if temporary else JobFailed(message)
    err.result = failure
    return err
