"""The sink's extra AUTH mechanisms, as aiosmtpd hooks (`auth_<MECH>` on the handler): CRAM-MD5,
XOAUTH2 and OAUTHBEARER. A refused token gets what real servers send: a 334 with base64 JSON
error details, then, after the client's empty (XOAUTH2) or ^A (OAUTHBEARER) line, a 535.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from jcsh.runtime.sink_config import SinkState, read_token_file

__all__ = ["SinkAuth"]

REFUSED = "535 5.7.8 Authentication credentials invalid"


class SinkAuth:
    """Mixin for the sink's handler: needs `self.sink` and `self.config`."""

    sink: SinkState

    def token_accepted(self, token: str) -> bool:
        cfg = self.sink.config
        if cfg.oauth_accept is not None and cfg.oauth_accept(token):
            return True
        if cfg.oauth_token_file is None:
            return False
        try:  # re-read each time: an admin may add a fresh token while the sink runs
            accepted = read_token_file(cfg.oauth_token_file)
        except ValueError as e:
            self.sink.event(f"token file: {e}")
            return False
        return any(hmac.compare_digest(token.encode(), t.encode()) for t in accepted)

    async def _initial(self, server: SMTP, args: list[str]) -> bytes | None:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            return None if blob is MISSING else blob
        try:
            return base64.b64decode(args[1], validate=True)
        except (binascii.Error, ValueError):
            await server.push("501 5.5.2 Can't decode base64")
            return None

    async def _token_result(self, server: SMTP, mechanism: str, user: str, token: str | None) -> AuthResult:
        if token is not None and self.token_accepted(token):
            self.sink.event(f"AUTH {mechanism} {user}: accepted")
            return AuthResult(success=True, handled=False, auth_data=user)
        self.sink.event(f"AUTH {mechanism} {user}: refused (token not accepted)")
        details = {"status": "invalid_token" if mechanism == "OAUTHBEARER" else "401", "schemes": "Bearer"}
        details["scope"] = "https://mail.google.com/"
        await server.challenge_auth(json.dumps(details))  # the client answers empty (or ^A), then hears 535
        return AuthResult(success=False, handled=False, message=REFUSED)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        blob = await self._initial(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        fields = dict(f.split("=", 1) for f in blob.decode("utf-8", "replace").split("\x01") if "=" in f)
        auth = fields.get("auth", "")
        token = auth[7:] if auth[:7].lower() == "bearer " else None
        return await self._token_result(server, "XOAUTH2", fields.get("user", "?"), token)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        blob = await self._initial(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        text = blob.decode("utf-8", "replace")
        gs2, _, rest = text.partition("\x01")
        parts = gs2.split(",")
        if len(parts) < 3 or parts[0] not in ("n", "y"):
            await server.push("501 5.5.2 OAUTHBEARER needs a GS2 header (RFC 7628)")
            return AuthResult(success=False, handled=True)
        user = next((p[2:] for p in parts[1:] if p.startswith("a=")), "?").replace("=2C", ",").replace("=3D", "=")
        fields = dict(f.split("=", 1) for f in rest.split("\x01") if "=" in f)
        auth = fields.get("auth", "")
        token = auth[7:] if auth[:7].lower() == "bearer " else None
        return await self._token_result(server, "OAUTHBEARER", user, token)

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        challenge = f"<{secrets.randbits(48)}.{int(time.time())}@{server.hostname}>".encode()
        blob = await server.challenge_auth(challenge)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        user, _, digest = bytes(blob).decode("utf-8", "replace").rpartition(" ")
        password = self.sink.config.auth.get(user)
        expected = hmac.new(password.encode(), challenge, "md5").hexdigest() if password is not None else ""
        ok = bool(expected) and hmac.compare_digest(expected, digest)
        self.sink.event(f"AUTH CRAM-MD5 {user}: {'accepted' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)
