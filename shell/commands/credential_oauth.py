"""`jcsh credential add --oauth2 GRANT`: an OAuth 2.0 client stored offline, and `credential token`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from jcsh.runtime.bounded import PASSWORD
from jcsh.runtime.credentials import ACCESS_TOKEN, CLIENT_KEY, CLIENT_SECRET, REFRESH_TOKEN, X509, OAuthClient, Secret
from jcsh.runtime.errors import JcshError, UsageError
from jcsh.shell.commands import read_text

if TYPE_CHECKING:
    from jcsh.runtime.credentials import Credential
    from jcsh.shell.context import Context

__all__ = ["oauth_arguments", "add_oauth", "check_not_oauth", "token_metadata", "OAUTH_OPTIONS"]

GRANTS = ("client-credentials", "refresh-token", "static")
# argparse dest -> the option, for "needs --oauth2" and "not with this grant" messages.
OAUTH_OPTIONS = {
    "token_url": "--token-url",
    "client_id": "--client-id",
    "scope": "--scope",
    "entra_tenant": "--entra-tenant",
    "google": "--google",
    "client_secret_stdin": "--client-secret-stdin",
    "client_certificate": "--client-certificate",
    "client_key": "--client-key",
    "refresh_token_stdin": "--refresh-token-stdin",
    "token_stdin": "--token-stdin",
}
_GRANT_OPTIONS = {
    "client-credentials": {
        "token_url",
        "client_id",
        "scope",
        "entra_tenant",
        "google",
        "client_secret_stdin",
        "client_certificate",
        "client_key",
    },
    "refresh-token": {"token_url", "client_id", "scope", "entra_tenant", "google", "refresh_token_stdin"},
    "static": {"token_stdin", "scope"},
}


def oauth_arguments(add: argparse.ArgumentParser) -> None:
    g = add.add_argument_group(
        "OAuth 2.0 (instead of a password; stored offline, the token endpoint is first contacted when it is used)"
    )
    g.add_argument(
        "--oauth2",
        choices=GRANTS,
        metavar="GRANT",
        help="client-credentials: a client secret (--client-secret-stdin) or certificate (--client-certificate "
        "and --client-key, sent as a signed client assertion); refresh-token: --refresh-token-stdin; "
        "static: an access token obtained elsewhere (--token-stdin), never refreshed",
    )
    g.add_argument("--token-url", metavar="URL", help="the token endpoint: https:// (http:// only on loopback)")
    g.add_argument("--client-id", metavar="ID", help="the app (client) id")
    g.add_argument("--scope", metavar="SCOPE", help="the scope asked for (space-separated)")
    g.add_argument(
        "--entra-tenant",
        metavar="TENANT",
        help="Exchange Online: the token URL of this Entra ID tenant, scope https://outlook.office365.com/.default",
    )
    g.add_argument(
        "--google",
        action="store_true",
        help="Gmail: https://oauth2.googleapis.com/token, scope https://mail.google.com/",
    )
    g.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from standard input")
    g.add_argument("--client-certificate", metavar="CERT.pem", help="the app's certificate (with --client-key)")
    g.add_argument("--client-key", metavar="KEY.pem", help="the certificate's RSA private key (PEM, unencrypted)")
    g.add_argument(
        "--refresh-token-stdin",
        action="store_true",
        help="stdin: the refresh token on the first line, the client secret (when the client has one) on the second",
    )
    g.add_argument("--token-stdin", action="store_true", help="read a static access token from standard input")


def _given(args: argparse.Namespace) -> list[str]:
    return [dest for dest in OAUTH_OPTIONS if getattr(args, dest, None)]


def check_not_oauth(args: argparse.Namespace) -> None:
    """A password or certificate credential: refuse the OAuth options."""
    given = _given(args)
    if given:
        raise UsageError(f"{OAUTH_OPTIONS[given[0]]} belongs to an OAuth 2.0 credential: add --oauth2 GRANT")


def _stdin_lines(ctx: Context, count: int, what: str) -> list[str]:
    if ctx.interactive:
        lines = [ctx.stdin.readline(PASSWORD.limit).rstrip("\r\n") for _ in range(count)]
    else:
        lines = read_text(ctx, "-", bounds=PASSWORD).splitlines()[:count]
    lines = [line.strip() for line in lines]
    if not lines or not lines[0]:
        raise UsageError(f"standard input holds no {what}")
    return [line for line in lines if line]


def _read_file(path: str, what: str) -> str:
    from pathlib import Path

    from jcsh.runtime.bounded import CERTIFICATE, read_bytes

    try:
        return read_bytes(Path(path), path, CERTIFICATE).decode("ascii")
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not a PEM file") from None


def _word(what: str, value: str | None) -> str | None:
    if value is not None and (not value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        raise UsageError(f"{what} is empty or holds a control character")
    return value


def add_oauth(ctx: Context, args: argparse.Namespace) -> Credential:
    """Check the options for the grant, read the secrets, store the client; nothing goes on the network."""
    from jcsh.runtime.mail.oauth import GOOGLE_SCOPE, GOOGLE_TOKEN_URL, entra_endpoint, static_token

    grant = args.oauth2
    if args.protocol == X509:
        raise UsageError(f"a {X509} credential holds a certificate, not an OAuth 2.0 client")
    if args.password_stdin or args.certificate:
        raise UsageError("an OAuth 2.0 credential takes no password or --certificate")
    for dest in _given(args):
        if dest not in _GRANT_OPTIONS[grant]:
            raise UsageError(f"{OAUTH_OPTIONS[dest]} does not go with --oauth2 {grant}")
    token_url, scope = args.token_url, args.scope
    if args.entra_tenant and args.google:
        raise UsageError("--entra-tenant and --google name different providers: give one")
    if (args.entra_tenant or args.google) and token_url:
        raise UsageError("--token-url and a provider shortcut (--entra-tenant, --google) both name the token URL")
    if args.entra_tenant:
        token_url, default_scope = entra_endpoint(args.entra_tenant)
        scope = scope or default_scope
    elif args.google:
        token_url, scope = GOOGLE_TOKEN_URL, scope or GOOGLE_SCOPE
    _word("--client-id", args.client_id)
    _word("--scope", scope)
    secrets: dict[str, str] = {}
    certificate = None
    if grant == "static":
        if not args.token_stdin:
            raise UsageError("--oauth2 static needs the access token on standard input: --token-stdin")
        [token] = _stdin_lines(ctx, 1, "access token")[:1]
        try:
            static_token(Secret(token))  # its characters checked now, not at the first login
        except JcshError as e:
            raise UsageError(e.message) from None
        secrets[ACCESS_TOKEN] = token
    else:
        if not token_url:
            raise UsageError(f"--oauth2 {grant} needs --token-url URL (or --entra-tenant TENANT, or --google)")
        from jcsh.runtime.mail.oauth import check_token_url

        check_token_url(token_url)
        if not args.client_id:
            raise UsageError(f"--oauth2 {grant} needs --client-id ID")
        if grant == "refresh-token":
            if not args.refresh_token_stdin:
                raise UsageError("--oauth2 refresh-token needs --refresh-token-stdin")
            lines = _stdin_lines(ctx, 2, "refresh token")
            secrets[REFRESH_TOKEN] = lines[0]
            if len(lines) > 1:
                secrets[CLIENT_SECRET] = lines[1]
        else:
            by_cert = bool(args.client_certificate or args.client_key)
            if by_cert and args.client_secret_stdin:
                raise UsageError("give the client secret (--client-secret-stdin) or a certificate, not both")
            if by_cert:
                if not (args.client_certificate and args.client_key):
                    raise UsageError("a client certificate needs both --client-certificate CERT.pem and --client-key")
                from jcsh.runtime.mail.oauth import ClientCertificate

                certificate = _read_file(args.client_certificate, "the client certificate")
                key = _read_file(args.client_key, "the client key")
                ClientCertificate(certificate, Secret(key))  # the pair checked now: UsageError when it is not one
                secrets[CLIENT_KEY] = key
            elif args.client_secret_stdin:
                secrets[CLIENT_SECRET] = _stdin_lines(ctx, 1, "client secret")[0]
            else:
                raise UsageError(
                    "--oauth2 client-credentials needs --client-secret-stdin, or --client-certificate and --client-key"
                )
    client = OAuthClient(grant, token_url if grant != "static" else None, args.client_id, scope, ())
    return ctx.credentials.add_oauth(
        args.protocol,
        args.endpoint,
        args.virtual_user,
        client,
        secrets,
        real_user=args.real_user,
        certificate=certificate,
        replace=args.replace,
        allow_plaintext=args.allow_plaintext,
    )


def token_metadata(ctx: Context, args: argparse.Namespace) -> tuple[dict[str, object], str]:
    """`credential token`: the cached token's metadata, or a fetched one's (never the token)."""
    from jcsh.runtime.errors import NotFound
    from jcsh.runtime.mail.connection import TrustSetup
    from jcsh.runtime.mail.oauth import token_info
    from jcsh.runtime.mail.settings import load_settings
    from jcsh.runtime.mail.tokens import access_token

    if not 0 < args.timeout <= 3600:
        raise UsageError("--timeout must be a number of seconds from 0 to 3600")
    store = ctx.credentials
    cred = store.find(args.protocol, args.endpoint, args.virtual_user)
    if cred is None:
        raise NotFound(f"no credential {args.protocol} {args.endpoint} {args.virtual_user}")
    if cred.oauth is None:
        raise UsageError(f"{cred.identity()} holds a {cred.kind}, not an OAuth 2.0 client: it has no token")
    trust = TrustSetup(load_settings(ctx.registry, store), store, args.endpoint)
    token, source = access_token(
        store, cred, context_for=trust.token_context, timeout=args.timeout, refresh=args.refresh
    )
    info = token_info(token)
    lines = [
        f"credential: {cred.identity()} (oauth2 {cred.oauth.grant}; token from the {source})",
        f"expires:    {info.expires_at or 'not said'}",
        f"scope:      {info.scope or '-'}",
    ]
    lines += [f"audience:   {info.audience}"] if info.audience else []
    lines += [f"app id:     {info.app_id}"] if info.app_id else []
    lines += [f"roles:      {' '.join(info.roles)}"] if info.roles else []
    return info.to_json(), "\n".join(lines)
