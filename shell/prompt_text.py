"""The REPL's prompt strings (a leaf module: the REPL loop and the prompt_toolkit session share them)."""

from __future__ import annotations

__all__ = ["PROMPT", "CONTINUATION"]

PROMPT = "jcsh> "
CONTINUATION = "...> "
