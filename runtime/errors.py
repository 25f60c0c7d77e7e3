"""The errors every layer raises; each knows its kind, and one table maps each kind to its exit code."""

from __future__ import annotations

from enum import IntEnum, StrEnum

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ExitStatus",
    "EXIT_MEANING",
    "ErrorKind",
    "EXIT_STATUS",
    "exit_status",
    "JcshError",
    "UsageError",
    "NotFound",
    "JobFailed",
    "ConnectFailed",
    "LimitHit",
    "TempFailure",
    "ConfigError",
    "StoreError",
    "PermissionDenied",
]


class ExitStatus(IntEnum):
    """Every exit code jcsh gives, one meaning each (the README's table is checked against this)."""

    OK = 0  # done
    FAILED = 1  # the job failed: script raised, refusal (5xx), partial delivery, detection or doctor error
    USAGE = 2  # usage or bad input
    CONNECT = 3  # connection, TLS, trust or protocol failure while doing the job
    LIMIT = 4  # a limit was hit: timeout, memory, output size, a script's budget
    STORE = 74  # the home or its store cannot be read or written
    TEMPORARY = 75  # temporary failure: the server answered 4xx
    PERMISSION = 77  # not permitted: a script asked for what its permissions do not grant
    INTERRUPTED = 130  # Ctrl-C


# What each exit code means, as `--help` and the README say it (a test compares the README's table).
EXIT_MEANING: dict[ExitStatus, str] = {
    ExitStatus.OK: "done",
    ExitStatus.FAILED: (
        "the job failed: the script raised, the server refused the mail or the login (5xx), "
        "delivery was partial, detection failed, the doctor found an error, an entry was not found"
    ),
    ExitStatus.USAGE: "usage or bad input: unknown option, malformed address, path or value",
    ExitStatus.CONNECT: "connection, TLS or trust failure: unreachable, handshake failed, certificate not trusted",
    ExitStatus.LIMIT: "a limit was hit: timeout, memory, output size, a script's budget",
    ExitStatus.STORE: "the home or its store cannot be read or written: disk full, read-only, damaged, missing",
    ExitStatus.TEMPORARY: "temporary failure: the server answered 4xx",
    ExitStatus.PERMISSION: "not permitted: a script asked for what its permissions do not grant",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C)",
}


class ErrorKind(StrEnum):
    """What went wrong, as `error.kind` says it in every command's JSON and in scripts."""

    ERROR = "error"
    FAILED = "failed"
    NOT_FOUND = "not-found"
    CONFIG = "config"
    REFUSED = "refused"
    PARTIAL = "partial"
    USAGE = "usage"
    CONNECT = "connect"
    TLS = "tls"
    TRUST = "trust"
    PROTOCOL = "protocol"
    INSECURE = "insecure"
    LIMIT = "limit"
    TIMEOUT = "timeout"
    STORE = "store"
    TEMPORARY = "temporary"
    PERMISSION = "permission"
    INTERRUPTED = "interrupted"


# The one table of exit codes: a kind not listed here exits as its error class says.
EXIT_STATUS: dict[ErrorKind, ExitStatus] = {
    ErrorKind.ERROR: ExitStatus.FAILED,
    ErrorKind.FAILED: ExitStatus.FAILED,
    ErrorKind.NOT_FOUND: ExitStatus.FAILED,
    ErrorKind.CONFIG: ExitStatus.FAILED,
    ErrorKind.REFUSED: ExitStatus.FAILED,
    ErrorKind.PARTIAL: ExitStatus.FAILED,
    ErrorKind.USAGE: ExitStatus.USAGE,
    ErrorKind.CONNECT: ExitStatus.CONNECT,
    ErrorKind.TLS: ExitStatus.CONNECT,
    ErrorKind.TRUST: ExitStatus.CONNECT,
    ErrorKind.PROTOCOL: ExitStatus.CONNECT,
    ErrorKind.INSECURE: ExitStatus.CONNECT,  # a secret would cross in plain text: refused before AUTH
    ErrorKind.LIMIT: ExitStatus.LIMIT,
    ErrorKind.TIMEOUT: ExitStatus.LIMIT,  # every wall-clock deadline, in every command (docs/decisions.md)
    ErrorKind.STORE: ExitStatus.STORE,
    ErrorKind.TEMPORARY: ExitStatus.TEMPORARY,
    ErrorKind.PERMISSION: ExitStatus.PERMISSION,
    ErrorKind.INTERRUPTED: ExitStatus.INTERRUPTED,
}


def exit_status(kind: str, default: int = ExitStatus.FAILED) -> int:
    """The exit code of an error kind; `default` for a kind the table does not know."""
    try:
        return int(EXIT_STATUS[ErrorKind(kind)])
    except ValueError:
        return default


class JcshError(Exception):
    """Base of every error jcsh reports to a user: one line, a kind, an exit code."""

    kind: str = ErrorKind.ERROR
    exit_code: int = ExitStatus.FAILED
    result: Any = None  # the whole record, when a send or test that failed made one

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
            self.exit_code = exit_status(kind, type(self).exit_code)

    def to_json(self) -> dict[str, str]:
        """The error as `--json` shows it: {"kind", "message"}."""
        return {"kind": str(self.kind), "message": self.message}


class UsageError(JcshError):
    """Bad input: unknown option, malformed address, path or value (exit 2)."""

    kind = ErrorKind.USAGE
    exit_code = ExitStatus.USAGE

    def __init__(self, message: str, *, usage: str = "", kind: str | None = None) -> None:
        super().__init__(message, kind=kind)
        self.usage = usage


class NotFound(JcshError):
    """The thing asked for does not exist (exit 1)."""

    kind = ErrorKind.NOT_FOUND


class JobFailed(JcshError):
    """The job failed: refused by the server, detection failed, script raised (exit 1)."""

    kind = ErrorKind.FAILED


class ConfigError(JcshError):
    """The stored configuration cannot be used as it is (exit 1)."""

    kind = ErrorKind.CONFIG


class ConnectFailed(JcshError):
    """Connection, TLS, trust or protocol failure while doing the job (exit 3)."""

    kind = ErrorKind.CONNECT
    exit_code = ExitStatus.CONNECT


class LimitHit(JcshError):
    """A limit was hit: timeout, memory, output size, a script's budget (exit 4)."""

    kind = ErrorKind.LIMIT
    exit_code = ExitStatus.LIMIT


class TempFailure(JcshError):
    """The server answered 4xx: try again later (exit 75)."""

    kind = ErrorKind.TEMPORARY
    exit_code = ExitStatus.TEMPORARY


class StoreError(JcshError):
    """The home or its store cannot be read or written: disk full, read-only, damaged, missing (exit 74).

    `cause` tells the faults apart for scripts and `--json` ("disk-full", "read-only", "damaged" ...);
    `path` is the file or folder concerned.
    """

    kind = ErrorKind.STORE
    exit_code = ExitStatus.STORE

    def __init__(
        self, message: str, *, cause: str | None = None, path: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message, kind=kind)
        self.cause = cause
        self.path = path

    def to_json(self) -> dict[str, str]:
        data = super().to_json()
        if self.cause:
            data["cause"] = self.cause
        if self.path:
            data["path"] = self.path
        return data


class PermissionDenied(JcshError):
    """A script asked for what its permissions do not grant (exit 77)."""

    kind = ErrorKind.PERMISSION
    exit_code = ExitStatus.PERMISSION
