"""`jcsh credential`: protocols and credentials (secrets are read, never printed)."""

from __future__ import annotations

import argparse

from jcsh.runtime.bounded import PASSWORD
from jcsh.runtime.credentials import X509, Credential
from jcsh.runtime.errors import UsageError
from jcsh.shell.commands import read_text, syntax
from jcsh.shell.commands.credential_oauth import add_oauth, check_not_oauth, oauth_arguments, token_metadata
from jcsh.shell.context import Context
from jcsh.shell.render import table

__all__ = ["cmd_credential", "read_certificate"]


def _identity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", required=True, metavar="P")
    p.add_argument("--endpoint", required=True, metavar="E")
    p.add_argument("--virtual-user", required=True, metavar="V")


def _arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    proto = sub.add_parser("protocol", help="add, list or remove protocols")
    psub = proto.add_subparsers(dest="protocol_action", metavar="ACTION", required=True)
    psub.add_parser("add", help="create a protocol").add_argument("name", metavar="NAME")
    psub.add_parser("ls", help="list protocols")
    psub.add_parser("rm", help="remove a protocol no credential uses").add_argument("name", metavar="NAME")
    add = sub.add_parser("add", help="add a credential (password from stdin or a prompt, never an argument)")
    _identity(add)
    add.add_argument("--real-user", metavar="U")
    src = add.add_mutually_exclusive_group()
    src.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    src.add_argument("--certificate", metavar="FILE.pem", help=f"the certificate of a {X509} credential")
    add.add_argument("--replace", action="store_true", help="overwrite a credential with the same identity")
    add.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="let its password or token cross an unencrypted connection (never settable from a script)",
    )
    oauth_arguments(add)
    ls = sub.add_parser("ls", help="list credentials (never secrets)")
    ls.add_argument("--protocol", metavar="P")
    _identity(sub.add_parser("rm", help="remove a credential"))
    sub.add_parser("rekey", help="re-encrypt every secret under a new key")
    tok = sub.add_parser("token", help="an OAuth 2.0 credential's access token: expiry, scope, audience (never it)")
    tok.add_argument("--protocol", default="smtp", metavar="P")
    tok.add_argument("--endpoint", required=True, metavar="E")
    tok.add_argument("--virtual-user", default="default", metavar="V")
    tok.add_argument("--refresh", action="store_true", help="fetch a new token even when the cached one is reusable")
    tok.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="for the token endpoint")


def read_certificate(path: str) -> tuple[str, str]:
    """(PEM text, subject) of a PEM file holding exactly one X.509 certificate."""
    from pathlib import Path

    from cryptography import x509

    from jcsh.runtime.bounded import CERTIFICATE, read_bytes

    try:
        data = read_bytes(Path(path), path, CERTIFICATE)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise UsageError(f"{path} is not a PEM X.509 certificate") from None
    if len(certs) != 1:
        raise UsageError(f"{path} holds {len(certs)} certificates; add one credential per certificate")
    from cryptography.hazmat.primitives.serialization import Encoding

    return certs[0].public_bytes(Encoding.PEM).decode("ascii"), certs[0].subject.rfc4514_string()


def _password(ctx: Context, args: argparse.Namespace) -> str:
    if args.password_stdin:
        text = ctx.stdin.readline(PASSWORD.limit) if ctx.interactive else read_text(ctx, "-", bounds=PASSWORD)
        return text.rstrip("\r\n") if text.count("\n") <= 1 else text.splitlines()[0]
    if not ctx.interactive:
        raise UsageError("no password given: use --password-stdin, or run on a terminal to be prompted")
    import getpass

    first = getpass.getpass(f"Password for {args.real_user or args.virtual_user}@{args.endpoint}: ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two passwords differ; nothing was stored")
    return first


def _kind(c: Credential) -> str:
    return f"oauth2 {c.oauth.grant}" if c.oauth is not None else str(c.kind)


def _details(c: Credential) -> str:
    """What `ls` shows of a credential beyond its identity: never a secret or token."""
    parts = []
    if c.oauth is not None:
        parts += [f"client id {c.oauth.client_id}"] if c.oauth.client_id else []
        parts += [f"scope {c.oauth.scope}"] if c.oauth.scope else []
        parts += [f"token URL {c.oauth.token_url}"] if c.oauth.token_url else []
        parts += ["by certificate"] if c.certificate else []
    if c.allow_plaintext:
        parts.append("allowed over plain text")
    return ", ".join(parts)


@syntax("credential", "protocols and credentials: protocol add|ls|rm, add, ls, rm, token, rekey", _arguments)
def cmd_credential(ctx: Context, args: argparse.Namespace) -> int:
    store = ctx.credentials
    if args.action == "protocol":
        if args.protocol_action == "add":
            store.add_protocol(args.name)
            ctx.emit({"protocol": args.name, "added": True}, None)
        elif args.protocol_action == "rm":
            store.remove_protocol(args.name)
            ctx.emit({"protocol": args.name, "removed": True}, None)
        else:
            names = store.protocols()
            ctx.emit({"protocols": names}, "\n".join(names))
    elif args.action == "add":
        subject = None
        if args.oauth2:
            cred = add_oauth(ctx, args)
        elif args.protocol == X509 or args.certificate:
            check_not_oauth(args)
            if args.allow_plaintext:
                raise UsageError(f"a {X509} credential holds no secret: --allow-plaintext does not apply")
            if args.password_stdin:
                raise UsageError(f"a {X509} credential takes --certificate, not a password")
            if not args.certificate:
                raise UsageError(f"a {X509} credential needs --certificate FILE.pem")
            pem, subject = read_certificate(args.certificate)
            cred = store.add(
                args.protocol,
                args.endpoint,
                args.virtual_user,
                real_user=args.real_user,
                certificate=pem,
                replace=args.replace,
            )
        else:
            check_not_oauth(args)
            store.check_can_add(args.protocol, args.endpoint, args.virtual_user, replace=args.replace)
            cred = store.add(
                args.protocol,
                args.endpoint,
                args.virtual_user,
                real_user=args.real_user,
                secret=_password(ctx, args),
                replace=args.replace,
                allow_plaintext=args.allow_plaintext,
            )
        data = {**cred.to_json(), "subject": subject}
        note = f" (certificate subject: {subject})" if subject else ""
        if cred.oauth is not None:
            first = "never refreshed" if cred.oauth.token_url is None else "the token endpoint is first asked at login"
            note = f" (oauth2 {cred.oauth.grant}; {first})"
        ctx.emit(data, f"stored {cred.identity()}{note}")
    elif args.action == "ls":
        creds = store.list(args.protocol)
        rows = [(c.protocol, c.endpoint, c.virtual_user, c.real_user or "", _kind(c), _details(c)) for c in creds]
        heads = ("PROTOCOL", "ENDPOINT", "VIRTUAL USER", "REAL USER", "KIND", "DETAILS")
        text = table(rows, heads) if rows else "no credentials"
        ctx.emit({"credentials": [c.to_json() for c in creds]}, text)
    elif args.action == "rm":
        store.remove(args.protocol, args.endpoint, args.virtual_user)
        ctx.emit(
            {"removed": True, "protocol": args.protocol, "endpoint": args.endpoint, "virtual_user": args.virtual_user},
            None,
        )
    elif args.action == "token":
        data, text = token_metadata(ctx, args)
        ctx.emit(data, text)
    elif args.action == "rekey":
        count = store.rekey()
        ctx.emit({"rekeyed": count}, f"re-encrypted {count} secret(s) under a new key")
    return 0
