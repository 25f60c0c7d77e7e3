"""The REPL's `%` commands: `cmd_<name>` methods found by name, each parsed like the command line.

A `%` command that mirrors a subcommand (`%probe` = `jcsh tls probe`) is built from that command's
`@syntax` spec, so both faces share one parser; every other spec is reachable by its own name
(`%mail settings`, `%configure`). A bad option prints usage and returns to the prompt.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jcsh.runtime.errors import JcshError, UsageError
from jcsh.shell.commands import Builder, JcshArgumentParser, ParserExit, add_arguments, specs
from jcsh.shell.render import report_error, table

if TYPE_CHECKING:
    from jcsh.shell.context import Context

__all__ = ["Magic", "Magics", "Shell", "ExitRepl", "magic", "mirror", "abandoned_jobs"]

# Subcommands that wait on the network: a spinner shows, Ctrl-C cancels.
_SLOW = frozenset({"tls probe", "tls protocols", "testmail", "configure", "mail send"})
# Specs the REPL does not offer under their own name: `%run` runs in this session instead.
_HIDDEN = frozenset({"run", "completion"})  # completion: a script for the login shell, not for the REPL
_UNLISTED = frozenset({"credentials"})  # an alias of %credential


class ExitRepl(Exception):
    """Leave the REPL with `status` (`%exit`: 0)."""

    def __init__(self, status: int = 0) -> None:
        super().__init__(status)
        self.status = status


class Shell(Protocol):
    """What the `%` commands need from the REPL that runs them."""

    ctx: Context

    @property
    def session(self) -> Any: ...

    def run_source(self, source: str, filename: str, *, interactive: bool, args: list[str] | None = None) -> int: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class Magic:
    """One `%` command: its name, help line, argument builder, and the subcommand it mirrors."""

    name: str
    summary: str
    arguments: Builder
    spec: str | None = None


def magic(summary: str, arguments: Builder | None = None) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Mark a `cmd_<name>` method as the `%name` command with its help line."""

    def mark(fn: Callable[..., int]) -> Callable[..., int]:
        fn.magic = (summary, arguments or (lambda p: None))  # type: ignore[attr-defined]
        return fn

    return mark


def mirror(spec: str) -> Callable[..., int]:
    """A `cmd_<name>` method that runs the subcommand `spec` (e.g. "tls probe")."""

    def run(self: Magics, args: argparse.Namespace) -> int:
        return self.run_spec(spec, args)

    run.mirrors = spec  # type: ignore[attr-defined]
    return run


def _help_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="*", metavar="NAME", help="a command name, such as probe or registry")


def _sandbox_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("count", nargs="?", type=_positive, default=20, metavar="N", help="how many (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"N must be a whole number of lines, not {text!r}") from None
    if value < 1:
        raise UsageError(f"N must be 1 or more, not {value}")
    return value


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a saved .jcs script")
    p.add_argument("args", metavar="ARG", nargs=argparse.REMAINDER, help="passed to the script as jcsArgs")


class Magics:
    """The `%` commands of one REPL session."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self._table: dict[str, Magic] | None = None

    # the commands ---------------------------------------------------------------------------

    cmd_tls = mirror("tls protocols")
    cmd_probe = mirror("tls probe")
    cmd_settings = mirror("mail settings")
    cmd_doctor = mirror("mail doctor")
    cmd_credential = mirror("credential")
    cmd_credentials = mirror("credential")
    cmd_configure = mirror("configure")
    cmd_testmail = mirror("testmail")
    cmd_registry = mirror("registry")
    cmd_sink = mirror("sink")

    @magic("the % commands, or the options of one", _help_arguments)
    def cmd_help(self, args: argparse.Namespace) -> int:
        ctx = self.shell.ctx
        if args.name:
            name = " ".join(args.name).lstrip("%")
            found = self.resolve(name.split())
            if found is None or found[1]:
                from jcsh.stdlib.describe import document

                text = document(name)
                if text is None:
                    raise UsageError(self._unknown(name))
                ctx.show(text + "\n")  # %help mail.send: the preloaded API, as help(mail.send)
                return 0
            ctx.show(self.parser(found[0]).format_help())
            return 0
        rows = [("%" + m.name, m.summary) for m in self.table().values() if self._listed(m)]
        ctx.show(
            table(rows) + "\n"
            "Anything else is Python, run in the sandbox. Tab completes; Ctrl-R searches history; Ctrl-D leaves.\n"
        )
        return 0

    @magic("the sandbox layers, the grants in force and the limits of each statement", _sandbox_arguments)
    def cmd_sandbox(self, args: argparse.Namespace) -> int:
        session = self.shell.session
        layers = list(getattr(session, "layers", []) or [])
        limits = dict(getattr(session, "limits", {}) or {})
        permissions = getattr(getattr(session, "host", None), "permissions", None)
        data: dict[str, Any] = {"layers": layers, "limits": limits}
        text = "layers: " + (", ".join(layers) or "process only") + "\n"
        if permissions is not None:
            grants = permissions.grants
            data["grants"] = grants.to_json()
            text += "scripts may:\n" + "".join(f"  {line}\n" for line in grants.describe())
        self._context(args).emit(data, text + table(list(limits.items())))
        return 0

    @magic("a fresh worker: the script namespace starts empty again")
    def cmd_reset(self, args: argparse.Namespace) -> int:
        self.shell.reset()
        self.shell.ctx.show("a fresh worker: the namespace is empty\n")
        return 0

    @magic("run a saved script in this session's namespace", _run_arguments)
    def cmd_run(self, args: argparse.Namespace) -> int:
        if args.file == "-":
            raise UsageError("%run reads a file; paste code at the prompt instead of -")
        from jcsh.shell.commands import read_text

        source = read_text(self.shell.ctx, args.file)
        return self.shell.run_source(source, args.file, interactive=False, args=list(args.args))

    @magic("the last N inputs from the history (default 20), oldest first", _history_arguments)
    def cmd_history(self, args: argparse.Namespace) -> int:
        from jcsh.shell.history import HISTORY_NAME, read_history
        from jcsh.shell.prompt_text import CONTINUATION

        ctx = self._context(args)
        entries = read_history(self.shell.ctx.home / HISTORY_NAME)
        first = max(len(entries) - args.count, 0)
        shown = list(enumerate(entries, 1))[first:]
        width = len(str(len(entries)))
        lines = []
        for number, entry in shown:
            head, *rest = entry.split("\n")  # emit() escapes what a terminal must not see
            lines.append(f"{number:>{width}}  {head}")
            lines += [f"{'':>{width}}  {CONTINUATION}{line}" for line in rest]
        data = {"history": [{"number": n, "text": e} for n, e in shown], "total": len(entries)}
        ctx.emit(data, "\n".join(lines) or "the history is empty")
        return 0

    @magic("leave jcsh (also Ctrl-D)")
    def cmd_exit(self, args: argparse.Namespace) -> int:
        raise ExitRepl(0)

    # the table -------------------------------------------------------------------------------

    def table(self) -> dict[str, Magic]:
        """Every `%` command by name: the methods first, then each remaining spec by its own name."""
        if self._table is None:
            found: dict[str, Magic] = {}
            known = specs()
            for attr in sorted(dir(type(self))):
                if not attr.startswith("cmd_"):
                    continue
                fn = getattr(type(self), attr)
                name = attr[4:]
                target = getattr(fn, "mirrors", None)
                if target is not None:
                    if target in known:
                        spec = known[target]
                        found[name] = Magic(name, spec.summary, spec.arguments, target)
                elif hasattr(fn, "magic"):
                    summary, arguments = fn.magic
                    found[name] = Magic(name, summary, arguments)
            for spec in known.values():
                if spec.name not in _HIDDEN and spec.name not in found:
                    found[spec.name] = Magic(spec.name, spec.summary, spec.arguments, spec.name)
            self._table = found
        return self._table

    def _listed(self, m: Magic) -> bool:
        """%help shows aliases once, and a spec's full name only when no shorter name covers it."""
        if m.name in _UNLISTED:
            return False
        if m.spec is None or m.name != m.spec:
            return True
        return not any(o.spec == m.spec and o.name != m.name and o.name not in _UNLISTED for o in self.table().values())

    def summaries(self) -> dict[str, str]:
        return {name: m.summary for name, m in self.table().items()}

    def resolve(self, words: list[str]) -> tuple[Magic, list[str]] | None:
        """The command the words name (two-word names first) and the words left for its parser."""
        table = self.table()
        if len(words) >= 2 and f"{words[0]} {words[1]}" in table:
            return table[f"{words[0]} {words[1]}"], words[2:]
        if words and words[0] in table:
            return table[words[0]], words[1:]
        return None

    def parser(self, m: Magic) -> JcshArgumentParser:
        """The same parser as the command line's, with `%name` as its program name."""
        p = JcshArgumentParser(prog="%" + m.name, description=m.summary)
        if m.spec is not None:  # the subcommand's own options, global ones included
            add_arguments(p, m.arguments, m.spec, "%" + m.name)
        else:
            m.arguments(p)
        return p

    def parser_for(self, name: str) -> JcshArgumentParser | None:
        m = self.table().get(name)
        return None if m is None else self.parser(m)

    # running ----------------------------------------------------------------------------------

    def run(self, line: str) -> int:
        """Run one `%` line; report errors and return the exit code. Only `%exit` raises."""
        ctx = self.shell.ctx
        try:
            try:
                words = shlex.split(line.strip().lstrip("%"))
            except ValueError as e:
                raise UsageError(f"cannot split the command line: {e}") from None
            if not words:
                raise UsageError("a % command needs a name; %help lists them")
            found = self.resolve(words)
            if found is None:
                raise UsageError(self._unknown(words[0]))
            m, rest = found
            try:
                args = self.parser(m).parse_args(rest)
            except ParserExit as e:
                return e.status
            if m.spec is not None and m.name not in self._methods():
                return self.run_spec(m.spec, args)
            return int(getattr(self, "cmd_" + m.name)(args) or 0)
        except ExitRepl:
            raise
        except JcshError as e:
            return report_error(e, as_json=False, out=ctx.out, stderr=ctx.err)
        except KeyboardInterrupt:
            ctx.show("\njcsh: interrupted\n", err=True)
            return 130
        except Exception as e:
            ctx.warn(f"internal error: {type(e).__name__}: {e}")
            return 1

    def _methods(self) -> set[str]:
        return {a[4:] for a in dir(type(self)) if a.startswith("cmd_")}

    def run_spec(self, name: str, args: argparse.Namespace) -> int:
        """Run the subcommand `name` with parsed args; a network one under a spinner, cancellable."""
        spec = specs()[name]
        ctx = self._context(args)
        if name not in _SLOW:
            return spec.run(ctx, args)
        from jcsh.shell.spinner import spinning

        with spinning(ctx, name.split()[-1] + "…") as spinner:
            return _cancellable(lambda: spec.run(ctx, args), on_cancel=spinner.silence)

    def _context(self, args: argparse.Namespace) -> Context:
        """The session's context with this command's --json/--no-color; the stores stay shared."""
        base = self.shell.ctx
        home = getattr(args, "home", None)
        if home:
            from jcsh.runtime.home import resolve_home

            if resolve_home(home) != base.home:
                raise UsageError("--home cannot change inside a session; start `jcsh --home DIR` instead")
        ctx = copy.copy(base)
        ctx.json = bool(getattr(args, "json", False))
        ctx.no_color = base.no_color or bool(getattr(args, "no_color", False))
        return ctx

    def _unknown(self, name: str) -> str:
        names = [n for n in self.table() if " " not in n]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"; did you mean %{close[0]}?" if close else "; %help lists them"
        return f"unknown command %{name}{hint}"


_abandoned: list[threading.Thread] = []


def abandoned_jobs() -> int:
    """How many cancelled commands are still finishing in the background."""
    _abandoned[:] = [t for t in _abandoned if t.is_alive()]
    return len(_abandoned)


def _cancellable(job: Callable[[], int], *, on_cancel: Callable[[], object]) -> int:
    """Run job in a thread so that Ctrl-C returns at once: a blocked network call cannot always
    be interrupted (a thread pool waits for its workers), so the abandoned job finishes within
    its own timeout in the background, its output discarded."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["code"] = job()
        except BaseException as e:
            outcome["error"] = e
        finally:
            done.set()

    thread = threading.Thread(target=work, name="jcsh-command", daemon=True)
    thread.start()
    try:
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        on_cancel()
        _abandoned.append(thread)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["code"] or 0)
