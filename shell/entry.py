"""The console script's first step: start the sandbox worker before the rest of jcsh is imported.

`jcsh -c CODE` is mostly waiting for the worker; starting it here lets its boot overlap the
parent's own imports and parsing. This module imports nothing heavy on purpose.
"""

from __future__ import annotations

import sys

from jcsh.shell.argv import command_word

__all__ = ["main"]


def main() -> int:
    from jcsh.shell.streams import reserve_std_fds

    reserve_std_fds()  # before anything opens a file: a closed stdout must not become the database's number
    argv = sys.argv[1:]
    if command_word(argv) == "" and "-c" in argv[:-1]:
        from jcsh.runtime.sandbox.client import needs_modules, prestart

        prestart(modules=needs_modules(argv[argv.index("-c") + 1]))
    from jcsh.shell.cli import main as cli_main

    return cli_main(argv)
