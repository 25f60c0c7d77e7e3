"""What a login with a cached OAuth 2.0 token needs: the grant, the token and its reuse rule (no HTTP, no JSON)."""

from __future__ import annotations

from enum import StrEnum

from jcsh.runtime.credentials import Secret
from jcsh.runtime.records import NamedTuple

__all__ = ["Grant", "Token", "token_reusable", "REUSE_MARGIN"]

REUSE_MARGIN = 60  # seconds of a token's lifetime that must remain for it to be reused


class Grant(StrEnum):
    """How a credential gets its access token."""

    CLIENT_CREDENTIALS = "client-credentials"
    REFRESH_TOKEN = "refresh-token"
    STATIC = "static"


class Token(NamedTuple):
    """An access token as the endpoint gave it; `refresh_token` is set when the endpoint rotated it."""

    access_token: Secret
    obtained_at: float  # time.time() when it was fetched
    expires_in: int | None  # seconds, as the endpoint said; None: not said
    scope: str | None
    refresh_token: Secret | None = None

    @property
    def expires_at(self) -> float | None:
        return None if self.expires_in is None else self.obtained_at + self.expires_in

    def reusable(self, now: float) -> bool:
        return token_reusable(self.obtained_at, self.expires_in, now)


def token_reusable(obtained_at: float, expires_in: int | None, now: float) -> bool:
    """Reuse while more than 60 s remain; for lifetimes of 60 s or less, while more than half remains.

    A token whose lifetime was not said is not reused: it may already be dead.
    """
    if expires_in is None:
        return False
    margin = REUSE_MARGIN if expires_in > REUSE_MARGIN else expires_in / 2
    return obtained_at + expires_in - now > margin
