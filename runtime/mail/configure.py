"""System_Mail_Configure: validate From, find or take the Server, and store both in one transaction."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jcsh.runtime.errors import ErrorKind, ExitStatus, UsageError, exit_status
from jcsh.runtime.mail import values
from jcsh.runtime.mail.detect import DEFAULT_LIFETIME, Candidate, detect, resolve_host
from jcsh.runtime.mail.settings import MAIL

if TYPE_CHECKING:
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import Registry

__all__ = ["ConfigureResult", "configure", "FROM_KEY", "SERVER_KEY", "TRANSPORT_KEY"]

FROM_KEY = f"{MAIL}/From"
SERVER_KEY = f"{MAIL}/Server"
TRANSPORT_KEY = f"{MAIL}/Transport"


@dataclass(frozen=True)
class ConfigureResult:
    """The outcome of one run: status Completed (settings written) or Error (nothing written)."""

    status: str  # "Completed" | "Error"
    from_: str
    server: str | None
    detected_via: str | None  # "mx" | "implicit-mx" | "given"
    candidates: tuple[Candidate, ...] = ()
    error: dict[str, str] | None = None  # {"kind", "message", "detection"} when status is Error
    warnings: tuple[str, ...] = ()
    written: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when Completed; else as the error's kind says (a DNS timeout 4, a temporary failure 75, else 1)."""
        if self.status == "Completed":
            return 0
        return exit_status(self.error["kind"]) if self.error else ExitStatus.FAILED

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "from": self.from_,
            "server": self.server,
            "detected_via": self.detected_via,
            "candidates": [c.to_json() for c in self.candidates],
        }
        if self.error:
            data["error"] = dict(self.error)
        data["warnings"] = list(self.warnings)
        data["written"] = dict(self.written)
        return data

    def summary(self) -> str:
        """The human summary, ending with the status line."""
        how = {
            "mx": "detected from MX",
            "implicit-mx": "detected: the domain's own address (no MX)",
            "given": "given",
        }.get(self.detected_via or "", "not detected")
        lines = [f"From:       {self.from_}", f"Server:     {self.server or '-'} ({how})"]
        for i, c in enumerate(self.candidates):
            what = " ".join(c.addresses) if c.addresses else (c.error or "no address")
            mark = " <- chosen" if c.host == self.server and self.detected_via == "mx" else ""
            lines.append(f"{'Candidates:' if i == 0 else '':<12}{c.preference:>3} {c.host}  {what}{mark}")
        for path, value in self.written.items():
            lines.append(f"{'Written:' if path == next(iter(self.written)) else '':<12}{path} = {value}")
        status = self.status
        if self.error:
            status += f": {self.error['message']}"
        lines.append(f"Status:     {status}")
        return "\n".join(lines)


def configure(
    registry: Registry,
    credentials: CredentialStore | None,
    from_addr: str,
    server: str | None = None,
    *,
    lifetime: float = DEFAULT_LIFETIME,
    deadline: float | None = None,
) -> ConfigureResult:
    """Validate From (UsageError, exit 2), find the server, and on success write From, Server, Transport.

    `lifetime` bounds each DNS query; `deadline` (time.monotonic()) every query together.
    """
    try:
        address = values.parse_address(from_addr)
    except ValueError as e:
        raise UsageError(f"From {from_addr!r} {e}") from None
    warnings: list[str] = []
    given = (server or "").strip()
    candidates: tuple[Candidate, ...]
    via: str | None
    if given:
        try:
            values.parse_host(given)
        except ValueError as e:
            raise UsageError(f"Server {given!r} {e}") from None
        found = resolve_host(given, lifetime=lifetime, deadline=deadline)
        if not found.addresses:
            warnings.append(f"{given} does not resolve ({found.message}); it is stored as given")
        chosen, via, candidates = given, "given", ()
    else:
        detection = detect(address.domain, lifetime=lifetime, deadline=deadline)
        candidates = detection.candidates
        if not detection.ok:
            hint = f"jcsh configure --from {shlex.quote(from_addr)} --server HOST"
            message = f"{detection.message}; give the mail server's hostname: {hint}"
            return ConfigureResult(
                "Error",
                address.formatted,
                None,
                None,
                candidates,
                {"kind": _error_kind(detection.kind), "message": message, "detection": detection.kind or "failed"},
            )
        chosen, via = detection.server or "", detection.via
    previous = registry.value(SERVER_KEY)
    written = {FROM_KEY: address.formatted, SERVER_KEY: chosen}
    with registry.transaction():  # all three or none
        if registry.value(TRANSPORT_KEY) is None:
            written[TRANSPORT_KEY] = "smtp"
        for path, value in written.items():
            registry.set(path, value)
    if previous is not None and previous != chosen:
        warnings.append(f"{SERVER_KEY} was {previous}; an smtp credential must now have endpoint {chosen} exactly")
    if credentials is not None and credentials.find("smtp", chosen, "default") is None:
        warnings.append(
            f"no smtp credential has endpoint {chosen} and virtual user default: mail will be "
            "sent without login (see `jcsh mail doctor`)"
        )
    return ConfigureResult("Completed", address.formatted, chosen, via, candidates, None, tuple(warnings), written)


def _error_kind(detection: str | None) -> ErrorKind:
    """The `error.kind` of a failed detection (its own kind, e.g. null-mx, stays in `error.detection`)."""
    if detection == "timeout":
        return ErrorKind.TIMEOUT  # the one timeout kind of every command
    if detection == "temporary":
        return ErrorKind.TEMPORARY  # try again later: the scheduler's retry exit code
    return ErrorKind.FAILED
