"""The command line: global options, one subparser per command, exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from jcsh.runtime.errors import JcshError
from jcsh.shell.argv import command_word
from jcsh.shell.commands import COMMAND_AREAS, JcshArgumentParser, ParserExit, add_arguments, add_common, seconds, specs
from jcsh.shell.context import Context
from jcsh.shell.render import report_error
from jcsh.shell.streams import StreamClosed, std_streams

__all__ = ["main", "build_parser"]


_OWN_TIMEOUT = ("testmail", "tls probe", "configure")
# Commands that wait on the network (or DNS): a spinner with elapsed seconds on a terminal's stderr.
_NETWORK = frozenset({"testmail", "tls probe", "configure", "mail doctor"})


def build_parser(only: str | None = None) -> JcshArgumentParser:
    """The command line; `only` limits the subparsers to one command ("" = none) to start faster."""
    parser = JcshArgumentParser(
        prog="jcsh",
        description="A sandboxed Python scripting shell for outgoing mail: configure, probe, test.",
    )
    parser.help_name = ""
    add_common(parser, suppress=False)
    parser.add_argument(
        "--timeout",
        dest="script_timeout",
        type=seconds(86_400),
        metavar="SECONDS",
        help="wall-clock limit of a script or statement (default 30)",
    )
    parser.add_argument(
        "--allow-config",
        action="store_true",
        help="let scripts change the mail and TLS configuration and credentials",
    )
    parser.add_argument(
        "--allow-net",
        metavar="HOST[:PORT],...",
        help="let scripts connect to these hosts (bare --allow-net: anywhere) besides the configured mail server",
    )
    parser.add_argument("--version", action="store_true", help="version (with --json: Python, OpenSSL, sandbox)")
    parser.add_argument("-c", dest="code", metavar="CODE", help="run CODE in the sandbox")
    parser.add_argument("--vi", action="store_true", help="vi key bindings in the REPL")
    if only == "":
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=JcshArgumentParser)
    groups: dict[str, object] = {}
    for name, spec in specs(only).items():
        words = name.split()
        target = sub
        if len(words) == 2:
            if words[0] not in groups:
                group = sub.add_parser(words[0], help=f"{words[0]} commands")
                group.help_name = words[0]
                add_common(group, suppress=True)
                groups[words[0]] = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            target = groups[words[0]]  # type: ignore[assignment]
        command = target.add_parser(words[-1], help=spec.summary, description=spec.summary)
        add_arguments(command, spec.arguments, spec.name)
        command.set_defaults(spec=spec)
    return parser


def _version(ctx: Context) -> int:
    import platform
    import ssl

    from jcsh.runtime import __version__
    from jcsh.runtime.sandbox.client import Session

    worker = Session(None, modules=False)  # the layers in force are the ones a real worker applied
    worker.start()
    try:
        layers = worker.layers
    finally:
        worker.close()
    data = {
        "version": __version__,
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "sandbox_layers": layers,
    }
    shown = ", ".join(layers) or "none (the worker did not start)"
    ctx.emit(data, f"jcsh {__version__} (Python {data['python']}, {data['openssl']}; sandbox: {shown})")
    return 0


def _report(ctx: Context, error: JcshError) -> int:
    """Report an error where it can still be written: its exit code either way."""
    try:
        return report_error(error, as_json=ctx.json, out=ctx.out, stderr=ctx.err)
    except StreamClosed:
        try:  # --json with stdout gone: say it on stderr
            return report_error(error, as_json=False, out=ctx.err, stderr=ctx.err)
        except StreamClosed:
            return error.exit_code


def _bare_allow_net(argv: list[str]) -> list[str]:
    """A bare `--allow-net` (before the command) means anywhere: `--allow-net=*`, so that the
    command word after it is not taken for its value (HOSTs are given as `--allow-net=HOST`)."""
    word = command_word(argv)
    out, before = [], True
    for token in argv:
        if token == "--" or (word and token == word):
            before = False
        out.append("--allow-net=*" if before and token == "--allow-net" else token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run jcsh with argv; return the exit code."""
    argv = _bare_allow_net(list(sys.argv[1:] if argv is None else argv))
    wants_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    stdin, out, err = std_streams()
    ctx = Context(json=wants_json, out=out, err=err, stdin=stdin)
    try:
        try:
            word = command_word(argv)
            args = build_parser(word if word == "" or word in COMMAND_AREAS else None).parse_args(argv)
        except ParserExit as e:
            return e.status
        ctx.home_arg = args.home
        ctx.json = bool(args.json)
        ctx.no_color = bool(args.no_color or os.environ.get("NO_COLOR"))
        ctx.timeout = args.script_timeout
        ctx.vi = args.vi
        if args.allow_config or args.allow_net is not None:
            from jcsh.runtime.sandbox.grants import Grants

            ctx.grants = Grants.of(allow_config=args.allow_config, allow_net=args.allow_net)
        if args.version:
            return _version(ctx)
        spec = getattr(args, "spec", None)
        if spec is not None:
            if args.script_timeout is not None and spec.name != "run":
                ctx.warn(
                    f"--timeout before the command limits scripts only; `{spec.name}` ignores it"
                    + (" (give its own --timeout after the command)" if spec.name in _OWN_TIMEOUT else "")
                )
            if ctx.grants is not None and spec.name != "run":
                ctx.warn(f"{' '.join(ctx.grants.flags())} grants scripts only; `{spec.name}` needs no grant")
            if spec.name in _NETWORK:
                from jcsh.shell.spinner import spinning

                with spinning(ctx, spec.name.split()[-1] + "…"):
                    return spec.run(ctx, args)
            return spec.run(ctx, args)
        from jcsh.shell.commands import script

        if args.code is not None:
            return script.run_code(ctx, args.code)
        return script.run_default(ctx)
    except JcshError as e:
        return _report(ctx, e)
    except StreamClosed as e:  # a closed stdin/stdout/stderr, a reader gone, a full disk under stdout
        return _report(ctx, JcshError(str(e), kind="failed"))
    except KeyboardInterrupt:
        try:
            ctx.show("\njcsh: interrupted\n", err=True)
        except StreamClosed:
            pass
        return 130
    finally:
        ctx.close()
