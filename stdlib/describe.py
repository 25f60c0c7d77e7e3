"""What the preloaded names offer, for completion: static, nothing is evaluated."""

from __future__ import annotations

import inspect

__all__ = ["describe"]


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def describe() -> dict[str, dict[str, str]]:
    """Preloaded name -> {member: one-line doc}; jcsArgs (a list of strings) has no members of its own."""
    from jcsh.stdlib.preload import PRELOADED

    found: dict[str, dict[str, str]] = {}
    for name, cls in PRELOADED.items():
        members: dict[str, str] = {}
        for member, value in inspect.getmembers_static(cls):
            if member.startswith("_") or (issubclass(cls, BaseException) and member in _EXCEPTION_NOISE):
                continue
            if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                target = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
                members[member] = _first_line(target)
        if issubclass(cls, BaseException):
            members.update(
                kind="how it failed: not-found, usage, connect, limit, temporary ...",
                message="the message",
                exit_code="the exit code jcsh would give",
            )
        found[name] = dict(sorted(members.items()))
    found["jcsArgs"] = {}
    return found


_EXCEPTION_NOISE = frozenset({"args", "with_traceback", "add_note"})
