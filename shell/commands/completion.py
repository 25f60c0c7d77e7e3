"""`jcsh completion bash|zsh|fish`: a shell completion script generated from the parser (shtab).

The script is static: commands, options and choices complete without starting jcsh. Only a
registry PATH (`registry get/set/ls/rm`) asks jcsh, through the hidden `--registry-paths`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from jcsh.runtime.errors import UsageError
from jcsh.shell.commands import syntax
from jcsh.shell.context import Context

__all__ = ["cmd_completion", "SHELLS", "REGISTRY_PATHS_COMMAND"]

SHELLS = ("bash", "zsh", "fish")
# What the completion script runs for a registry PATH (stderr silenced: a broken home completes nothing).
REGISTRY_PATHS_COMMAND = "jcsh completion --registry-paths 2>/dev/null"
_PATH_ACTIONS = ("get", "set", "ls", "rm")


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", metavar="SHELL", nargs="?", choices=SHELLS, help="bash, zsh or fish")
    p.add_argument("--registry-paths", action="store_true", help=argparse.SUPPRESS)  # what the script asks


@syntax("completion", "print a completion script for bash, zsh or fish (commands, options, registry paths)", _arguments)
def cmd_completion(ctx: Context, args: argparse.Namespace) -> int:
    if args.registry_paths:
        paths = _registry_paths(ctx)
        ctx.emit({"paths": paths}, "\n".join(paths) or None)
        return 0
    if args.shell is None:
        raise UsageError(f"name the shell: jcsh completion {'|'.join(SHELLS)}")
    ctx.show(completion_script(args.shell))
    return 0


def _registry_paths(ctx: Context) -> list[str]:
    """Every registry path; none (and no home created) when the home holds no registry yet."""
    from jcsh.runtime.home import resolve_home
    from jcsh.runtime.registry import DB_NAME

    if not (resolve_home(ctx.home_arg) / DB_NAME).is_file():
        return []
    return [path for path, _value in ctx.registry.walk("/")]


def completion_script(shell: str) -> str:
    """The completion script of every command for `shell`."""
    import shtab

    from jcsh.shell.cli import build_parser

    parser = build_parser()
    registry_paths = shtab.cmd(REGISTRY_PATHS_COMMAND)
    for words, action in _actions(parser, []):
        if words[:1] == ["registry"] and words[1:] and words[1] in _PATH_ACTIONS and action.dest == "path":
            action.complete = registry_paths  # type: ignore[attr-defined]  # shtab reads this attribute
        elif action.metavar in ("DIR",):
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif isinstance(action.metavar, str) and "FILE" in action.metavar:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell, root_prefix="jcsh")


def _actions(parser: argparse.ArgumentParser, words: list[str]) -> Iterator[tuple[list[str], argparse.Action]]:
    for action in parser._actions:  # argparse exposes sub-parsers only through its private list
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, [*words, name])
        else:
            yield words, action
