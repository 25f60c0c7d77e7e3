"""`jcsh -c CODE`, `jcsh run FILE [ARG...]`, and `jcsh` itself (REPL on a terminal, else stdin as a script)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from jcsh.runtime.errors import ErrorKind, ExitStatus
from jcsh.shell.commands import read_text, syntax
from jcsh.shell.context import Context
from jcsh.shell.timeout import TIMEOUT_KEY, script_timeout

if TYPE_CHECKING:
    from jcsh.runtime.sandbox.client import RunResult, Session

__all__ = ["run_code", "run_default", "cmd_run", "run_error", "script_timeout", "TIMEOUT_KEY"]


def _new_session(*, modules: bool) -> Session:
    from jcsh.runtime.sandbox.client import Session

    session = Session(None, modules=modules)
    session.start()
    return session


def _session(ctx: Context, source: str | None = None) -> Session:
    """A started worker (first thing: it boots while we read the registry); source None: not known yet."""
    from jcsh.runtime.sandbox.client import claim_prestarted, needs_modules

    return claim_prestarted() or _new_session(modules=source is None or needs_modules(source))


def _run(ctx: Context, session: Session | None, source: str, filename: str, args: list[str] | None) -> int:
    from jcsh.runtime.sandbox.grants import Permissions
    from jcsh.runtime.sandbox.host import Host

    session = session or ctx.session or _session(ctx)
    own = session is not ctx.session  # the REPL's own session outlives this run
    try:
        if session.host is None:
            session.host = Host(
                lambda: ctx.registry,
                lambda: ctx.credentials,
                ctx.home,
                args=args,
                out=ctx.out,
                err=ctx.err,
                permissions=Permissions(ctx.grants),  # never asks: only the REPL's statements do
            )
        session.timeout = script_timeout(ctx)
        collected: dict[str, list[str]] = {"out": [], "err": []}

        def collect(stream: str, text: str) -> None:
            collected[stream].append(text)

        result = session.run(
            source,
            filename=filename,
            args=args if args is not None else [],
            on_output=collect if ctx.json else ctx.script_output,
        )
    finally:
        if own:
            session.close(wait=False)  # this process is about to exit: no need to reap the worker
    return _report(ctx, result, collected, source)


# What a script's own exit code says when no limit stopped it: sys.exit(N), or a refused permission.
_KIND_OF_EXIT = {
    ExitStatus.USAGE: ErrorKind.USAGE,
    ExitStatus.CONNECT: ErrorKind.CONNECT,
    ExitStatus.LIMIT: ErrorKind.LIMIT,
    ExitStatus.STORE: ErrorKind.STORE,
    ExitStatus.TEMPORARY: ErrorKind.TEMPORARY,
    ExitStatus.PERMISSION: ErrorKind.PERMISSION,
    ExitStatus.INTERRUPTED: ErrorKind.INTERRUPTED,
}


def run_error(result: RunResult) -> dict[str, str] | None:
    """The `error` object of a run's JSON, {"kind", "message"} as in every command; None when it succeeded."""
    if result.ok:
        return None
    if result.limit is not None:
        kind = result.limit.error_kind  # "timeout" for the wall clock, "limit" for the others
    else:
        kind = _KIND_OF_EXIT.get(result.exit_code, ErrorKind.FAILED)  # type: ignore[call-overload]
    return {"kind": str(kind), "message": result.error or f"the script exited with status {result.exit_code}"}


def _report(ctx: Context, result: RunResult, collected: dict[str, list[str]], source: str) -> int:
    hint = None
    if not result.ok and result.error:
        from jcsh.shell.java import java_hint  # only a failed script pays for looking

        hint = java_hint(source, result.error)
    if ctx.json:
        data: dict[str, Any] = {
            "ok": result.ok,
            "exit_code": result.exit_code,
            "stdout": "".join(collected["out"]),
            "stderr": "".join(collected["err"]),
            "error": run_error(result),
            "limit": None if result.limit is None else str(result.limit),
        }
        if hint is not None:
            data["hint"] = hint.message
            if hint.python is not None:
                data["python"] = hint.python
        ctx.emit(data, None)
    elif hint is not None and hint.python is not None:
        # The documented snippet: say what it is and print its Python form (stdout: `> tls.jcs` keeps it).
        ctx.show(f"jcsh: {hint.message}\n", err=True)
        ctx.show(hint.python)
    elif result.error:
        ctx.show(result.error if result.error.endswith("\n") else result.error + "\n", err=True)
        if hint is not None:
            ctx.show(hint.message + "\n", err=True)
    return result.exit_code


def run_code(ctx: Context, code: str) -> int:
    """`jcsh -c CODE`."""
    session = _session(ctx, code) if ctx.session is None else None
    return _run(ctx, session, code, "<string>", [])


def run_default(ctx: Context) -> int:
    """`jcsh`: the REPL on a terminal, else stdin run as a script."""
    if ctx.interactive:
        from jcsh.shell.repl import run_repl

        return run_repl(ctx)
    session = _session(ctx)
    try:
        source = read_text(ctx, "-")
    except BaseException:
        session.close()
        raise
    return _run(ctx, session, source, "<stdin>", [])


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a .jcs script (Python with the preloaded names); - reads stdin")
    p.add_argument("args", metavar="ARG", nargs=argparse.REMAINDER, help="passed to the script as jcsArgs")


@syntax("run", "run a saved script (.jcs) in the sandbox; ARGs reach it as jcsArgs", _arguments)
def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    session = None
    if ctx.session is None and args.file == "-":
        session = _session(ctx)  # reading stdin may take a while: start the worker first
    try:
        source = read_text(ctx, args.file)
    except BaseException:
        if session is not None:
            session.close()
        raise
    if ctx.session is None and session is None:
        session = _session(ctx, source)  # a file reads in well under a millisecond
    return _run(ctx, session, source, "<stdin>" if args.file == "-" else args.file, list(args.args))
