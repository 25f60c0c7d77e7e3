"""A look at argv before parsing it: which subcommand it names (a leaf: entry and cli both use it)."""

from __future__ import annotations

TYPE_CHECKING = False  # entry imports this before anything else: no collections, no typing
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["command_word"]

_GLOBAL_WITH_VALUE = {"--home", "--timeout", "-c"}


def command_word(argv: Sequence[str]) -> str | None:
    """The subcommand's name in argv, without parsing: "" when there is none, None when unsure."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in ("-h", "--help", "--"):
            return None
        elif token in _GLOBAL_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            return token
    return ""
