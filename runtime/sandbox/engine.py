"""Running one statement or script in the worker: compile, execute, and describe the outcome.

Tracebacks show the user's frames only, with line numbers from the source as given (it is kept
in linecache under its file name, `<stdin-N>` for REPL input); engine frames are left out.
"""

from __future__ import annotations

import linecache
import opcode
import traceback
from collections.abc import Callable
from typing import Any

from jcsh.runtime.errors import ErrorKind, ExitStatus, JcshError
from jcsh.runtime.sandbox.compiler import CompileRefused, compile_user
from jcsh.runtime.sandbox.link import Link, OutputLimitExceeded
from jcsh.runtime.sandbox.policy import REFUSALS
from jcsh.runtime.sandbox.stop import StopReason

__all__ = ["Engine"]

_MAX_TEXT = 64 * 1024  # error and value texts in the done message
_RAISE = opcode.opmap["RAISE_VARARGS"]
# Uncaught, these end the script with their own exit code and one line: a refusal, not a bug.
_OWN_EXIT = {int(ExitStatus.PERMISSION): None, int(ExitStatus.LIMIT): StopReason.BUDGET, int(ExitStatus.STORE): None}


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + f"... ({len(text) - _MAX_TEXT} more characters)"


class Engine:
    """One script namespace and the statements run in it."""

    def __init__(
        self,
        link: Link,
        make_namespace: Callable[[Callable[[Any], None]], dict[str, Any]],
        *,
        restricted: bool,
        memory_limit: int | None,
    ) -> None:
        self.link = link
        self.restricted = restricted
        self.memory_limit = memory_limit
        self.files: set[str] = set()
        self.count = 0
        self._value: str | None = None
        self.namespace = make_namespace(self._display)

    def _display(self, value: Any) -> None:
        if value is None:
            return
        self.namespace["_"] = value
        self._value = _clip(repr(value))

    def names(self) -> list[str]:
        """The script's names, for completion; nothing is evaluated."""
        return sorted(n for n in list(self.namespace) if isinstance(n, str) and not n.startswith("_"))

    def run(self, source: str, filename: str, *, interactive: bool, args: list[str] | None) -> dict[str, Any]:
        """Run source; the `done` message describing how it ended."""
        self.count += 1
        if interactive and filename == "<stdin>":
            filename = f"<stdin-{self.count}>"
        if args is not None:
            self.namespace["jcsArgs"] = list(args)
        self.link.start_statement()
        self._value = None
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        self.files.add(filename)
        try:
            code = compile_user(source, filename, interactive=interactive, restricted=self.restricted)
        except CompileRefused as e:
            return _done(False, 1, str(e))
        link = self.link
        link.running = True
        try:
            try:
                exec(code, self.namespace)
                outcome = _done(True, 0, None, value=self._value)
            except BaseException as e:
                outcome = self._failed(e)
            finally:
                link.running = False
        except BaseException as e:
            outcome = _done(False, 130 if isinstance(e, KeyboardInterrupt) else 1, type(e).__name__)
        if link.over:
            outcome.update(
                ok=False,
                exit=4,
                limit=StopReason.OUTPUT,
                error=f"output limit reached: the statement wrote more than {link.output_limit} bytes",
            )
        return outcome

    def _failed(self, e: BaseException) -> dict[str, Any]:
        if isinstance(e, SystemExit):
            code = e.code
            if code is None:
                return _done(True, 0, None, exited=True)
            if type(code) is int or type(code) is bool:
                return _done(int(code) == 0, int(code) % 256, None, exited=True)
            return _done(False, 1, _clip(_safe_str(code)), exited=True)
        if isinstance(e, OutputLimitExceeded):
            return _done(False, 4, None, limit=StopReason.OUTPUT)
        text = self.describe(e)
        if isinstance(e, KeyboardInterrupt):  # the parent names the place when a timeout caused it
            return _done(False, 130, text, where=self.where(e))
        if isinstance(e, MemoryError) and not _raised_by_code(e):
            size = f" of {self.memory_limit >> 20} MiB" if self.memory_limit else ""
            return _done(False, 4, f"{text}\nthe script went over its memory limit{size}", limit=StopReason.MEMORY)
        # The plaintext rule refuses like a permission does: its own exit code (3) and one line.
        if isinstance(e, JcshError) and (e.exit_code in _OWN_EXIT or e.kind == ErrorKind.INSECURE):
            stack = self._user_stack(e)
            where = f'File "{stack[-1].filename}", line {stack[-1].lineno}: ' if stack else ""
            limit = StopReason.TIMEOUT if e.kind == ErrorKind.TIMEOUT else _OWN_EXIT.get(e.exit_code)
            return _done(False, e.exit_code, _clip(where + _safe_str(e.message)), limit=limit)
        return _done(False, 1, text)

    def _user_stack(self, e: BaseException) -> traceback.StackSummary:
        frames = [(f, n) for f, n in traceback.walk_tb(e.__traceback__) if f.f_code.co_filename in self.files]
        return traceback.StackSummary.extract(iter(frames), limit=None)

    def where(self, e: BaseException) -> str | None:
        """The user's line when e happened: `FILE line N: CODE`."""
        stack = self._user_stack(e)
        if not stack:
            return None
        last = stack[-1]
        return f"{last.filename} line {last.lineno}" + (f": {last.line}" if last.line else "")

    def describe(self, e: BaseException) -> str:
        """A short traceback of the user's frames, or one line for a refusal."""
        stack = self._user_stack(e)
        if isinstance(e, REFUSALS):
            where = f'File "{stack[-1].filename}", line {stack[-1].lineno}: ' if stack else ""
            return _clip(where + _safe_str(e))
        lines = ["Traceback (most recent call last):\n", *stack.format()] if stack else []
        try:
            lines += traceback.format_exception_only(type(e), e)
        except Exception:
            lines.append(f"{type(e).__name__}: <the exception could not be shown>\n")
        return _clip("".join(lines).rstrip("\n"))


def _raised_by_code(e: BaseException) -> bool:
    """Whether a raise statement made this exception (`raise MemoryError`), not a failed allocation."""
    if e.args:
        return True  # the interpreter's own MemoryError carries no message
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code.co_code
    return 0 <= tb.tb_lasti < len(code) and code[tb.tb_lasti] == _RAISE


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"


def _done(
    ok: bool,
    code: int,
    error: str | None,
    *,
    value: str | None = None,
    exited: bool = False,
    limit: StopReason | None = None,
    where: str | None = None,
) -> dict[str, Any]:
    return {
        "t": "done",
        "ok": ok,
        "exit": code,
        "error": error,
        "value": value,
        "exited": exited,
        "limit": limit,
        "where": where,
    }
