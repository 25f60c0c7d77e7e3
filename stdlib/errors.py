"""The errors a script sees when the parent refuses or fails a request, and the request helper.

They are runtime's own error classes: a script catches `JcshError` (or `NotFound` ...) and reads
`kind`, `message` and `exit_code`, as the command line reports them.
"""

from __future__ import annotations

from typing import Any

from jcsh.runtime.errors import (
    ConfigError,
    ConnectFailed,
    ErrorKind,
    ExitStatus,
    JcshError,
    JobFailed,
    LimitHit,
    NotFound,
    PermissionDenied,
    StoreError,
    TempFailure,
    UsageError,
    exit_status,
)
from jcsh.runtime.sandbox.link import RemoteError

__all__ = [
    "JcshError",
    "NotFound",
    "UsageError",
    "JobFailed",
    "ConfigError",
    "ConnectFailed",
    "LimitHit",
    "TempFailure",
    "StoreError",
    "PermissionDenied",
    "request",
    "error_for",
    "name_for_scripts",
]

_CLASSES: tuple[type[JcshError], ...] = (
    JcshError,
    NotFound,
    UsageError,
    JobFailed,
    ConfigError,
    ConnectFailed,
    LimitHit,
    TempFailure,
    StoreError,
    PermissionDenied,
)
_BY_KIND: dict[str, type[JcshError]] = {str(cls.kind): cls for cls in _CLASSES[1:]}
# Any other kind: the class of its exit code, as the command line maps it (a refused TLS is a
# ConnectFailed, a timed-out step a LimitHit, a 5xx refusal a JobFailed).
_BY_STATUS: dict[int, type[JcshError]] = {
    int(ExitStatus.FAILED): JobFailed,
    int(ExitStatus.USAGE): UsageError,
    int(ExitStatus.CONNECT): ConnectFailed,
    int(ExitStatus.LIMIT): LimitHit,
    int(ExitStatus.STORE): StoreError,
    int(ExitStatus.TEMPORARY): TempFailure,
    int(ExitStatus.PERMISSION): PermissionDenied,
}


def name_for_scripts() -> None:
    """In the worker: tracebacks name the errors as scripts know them ("NotFound: ..."), not by module."""
    for cls in _CLASSES:
        cls.__module__ = "builtins"


def error_for(kind: str, message: str) -> JcshError:
    """The error class a script catches for a failure of this kind ("connect", "tls", "temporary" ...)."""
    cls = _BY_KIND.get(kind)
    if cls is None:
        cls = _BY_STATUS.get(exit_status(kind, -1), JcshError) if kind != ErrorKind.ERROR else JcshError
    return cls(message, kind=kind)


def request(link: Any, method: str, params: dict[str, Any] | None = None) -> Any:
    """Ask the parent; its refusal comes back as the matching JcshError."""
    try:
        return link.call(method, params)
    except RemoteError as e:
        error = error_for(e.kind, e.message)
        error.exit_code = e.exit_code
        raise error from None
