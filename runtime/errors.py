"""The errors every layer raises; each knows its kind and the exit code it means."""

from __future__ import annotations

from typing import Any

__all__ = [
    "JcshError",
    "UsageError",
    "NotFound",
    "JobFailed",
    "ConnectFailed",
    "LimitHit",
    "TempFailure",
    "ConfigError",
]


class JcshError(Exception):
    """Base of every error jcsh reports to a user: one line, a kind, an exit code."""

    kind = "error"
    exit_code = 1
    result: Any = None  # the whole record, when a send or test that failed made one

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind

    def to_json(self) -> dict[str, str]:
        """The error as `--json` shows it: {"kind", "message"}."""
        return {"kind": self.kind, "message": self.message}


class UsageError(JcshError):
    """Bad input: unknown option, malformed address, path or value (exit 2)."""

    kind = "usage"
    exit_code = 2

    def __init__(self, message: str, *, usage: str = "", kind: str | None = None) -> None:
        super().__init__(message, kind=kind)
        self.usage = usage


class NotFound(JcshError):
    """The thing asked for does not exist (exit 1)."""

    kind = "not-found"


class JobFailed(JcshError):
    """The job failed: refused by the server, detection failed, script raised (exit 1)."""

    kind = "failed"


class ConfigError(JcshError):
    """The stored configuration cannot be used as it is (exit 1)."""

    kind = "config"


class ConnectFailed(JcshError):
    """Connection, TLS or trust failure while doing the job (exit 3)."""

    kind = "connect"
    exit_code = 3


class LimitHit(JcshError):
    """A limit was hit: timeout, memory, output size (exit 4)."""

    kind = "limit"
    exit_code = 4


class TempFailure(JcshError):
    """The server answered 4xx: try again later (exit 75)."""

    kind = "temporary"
    exit_code = 75
