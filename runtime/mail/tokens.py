"""The access token of an OAuth 2.0 credential: from the cache while reusable, else fetched and cached (parent only)."""

from __future__ import annotations

import time
from collections.abc import Callable

from jcsh.runtime.credentials import (
    ACCESS_TOKEN,
    CLIENT_KEY,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    CachedToken,
    Credential,
    CredentialStore,
)
from jcsh.runtime.errors import ConfigError

# A cached token needs only oauth_token; runtime.mail.oauth (http.client, email, urllib, datetime,
# hashlib: ~10 ms) is imported when a token is read from a static secret or fetched.
from jcsh.runtime.mail.oauth_token import Grant, Token

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    import ssl

__all__ = ["access_token", "TokenSource"]

# (token host) -> the TLS context that verifies it: the mail trust (system store + X509_TrustedCertificate).
ContextFor = Callable[[str], "ssl.SSLContext"]


class TokenSource:
    """Where a login's token came from, for the transcript: "cache", "endpoint" or "static"."""

    CACHE = "cache"
    ENDPOINT = "endpoint"
    STATIC = "static"


def access_token(
    credentials: CredentialStore,
    credential: Credential,
    *,
    context_for: ContextFor,
    timeout: float,
    refresh: bool = False,
    now: float | None = None,
) -> tuple[Token, str]:
    """(the token, where it came from); fetches only when the cached one is not reusable (or `refresh`).

    A fetched token is cached encrypted; a refresh token the endpoint rotated is stored in the
    same transaction. Failures are the errors of `fetch_token` (3, 4, 1, 75).
    """
    client = credential.oauth
    if client is None:
        raise ConfigError(f"the credential {credential.identity()} holds a password, not an OAuth 2.0 client")
    now = time.time() if now is None else now
    secrets = credentials.oauth_secrets(credential)
    if client.grant == Grant.STATIC:
        from jcsh.runtime.mail.oauth import TokenRequest, fetch_token, static_token

        stored = secrets.get(ACCESS_TOKEN)
        if stored is None:
            raise ConfigError(f"the static OAuth 2.0 credential {credential.identity()} holds no access token")
        token = static_token(stored, now=now)
        if token.expires_in is not None and token.expires_in <= 0:
            fetch_token(TokenRequest(Grant.STATIC, "", ""), context=None, timeout=0)  # raises: cannot be refreshed
        return token, TokenSource.STATIC
    if not refresh:
        cached = credentials.cached_token(credential)
        if cached is not None:
            token = Token(cached.access_token, cached.obtained_at, cached.expires_in, cached.scope)
            if token.reusable(now):
                return token, TokenSource.CACHE
    from jcsh.runtime.mail.oauth import ClientCertificate, TokenRequest, check_token_url, fetch_token

    url = client.token_url or ""
    certificate = None
    if CLIENT_KEY in secrets and credential.certificate:
        certificate = ClientCertificate(credential.certificate, secrets[CLIENT_KEY])
    request = TokenRequest(
        Grant(client.grant),
        url,
        client.client_id or "",
        client.scope,
        client_secret=secrets.get(CLIENT_SECRET),
        refresh_token=secrets.get(REFRESH_TOKEN),
        certificate=certificate,
    )
    target = check_token_url(url)
    context = context_for(target.host) if target.https else None
    token = fetch_token(request, context=context, timeout=timeout, now=now)
    cached = CachedToken(token.access_token, token.obtained_at, token.expires_in, token.scope)
    credentials.store_token(credential, cached, rotated_refresh=token.refresh_token)
    return token, TokenSource.ENDPOINT
