"""The commands both faces run: `cmd_<name>` functions registered with `@syntax`.

Each area lives in its own module (registry, credential, mail, tls, sink, script) and
imports nothing heavy at module level, so building every parser stays cheap.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable

from jcsh.runtime.errors import UsageError
from jcsh.runtime.records import NamedTuple

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from jcsh.runtime.bounded import Bounds
    from jcsh.shell.context import Context

__all__ = [
    "Spec",
    "COMMAND_AREAS",
    "syntax",
    "specs",
    "JcshArgumentParser",
    "ParserExit",
    "add_common",
    "add_arguments",
    "seconds",
    "read_text",
]

# The first word of each command -> its area module, so that one command imports one area.
COMMAND_AREAS = {
    "registry": "registry",
    "credential": "credential",
    "configure": "mail",
    "mail": "mail",
    "testmail": "testmail",
    "tls": "tls",
    "sink": "sink",
    "run": "script",
    "examples": "examples",
    "completion": "completion",
    "backup": "backup",
    "restore": "backup",
}
_AREAS = tuple(dict.fromkeys(COMMAND_AREAS.values()))

Runner = Callable[["Context", argparse.Namespace], int]
Builder = Callable[[argparse.ArgumentParser], None]


class Spec(NamedTuple):
    """One command: its name (words separated by a space), its help line, its parser and runner."""

    name: str
    summary: str
    arguments: Builder
    run: Runner


_SPECS: dict[str, Spec] = {}
_loaded = False


def _untranslated_where_no_catalog_can_be() -> None:
    """argparse passes each of its own strings through gettext, which imports locale and looks for
    a catalog under gettext's folder for the domain (sys.base_prefix/share/locale) on every call:
    ~1 ms of each start. Where that folder does not exist (pyenv and python.org builds), no string
    can be translated, so argparse gets the identity: the same strings without the lookups."""
    import gettext  # argparse imported it

    if not os.path.isdir(gettext.bindtextdomain(gettext.textdomain())):
        argparse._ = str  # type: ignore[attr-defined]  # argparse's module-level gettext alias


_untranslated_where_no_catalog_can_be()


def syntax(name: str, summary: str, arguments: Builder | None = None) -> Callable[[Runner], Runner]:
    """Register `cmd_<name>` as the command `name` (e.g. "tls probe") with its help line."""

    def register(fn: Runner) -> Runner:
        _SPECS[name] = Spec(name, summary, arguments or (lambda p: None), fn)
        return fn

    return register


def specs(word: str | None = None) -> dict[str, Spec]:
    """Every command by name (importing the area modules the first time); with word, its commands."""
    global _loaded
    if word is not None:
        importlib.import_module(f"jcsh.shell.commands.{COMMAND_AREAS[word]}")
        return {name: spec for name, spec in _SPECS.items() if name.split()[0] == word}
    if not _loaded:
        for area in _AREAS:
            importlib.import_module(f"jcsh.shell.commands.{area}")
        _loaded = True
    return _SPECS


class ParserExit(Exception):
    """argparse wanted to exit (after --help); the caller decides what that means."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@functools.cache
def _help_width() -> int:
    # argparse asks shutil for the terminal size in every formatter it makes (one per option
    # added), importing shutil and its compression modules on every start: ask once, here.
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
    return max(columns - 2, 20)


class _HelpFormatter(argparse.HelpFormatter):
    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _help_width())

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:  # the epilog's sections are laid out already
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class JcshArgumentParser(argparse.ArgumentParser):
    """A parser that raises instead of exiting, so that the REPL survives a bad option.

    `help_name` (a command's name, "" for jcsh itself) ends its --help with examples, exit codes
    and environment, built only when the help is printed.
    """

    help_name: str | None = None
    help_magic: str | None = None  # "%probe" for `tls probe` in the REPL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def format_help(self) -> str:
        if self.help_name is not None and self.epilog is None:
            from jcsh.shell.epilog import epilog

            self.epilog = epilog(self.help_name, self.help_magic, _help_width())
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, usage=self.format_usage())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message)
        raise ParserExit(status)


def add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The global options every subcommand also accepts after its name."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--home", metavar="DIR", default=default, help="home folder (registry, key, history)")
    parser.add_argument(
        "--json", action="store_true", default=default if suppress else False, help="one JSON document on stdout"
    )
    parser.add_argument(
        "--no-color", action="store_true", default=default if suppress else False, help="no colour (also NO_COLOR)"
    )


def add_arguments(
    parser: argparse.ArgumentParser, arguments: Builder, name: str | None = None, magic: str | None = None
) -> None:
    """A command's options plus the global ones, on it and on each of its actions (`registry get`).

    With `name`, its --help (and each action's) ends with the command's examples and exit codes
    (`magic`: the REPL's name for it, e.g. "%probe").
    """
    add_common(parser, suppress=True)
    arguments(parser)
    _add_common_below(parser, name, magic)


def _add_common_below(parser: argparse.ArgumentParser, name: str | None = None, magic: str | None = None) -> None:
    if name is not None and isinstance(parser, JcshArgumentParser):
        parser.help_name, parser.help_magic = name, magic
    for action in parser._actions:  # argparse exposes sub-parsers only through its private list
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                add_common(sub, suppress=True)
                _add_common_below(sub, name, magic)


def seconds(maximum: float) -> Callable[[str], float]:
    """An argparse type for `--timeout`: a number of seconds above 0 and at most `maximum`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"--timeout must be a number of seconds, not {text!r}") from None
        if not 0 < value <= maximum:
            raise UsageError(f"--timeout must be more than 0 and at most {maximum:g} seconds, not {text}")
        return value

    return parse


def read_text(ctx: Context, name: str, *, what: str = "", bounds: Bounds | None = None) -> str:
    """A UTF-8 file's text (`-` reads standard input), read in bounded chunks; UsageError saying why not.

    `bounds` is the size limit and the bytes this kind of input cannot hold (a script by default).
    """
    from jcsh.runtime.bounded import SCRIPT
    from jcsh.runtime.bounded import read_text as read_bounded
    from jcsh.shell.streams import StreamClosed

    bounds = bounds or SCRIPT
    label = "standard input" if name == "-" else f"{what} {name}".strip()
    try:
        if name == "-":
            return read_bounded(ctx.stdin, label, bounds)
        with open(name, "rb") as f:
            return read_bounded(f, label, bounds)
    except StreamClosed:
        raise
    except OSError as e:
        raise UsageError(f"cannot read {label}: {e.strerror}") from None
