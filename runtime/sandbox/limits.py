"""rlimits and seccomp for the worker (filled in by the sandbox work)."""

from __future__ import annotations

__all__ = ["available_layers"]


def available_layers() -> list[str]:
    """The sandbox layers this platform can apply."""
    return []
