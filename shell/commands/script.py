"""`jcsh -c`, `jcsh run`, and `jcsh` itself (REPL or stdin script)."""

from __future__ import annotations

from runtime.errors import UsageError
from shell.context import Context

__all__ = ["run_code", "run_default"]


def run_code(ctx: Context, code: str) -> int:
    raise UsageError("the script engine is not built yet")


def run_default(ctx: Context) -> int:
    raise UsageError("the script engine is not built yet")
