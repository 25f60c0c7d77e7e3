"""The wall-clock limit of a script or REPL statement: --timeout, the registry, or 30 seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jcsh.runtime.errors import ConfigError

if TYPE_CHECKING:
    from jcsh.shell.context import Context

__all__ = ["script_timeout", "TIMEOUT_KEY"]

TIMEOUT_KEY = "/configuration/shell/Timeout"


def script_timeout(ctx: Context) -> float:
    """--timeout, else the registry's /configuration/shell/Timeout, else 30 seconds."""
    if ctx.timeout is not None:
        return ctx.timeout
    text = ctx.registry.value(TIMEOUT_KEY)
    if text is None or not text.strip():
        return 30.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86_400:
        raise ConfigError(f"{TIMEOUT_KEY} is {text!r}: it must be a number of seconds from 0 to 86400")
    return value
