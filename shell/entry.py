"""The console script's first step: start the sandbox worker before the rest of jcsh is imported.

`jcsh -c CODE` is mostly waiting for the worker; starting it here lets its boot overlap the
parent's own imports and parsing. This module imports nothing heavy on purpose.
"""

from __future__ import annotations

import os
import sys

from jcsh.shell.argv import command_word

__all__ = ["main"]

# Commands that leave nothing for the interpreter's teardown but freeing memory when they return:
# no child process, no file left open (the protocol cache is written and renamed in a with-block),
# the registry closed, connections closed, only daemon threads. With their modules loaded (OpenSSL,
# sqlite, email) that teardown took ~10% of testmail's instructions (334 -> 303 M) and ~7% of a
# probe's. Scripts and the REPL keep the usual exit: a worker, history and atexit handlers.
_QUICK_EXIT = frozenset({"testmail", "tls"})

# The collector's young passes re-scan what every import leaves alive (modules, classes, functions)
# ~30 times in a probe or a test mail, and find little garbage: ~4% of their instructions. From
# 50,000 new container objects instead of 700, one probe or test mail (~25,000 by their end) never
# collects, while a probe of hundreds of unreachable targets (~230 cyclic objects each) still does:
# the collector stays on and memory bounded. Scripts and the REPL keep Python's defaults.
_QUICK_GC_THRESHOLD = 50_000


def main() -> int:
    argv = sys.argv[1:]
    word = command_word(argv)
    if word in _QUICK_EXIT:  # before any import: typing alone made ~1,500 container objects
        import gc

        gc.set_threshold(_QUICK_GC_THRESHOLD)
    from jcsh.shell.streams import reserve_std_fds

    reserve_std_fds()  # before anything opens a file: a closed stdout must not become the database's number
    if word == "" and "-c" in argv[:-1]:
        from jcsh.runtime.sandbox.client import needs_modules, prestart

        prestart(modules=needs_modules(argv[argv.index("-c") + 1]))
    from jcsh.shell.cli import main as cli_main

    code = cli_main(argv)
    if word in _QUICK_EXIT:
        _quick_exit(code)
    return code


def _quick_exit(code: int) -> None:
    """End the process with `code` now, without the interpreter's teardown; return when that has work to do."""
    import atexit

    if sys.flags.inspect or sys.flags.dev_mode or sys.gettrace() is not None or sys.getprofile() is not None:
        return  # python -i, -X dev (its ResourceWarnings come at teardown), a debugger, cProfile or coverage
    if atexit._ncallbacks():  # a handler must run (coverage's data file, a worker's cleanup)
        return
    threading = sys.modules.get("threading")
    if threading is not None:
        main_thread = threading.main_thread()
        if any(not t.daemon and t is not main_thread for t in threading.enumerate()):
            return  # the interpreter would wait for it
    from jcsh.shell.streams import flush_std_streams

    if flush_std_streams():  # else the interpreter reports the failed flush at exit, as it always does
        os._exit(code)
