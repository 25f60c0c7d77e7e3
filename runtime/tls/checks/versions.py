"""The version check: which TLS versions the server accepts, each on a connection of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from jcsh.runtime.records import NamedTuple
from jcsh.runtime.tls.checks.render import table

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any

    from jcsh.runtime.tls.attempt import Attempt
    from jcsh.runtime.tls.protocols import ProtocolReport

__all__ = ["VersionVerdict", "VersionResult", "VersionsResult", "judge_versions", "render_versions"]


class VersionVerdict(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "no"  # the server refused it, or the connection said nothing about it
    UNSUPPORTED = "unsupported"  # this machine cannot speak it: no verdict on the server


class VersionResult(NamedTuple):
    name: str
    verdict: VersionVerdict
    reason: str = ""


class VersionsResult(NamedTuple):
    versions: tuple[VersionResult, ...]

    @property
    def protocols(self) -> dict[str, bool]:
        return {v.name: v.verdict is VersionVerdict.ACCEPTED for v in self.versions}

    @property
    def reasons(self) -> dict[str, str]:
        return {v.name: v.reason for v in self.versions if v.verdict is not VersionVerdict.ACCEPTED}

    def accepted(self) -> list[str]:
        return [v.name for v in self.versions if v.verdict is VersionVerdict.ACCEPTED]


def judge_versions(wanted: Sequence[str], by_name: Mapping[str, Attempt], here: ProtocolReport) -> VersionsResult:
    """Each wanted version's verdict from its attempt; a version this machine lacks is no verdict."""
    out = []
    for name in wanted:
        # whatever the attempt saw, this machine cannot speak a version it does not support
        seen = by_name.get(name) if name in here.names else None
        if seen is None:
            why = here.reasons.get(name, "no handshake at this version")
            out.append(VersionResult(name, VersionVerdict.UNSUPPORTED, f"unsupported here: {why}"))
        elif seen.outcome == "accepted":
            out.append(VersionResult(name, VersionVerdict.ACCEPTED))
        else:
            out.append(VersionResult(name, VersionVerdict.REFUSED, seen.reason))
    return VersionsResult(tuple(out))


def render_versions(result: VersionsResult) -> list[str]:
    rows: list[Sequence[Any]] = [
        ("", v.name, "accepted" if v.verdict is VersionVerdict.ACCEPTED else "no", v.reason) for v in result.versions
    ]
    return [line.rstrip() for line in table(rows).splitlines()] if rows else []
