"""The interactive shell: a prompt over the sandbox session, with `%` commands.

Start-up order matters: the worker is spawned first and boots while prompt_toolkit loads, so the
prompt shows before the worker is ready; the first statement waits for it if needed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jcsh.shell.history import HISTORY_NAME
from jcsh.shell.prompt_text import CONTINUATION, PROMPT
from jcsh.shell.render import one_line, paint
from jcsh.shell.statement import help_request, is_complete

if TYPE_CHECKING:
    from jcsh.shell.context import Context

__all__ = [
    "run_repl",
    "open_session",
    "statement_timeout",
    "Repl",
    "PROMPT",
    "CONTINUATION",
    "HISTORY_NAME",
    "ECHO_LIMIT",
]

ECHO_LIMIT = 4000  # characters of an echoed value: a huge repr is cut, not scrolled past
_DEFAULT_TIMEOUT = 30.0


def run_repl(ctx: Context) -> int:
    """Run the REPL on the terminal until Ctrl-D or %exit; return the exit status."""
    session = open_session(ctx)  # first: the worker boots while the rest loads
    try:
        status = Repl(ctx, session).loop()
    finally:
        session.close()
        ctx.session = None
    from jcsh.shell.magics import abandoned_jobs

    if abandoned_jobs():
        # A cancelled network command still waits on its socket, and the interpreter would join
        # its thread pool at exit (up to the network timeout): close the stores and leave now.
        ctx.close()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(status)
    return status


def open_session(ctx: Context) -> Any:
    """A started sandbox session on the context's stores; start() does not wait for the worker."""
    from jcsh.runtime.sandbox.client import Session

    session = Session(None)
    session.start()
    from jcsh.runtime.sandbox.grants import Permissions
    from jcsh.runtime.sandbox.host import Host

    session.host = Host(
        lambda: ctx.registry,
        lambda: ctx.credentials,
        ctx.home,
        out=ctx.out,
        err=ctx.err,
        permissions=Permissions(ctx.grants),
    )
    session.timeout = statement_timeout(ctx)
    ctx.session = session
    return session


def statement_timeout(ctx: Context) -> float:
    """The scripts' rule (--timeout, the registry, 30 s); a bad stored value warns instead of stopping."""
    from jcsh.runtime.errors import ConfigError
    from jcsh.shell.timeout import script_timeout

    try:
        return script_timeout(ctx)
    except ConfigError as e:
        ctx.warn(f"{e.message}; using {_DEFAULT_TIMEOUT:g} s")
        return _DEFAULT_TIMEOUT


def plain_terminal(ctx: Context) -> bool:
    """A dumb terminal, or output that is not a terminal: no prompt_toolkit, plain prompts."""
    term = os.environ.get("TERM", "")
    return term in ("dumb", "unknown", "") or not getattr(ctx.out, "isatty", lambda: False)()


class Repl:
    """One interactive session: reads statements, runs them in the sandbox, keeps the status."""

    def __init__(self, ctx: Context, session: Any) -> None:
        from jcsh.shell.magics import Magics

        self.ctx = ctx
        self._session = session
        self.count = 0
        self.last: tuple[str, str] | None = None  # ("ok" | "failed", detail) of the last input
        self.color = ctx.color
        self.magics = Magics(self)
        self._names: list[str] | None = None
        self._mail: tuple[str, str] | None = None
        self._at_line_start = True
        self._layers: list[str] | None = None
        # Learn the worker's layers when it is ready, without making the prompt wait for it.
        threading.Thread(target=self._watch_ready, name="jcsh-ready", daemon=True).start()

    @property
    def session(self) -> Any:
        return self._session

    def _watch_ready(self) -> None:
        try:
            self._layers = list(self._session.layers)
        except Exception:
            pass

    # the loops --------------------------------------------------------------------------------

    def loop(self) -> int:
        """Read and run inputs until Ctrl-D, %exit or exit(); the status to leave with."""
        from jcsh.shell.magics import ExitRepl

        try:
            if plain_terminal(self.ctx):
                return self._plain_loop()
            return self._prompt_loop()
        except ExitRepl as e:
            return e.status

    def _prompt_loop(self) -> int:
        from jcsh.shell.prompt import build_prompt

        prompt = build_prompt(
            history=self.ctx.home / HISTORY_NAME,
            completer=self.completer(),
            toolbar=self.toolbar,
            vi=bool(getattr(self.ctx, "vi", False)),
            color=not (self.ctx.no_color or os.environ.get("NO_COLOR")),
            warmups=(described, allowed_modules),
        )
        self._write(self.banner())
        while True:
            try:
                text = prompt.prompt()
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                return 0
            self.execute(text)

    def _plain_loop(self) -> int:
        """Plain prompts without cursor movement; history is still kept."""
        from jcsh.shell.history import append_history

        self._write(self.banner())
        lines: list[str] = []
        while True:
            try:
                lines.append(input(CONTINUATION if lines else PROMPT))
            except EOFError:
                self._write("\n")
                return 0
            except KeyboardInterrupt:
                self._write("\n")
                lines = []
                continue
            text = "\n".join(lines).rstrip()
            if is_complete("\n".join(lines)):
                lines = []
                append_history(self.ctx.home / HISTORY_NAME, text)
                self.execute(text)

    def execute(self, text: str) -> int:
        """Run one input, Python or a `%` command; ExitRepl when it asks to leave."""
        from jcsh.runtime.errors import JcshError
        from jcsh.shell.magics import ExitRepl

        if not text.strip():
            return 0
        try:
            asked = help_request(text)
            if asked is not None:
                return self.show_help(asked)
            if text.lstrip().startswith("%"):
                started = time.monotonic()
                code = self.magics.run(text)
                self._mail = None  # a command may have changed the configuration
                self._record(code, time.monotonic() - started)
                return code
            self.count += 1
            return self.run_source(text, f"<stdin-{self.count}>", interactive=True)
        except ExitRepl:
            raise
        except KeyboardInterrupt:
            self._newline()
            self._write("KeyboardInterrupt\n", stream="err")
            self._record(130, 0.0)
            return 130
        except JcshError as e:
            self._newline()
            self._write(f"jcsh: {e.message}\n", stream="err")
            self._record(e.exit_code, 0.0)
            return e.exit_code
        except Exception as e:
            self._newline()
            self._write(f"jcsh: internal error: {type(e).__name__}: {e}\n", stream="err")
            self._record(1, 0.0)
            return 1
        finally:
            self._newline()

    # running code -----------------------------------------------------------------------------

    def run_source(self, source: str, filename: str, *, interactive: bool, args: list[str] | None = None) -> int:
        """Run source in the session, streaming its output; echo its value or error."""
        from jcsh.shell.magics import ExitRepl

        permissions = getattr(getattr(self._session, "host", None), "permissions", None)
        if permissions is not None:
            # A statement typed at the terminal may ask for a permission; %run files never do, nor
            # a session whose question could not be seen (stderr is not the terminal).
            permissions.ask = self.ask_permission if interactive and self._can_ask() else None
        started = time.monotonic()
        try:
            result = self._session.run(
                source, filename=filename, interactive=interactive, on_output=self._on_output, args=args
            )
        finally:
            if permissions is not None:
                permissions.ask = None
        elapsed = time.monotonic() - started
        self._names = None
        self._mail = None  # scripts can reconfigure mail
        if result.value is not None:
            self._newline()
            self._write(_truncate(result.value) + "\n")
        if result.error:
            self._newline()
            self._write(paint(result.error.rstrip("\n"), "red", self.color) + "\n", stream="err")
            self._java_hint(source, result.error)
        if result.namespace_lost:
            self._newline()
            self._write(
                paint("jcsh: a fresh worker took over; the namespace is empty", "yellow", self.color) + "\n",
                stream="err",
            )
        code = 0 if result.ok else (result.exit_code or 1)
        self._record(code, elapsed)
        if result.exited and interactive:
            raise ExitRepl(result.exit_code)  # exit() at the prompt leaves, as in python
        return code

    def _java_hint(self, source: str, error: str) -> None:
        from jcsh.shell.java import java_hint

        hint = java_hint(source, error)
        if hint is not None:
            self._write(paint(hint.message, "yellow", self.color) + "\n", stream="err")
            if hint.python is not None:
                self._write(hint.python)

    def show_help(self, name: str) -> int:
        """`help(NAME)`, `NAME?`: the preloaded API's documentation, read from the classes (never run)."""
        from jcsh.stdlib.describe import document

        if not name:
            rows = ", ".join(described())
            self._write(
                f"help(NAME) or NAME? documents the preloaded names and their members: {rows}.\n"
                "For example help(mail.send), registry.get?. %help lists the % commands.\n"
            )
            self._record(0, 0.0)
            return 0
        text = document(name)
        if text is None:
            known = ", ".join(described())
            self._write(
                f"jcsh: no documentation for {name}: help() knows the preloaded names ({known}) and their members\n",
                stream="err",
            )
            self._record(1, 0.0)
            return 1
        self._write(text + "\n")
        self._record(0, 0.0)
        return 0

    def _can_ask(self) -> bool:
        return all(bool(getattr(s, "isatty", lambda: False)()) for s in (self.ctx.stdin, self.ctx.err))

    def ask_permission(self, need: Any) -> Any:
        """Deno's prompt: one line, y (this once), a (always, this session), anything else no."""
        from jcsh.runtime.sandbox.grants import Answer

        self._newline()
        self._write(paint(need.question, "yellow", self.color) + " ", stream="err")
        line = self.ctx.stdin.readline()
        self._at_line_start = True
        if not line:  # Ctrl-D
            self._write("\n", stream="err")
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return Answer.ONCE
        if answer in ("a", "always"):
            self._write(f"jcsh: {need.flag} granted for this session (%sandbox lists the grants)\n", stream="err")
            return Answer.ALWAYS
        return Answer.NO

    def reset(self) -> None:
        self._session.reset()
        self._names = None
        self.count = 0

    def _on_output(self, stream: str, text: str) -> None:
        self._write(text, stream="err" if stream == "err" else "out")

    def _write(self, text: str, *, stream: str = "out") -> None:
        if not text:
            return
        self.ctx.show(text, err=stream == "err")  # the sanitizer: script output is someone else's text
        self._at_line_start = text.endswith("\n")

    def _newline(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _record(self, code: int, elapsed: float) -> None:
        took = f"{elapsed * 1000:.0f} ms" if elapsed < 10 else f"{elapsed:.1f} s"
        self.last = ("ok", took) if code == 0 else ("failed", f"exit {code}, {took}")

    # around the prompt ------------------------------------------------------------------------

    def mail_status(self) -> tuple[str, str]:
        """(server:port, security) of the effective mail settings; cached, never raises."""
        if self._mail is None:
            try:
                from jcsh.runtime.mail.settings import load_settings

                settings = load_settings(self.ctx.registry, self.ctx.credentials)
                server = settings.server.value
                self._mail = (f"{server}:{settings.port.value}", str(settings.security.value)) if server else ("", "")
            except Exception:
                self._mail = ("?", "unreadable configuration; try %doctor")
        return self._mail

    def banner(self) -> str:
        from jcsh.runtime import __version__

        server, security = self.mail_status()
        mail = f"mail {server} ({security})" if server else "mail not configured — try %configure"
        layers = self._layers
        if layers is None:  # the worker is still starting: name what this platform applies
            from jcsh.runtime.sandbox.limits import available_layers

            layers = available_layers()
        first = f"jcsh {__version__} · home {_tilde(self.ctx.home)} · {mail}"
        second = f"sandbox: {', '.join(layers) or 'process only'} · %help lists commands · Ctrl-D leaves"
        return paint(first, "bold", self.color) + "\n" + paint(second, "dim", self.color) + "\n"

    def toolbar(self) -> list[tuple[str, str]]:
        server, security = self.mail_status()
        # The server comes from the registry: escaped here, as prompt_toolkit shows what it is given.
        parts = [("class:bottom-toolbar", f" mail: {one_line(server) or 'not configured'}")]
        if server:
            parts.append(("class:bottom-toolbar", f"  security: {one_line(security)}"))
        if self.last:
            state, detail = self.last
            parts.append(("class:bottom-toolbar", "  │ last: "))
            parts.append((f"class:bottom-toolbar.{state}", "ran" if state == "ok" else "failed"))
            parts.append(("class:bottom-toolbar", f" ({detail}) "))
        return parts

    # completion -------------------------------------------------------------------------------

    def completer(self) -> Any:
        from jcsh.shell.completion import JcshCompleter, Sources

        return JcshCompleter(
            Sources(
                namespace=self.names,
                members=described,
                modules=allowed_modules,
                registry_children=self._registry_children,
                magics=self.magics.summaries,
                magic_parser=self.magics.parser_for,
            )
        )

    def names(self) -> list[str]:
        """The namespace's names, asked once after each statement (nothing is evaluated)."""
        if self._names is None:
            if not self.count:
                return list(described())  # nothing ran yet: only the preloaded names exist
            try:
                self._names = list(self._session.names())
            except Exception:
                return list(described())
        return self._names

    def _registry_children(self, path: str) -> list[tuple[str, bool, str | None]]:
        try:
            return [(c.name, c.has_children, c.value) for c in self.ctx.registry.children(path)]
        except Exception:
            return []


_DESCRIBED: dict[str, dict[str, str]] | None = None


def described() -> dict[str, dict[str, str]]:
    """jcsh.stdlib.describe(), once per process; {} when it cannot be read."""
    global _DESCRIBED
    if _DESCRIBED is None:
        try:
            from jcsh.stdlib.describe import describe

            _DESCRIBED = describe()
        except Exception:
            _DESCRIBED = {}
    return _DESCRIBED


def allowed_modules() -> list[str]:
    """The modules a script may import (the sandbox's allowlist)."""
    from jcsh.runtime.sandbox.imports import ALLOWED

    return list(ALLOWED)


def _truncate(text: str) -> str:
    if len(text) <= ECHO_LIMIT:
        return text
    return text[:ECHO_LIMIT] + f"… ({len(text) - ECHO_LIMIT} more characters)"


def _tilde(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
