"""The errors a script sees when the parent refuses or fails a request, and the request helper."""

from __future__ import annotations

from typing import Any

from runtime.sandbox.link import RemoteError

__all__ = ["JcshError", "NotFound", "UsageError", "JobFailed", "ConfigError", "ConnectFailed", "LimitHit",
           "TempFailure", "request"]


class JcshError(Exception):
    """A request failed: `kind` says how ("not-found", "usage", "connect" ...), `exit_code` what jcsh would exit with."""

    kind = "error"
    exit_code = 1

    def __init__(self, message: str, kind: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        if exit_code is not None:
            self.exit_code = exit_code


class NotFound(JcshError):
    """What was asked for does not exist."""

    kind = "not-found"


class UsageError(JcshError):
    """A bad argument: malformed path, address or value."""

    kind = "usage"
    exit_code = 2


class JobFailed(JcshError):
    """The job failed (refused by the server, detection failed)."""

    kind = "failed"


class ConfigError(JcshError):
    """The stored configuration cannot be used as it is."""

    kind = "config"


class ConnectFailed(JcshError):
    """Connection, TLS or trust failure."""

    kind = "connect"
    exit_code = 3


class LimitHit(JcshError):
    """A limit was hit (time, size)."""

    kind = "limit"
    exit_code = 4


class TempFailure(JcshError):
    """The server answered 4xx: try again later."""

    kind = "temporary"
    exit_code = 75


# Tracebacks name these as scripts know them ("NotFound: ..."), not by their module path.
for _cls in (JcshError, NotFound, UsageError, JobFailed, ConfigError, ConnectFailed, LimitHit, TempFailure):
    _cls.__module__ = "builtins"

_BY_KIND = {cls.kind: cls for cls in (NotFound, UsageError, JobFailed, ConfigError, ConnectFailed, LimitHit,
                                      TempFailure)}


def request(link: Any, method: str, params: dict[str, Any] | None = None) -> Any:
    """Ask the parent; its refusal comes back as the matching JcshError."""
    try:
        return link.call(method, params)
    except RemoteError as e:
        cls = _BY_KIND.get(e.kind, JcshError)
        raise cls(e.message, e.kind, e.exit_code) from None
