"""The REPL: the real program driven through a pseudo-terminal, and its parts through prompt_toolkit's
pipe input. The terminal answers cursor-position requests, as a real one does."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from jcsh.runtime.registry import Registry
from jcsh.shell.completion import JcshCompleter, Sources
from jcsh.shell.context import Context
from jcsh.shell.history import append_history, keep_in_history
from jcsh.shell.magics import ExitRepl, Magics
from jcsh.shell.prompt import build_prompt
from jcsh.shell.statement import is_complete, next_indent
from tests.support.terminal import CPR_REQUEST

# --- through a pseudo-terminal -------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_statements_blocks_errors_and_commands(terminal) -> None:
    t = terminal()
    t.expect(r"jcsh \S+ · home .* · mail not configured — try %configure")
    t.expect(r"sandbox: .*process")
    t.prompt()
    t.run("6*7")
    t.expect(r"\n42\n")
    t.prompt()
    t.run('jcsOut.println("hello", 3)')
    t.expect(r"\nhello 3\n")
    t.prompt()
    # A for block: Enter after the colon continues (auto-indented), a blank line runs it.
    t.run("for i in range(3):")
    t.expect(r"\.\.\.> ")
    t.run("jcsOut.println('item', i * 10)")
    t.expect(r"\.\.\.> ")
    t.run("")
    t.expect(r"item 0\nitem 10\nitem 20\n")
    t.prompt()
    t.run("1 +* 2")
    t.expect(r"SyntaxError")
    t.prompt()
    t.run("def boom():")
    t.run("return 1 / 0")
    t.run("")
    t.prompt()
    t.run("boom()")
    found = t.expect(r"Traceback \(most recent call last\):(.|\n)*?ZeroDivisionError: division by zero")
    assert '"<stdin-' in found.group(0) and "return 1 / 0" in found.group(0)
    assert "runtime/sandbox" not in found.group(0) and "RestrictedPython" not in found.group(0)
    t.prompt()
    t.run("%tls")
    t.expect(r"TLSv1\.\d")
    t.prompt()
    t.run("%registry set /configuration/mail/Server smtp.example.test")
    t.prompt()
    t.run("%registry get /configuration/mail/Server")
    t.expect(r"\nsmtp\.example\.test\n")
    t.prompt()
    t.run('registry.get("/configuration/mail/Server")')
    t.expect(r"'smtp\.example\.test'")
    t.prompt()
    t.run("%probe --no-such-option")
    t.expect(r"usage: %probe .*\n(.|\n)*jcsh: unrecognized arguments: --no-such-option")
    t.prompt()
    t.run("%prbe localhost")
    t.expect(r"unknown command %prbe; did you mean %probe\?")
    t.prompt()
    t.run("2**10")
    t.expect(r"\n1024\n")
    t.prompt()
    assert t.finish() == 0


@pytest.mark.timeout(30)
def test_ctrl_c_interrupts_running_code_and_the_prompt_returns(terminal) -> None:
    t = terminal()
    t.prompt()
    t.run("n = 5")
    t.prompt()
    t.run("while True: pass")
    t.run("")
    t.settle(0.5)
    t.child.send("\x03")
    t.expect(r"KeyboardInterrupt", timeout=8)
    t.prompt()
    t.run("n + 1")  # the statement was interrupted, the namespace kept
    t.expect(r"\n6\n")
    t.prompt()
    t.child.send("half-typed")
    t.child.send("\x03")  # at the prompt: clears the line
    t.prompt()
    t.run("7*6")
    t.expect(r"\n42\n")
    t.prompt()
    assert t.finish() == 0


@pytest.mark.timeout(30)
def test_a_network_command_shows_a_spinner_and_ctrl_c_cancels_it(terminal) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
        port = silent.getsockname()[1]
        t = terminal()
        t.prompt()
        started = time.monotonic()
        t.run(f"%probe 127.0.0.1:{port} --timeout 20")
        t.expect(r"probe… \d+\.\ds +\(Ctrl-C cancels\)")
        t.child.send("\x03")
        t.expect(r"jcsh: interrupted")
        t.prompt()
        assert time.monotonic() - started < 8  # not the 20 s network timeout
        t.run("6*7")
        t.expect(r"\n42\n")
        t.prompt()
        assert t.finish() == 0


@pytest.mark.timeout(30)
def test_history_persists_across_sessions(terminal, home: Path) -> None:
    t = terminal()
    t.prompt()
    t.run("history_marker = 12345")
    t.prompt()
    assert t.finish() == 0
    assert "+history_marker = 12345" in (home / "history").read_text()
    assert (home / "history").stat().st_mode & 0o077 == 0

    t = terminal()
    t.prompt()
    t.child.send("\x1b[A")  # Up: the previous session's line comes back
    t.expect(r"history_marker = 12345")
    t.child.send("\r")
    t.prompt()
    t.child.send("\x12")  # Ctrl-R searches the history
    t.child.send("marker")
    t.expect(r"I-search backward: marker")
    t.child.send("\x07")  # Ctrl-G: leave the search
    t.child.send("\x03")
    t.prompt()
    t.run("history_marker + 1")
    t.expect(r"\n12346\n")
    t.prompt()
    assert t.finish() == 0


@pytest.mark.timeout(30)
def test_tab_completes_members_and_registry_paths(terminal) -> None:
    t = terminal()
    t.prompt()
    t.run("%registry set /configuration/mail/Server smtp.example.test")
    t.prompt()
    t.child.send("jcsOut.pr")
    t.child.send("\t")
    t.expect(r"println +Write the values and a newline")  # the menu, with each member's one-line doc
    t.child.send("\x03")
    t.prompt()
    t.child.send('registry.get("/configuration/ma')
    t.child.send("\t")  # -> /configuration/mail
    t.settle(0.3)
    t.child.send('/Server")\r')
    t.expect(r"'smtp\.example\.test'")
    t.prompt()
    assert t.finish() == 0


@pytest.mark.timeout(30)
def test_no_color_turns_colour_off(terminal) -> None:
    t = terminal(NO_COLOR="1")
    t.prompt()
    t.run("for x in [1]:")
    t.run("x/0")
    t.run("")
    t.expect(r"ZeroDivisionError")
    t.prompt()
    assert t.finish() == 0
    assert not re.search(r"\x1b\[[0-9;]*(3[0-7]|38;5;\d+|38;2;[\d;]+)m", t.raw)  # no foreground colour


@pytest.mark.timeout(30)
def test_dumb_terminal_gets_a_plain_prompt(terminal) -> None:
    t = terminal(term="dumb", NO_COLOR="1")
    t.prompt()
    t.run("for i in range(2):")
    t.expect(r"\.\.\.> ")
    t.run("  jcsOut.println(i)")
    t.expect(r"\.\.\.> ")
    t.run("")
    t.expect(r"0\n1\n")
    t.prompt()
    t.run("1/0")
    t.expect(r"ZeroDivisionError")
    t.prompt()
    assert t.finish() == 0
    assert CPR_REQUEST not in t.raw and "\x1b[" not in t.raw  # no cursor queries, no colour


# --- the parts, without a terminal ---------------------------------------------------------------


def test_statement_completeness_is_decided_by_compiling() -> None:
    assert is_complete("6*7")
    assert is_complete("1 +* 2")  # an error runs, so that it is reported
    assert not is_complete("for i in x:")
    assert not is_complete("for i in x:\n    y")  # a block ends with a blank line
    assert is_complete("for i in x:\n    y\n    ")
    assert not is_complete("x = (1,\n")
    assert not is_complete('s = """\n\n')  # a blank line inside a string does not end it
    assert is_complete("a = 1\nb = 2")  # a paste of several statements
    assert is_complete("%probe localhost --starttls")


def test_next_line_indentation() -> None:
    assert next_indent("for i in x:") == "    "
    assert next_indent("    return 1") == ""
    assert next_indent("if a:  # note: more") == "    "
    assert next_indent("f(a,") == "  "
    assert next_indent("f(") == "    "
    assert next_indent('s = "(" + t') == ""


def _prompt_once(keys: str, **kw: Any) -> str:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        session = build_prompt(history=None, completer=None, toolbar=None, input=pipe, output=DummyOutput(), **kw)
        return session.prompt()


@pytest.mark.timeout(10)
def test_enter_runs_only_complete_input_and_indents_the_next_line() -> None:
    assert _prompt_once("6*7\r") == "6*7"
    assert _prompt_once("for i in range(3):\rprint(i)\r\r") == "for i in range(3):\n    print(i)"
    assert _prompt_once("def f(x):\rif x:\rreturn 1\r\r") == "def f(x):\n    if x:\n        return 1"
    assert _prompt_once("x = (1,\r2)\r") == "x = (1,\n     2)"
    assert _prompt_once("\tx\r") == "    x"  # Tab in the indentation indents
    assert _prompt_once("for i in x:\ry\r\r", vi=True) == "for i in x:\n    y"  # the same in vi insert mode


@pytest.mark.timeout(10)
def test_vi_mode_edits_with_vi_keys() -> None:
    with create_pipe_input() as pipe:
        session = build_prompt(history=None, completer=None, toolbar=None, vi=True, input=pipe, output=DummyOutput())
        pipe.send_text("abc\x1b")  # Esc alone: prompt_toolkit waits a moment before it means "navigation mode"
        timer = threading.Timer(0.7, pipe.send_text, args=("0x\r",))  # to the line start, delete a character
        timer.start()
        try:
            assert session.prompt() == "bc"
        finally:
            timer.cancel()


def _complete(completer: JcshCompleter, text: str) -> dict[str, str]:
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    return {c.text: c.display_meta_text for c in found}


def _completer(registry: Registry | None = None, **kw: object) -> JcshCompleter:
    from jcsh.shell.repl import allowed_modules, described

    magics = Magics(_Shell(Context()))
    sources = Sources(
        namespace=lambda: ["jcsOut", "registry", "my_total"],
        members=described,
        modules=allowed_modules,
        magics=magics.summaries,
        magic_parser=magics.parser_for,
        **kw,
    )
    if registry is not None:
        sources.registry_children = lambda p: [(c.name, c.has_children, c.value) for c in registry.children(p)]
    return JcshCompleter(sources)


def test_completion_of_members_names_and_modules() -> None:
    c = _completer()
    members = _complete(c, "jcsOut.pr")
    assert set(members) == {"print", "printf", "println"}
    assert members["println"].startswith("Write the values and a newline")
    assert "my_total" in _complete(c, "x = my_")
    assert "math" in _complete(c, "import ma")
    assert "email.utils" in _complete(c, "from email.")
    assert "os" not in _complete(c, "import o")
    assert _complete(c, "# jcsOut.pr") == {}
    assert _complete(c, "my_total.") == {}  # user objects are never inspected


def test_completion_of_registry_paths(registry: Registry) -> None:
    registry.set("/configuration/mail/Server", "smtp.example.test")
    c = _completer(registry)
    assert _complete(c, 'registry.get("/configuration/ma') == {"mail": ""}
    assert _complete(c, "registry.get('/configuration/mail/S") == {"Server": "smtp.example.test"}
    assert _complete(c, "%registry get /configuration/m") == {"mail": ""}
    assert _complete(c, 'x = "/configuration/ma') == {}


def test_completion_of_percent_commands_and_options() -> None:
    c = _completer()
    assert "probe" in _complete(c, "%pro")
    assert "--starttls" in _complete(c, "%probe --st")
    assert {"get", "set", "ls", "rm"} <= set(_complete(c, "%registry "))
    assert "probe" in _complete(c, "%tls pr")
    assert _complete(c, "%probe --servername ") == {}  # an option's value is not guessed


class _Shell:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.session = None

    def run_source(self, source: str, filename: str, *, interactive: bool, args: list[str] | None = None) -> int:
        raise AssertionError("not used")

    def reset(self) -> None:
        raise AssertionError("not used")


def _magics(home: Path) -> tuple[Magics, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Magics(_Shell(Context(home_arg=str(home), out=out, err=err))), out, err


def test_percent_commands_parse_like_the_command_line(home: Path) -> None:
    magics, out, err = _magics(home)
    assert magics.run("%probe --no-such-option") == 2
    assert err.getvalue().startswith("usage: %probe")
    assert "unrecognized arguments: --no-such-option" in err.getvalue()
    assert magics.run("%registry set /configuration/shell/Timeout 12") == 0
    assert magics.run("%registry get /configuration/shell/Timeout") == 0
    assert out.getvalue().endswith("12\n")
    assert magics.run("%settings --json") == 0
    assert '"server"' in out.getvalue()
    assert magics.run("%registry --help") == 0
    assert magics.run('%registry get "/unclosed') == 2
    with pytest.raises(ExitRepl):
        magics.run("%exit")


def test_unknown_percent_command_suggests_the_closest(home: Path) -> None:
    magics, out, err = _magics(home)
    assert magics.run("%setings") == 2
    assert "did you mean %settings?" in err.getvalue()
    assert magics.run("%zzzz") == 2
    assert "%help lists them" in err.getvalue()
    assert magics.run("%help") == 0
    listed = out.getvalue()
    for name in (
        "%tls",
        "%probe",
        "%settings",
        "%doctor",
        "%credential",
        "%configure",
        "%testmail",
        "%registry",
        "%sandbox",
        "%reset",
        "%run",
        "%exit",
        "%help",
    ):
        assert re.search(rf"^{name}\s", listed, re.M), name


def test_history_keeps_no_literal_secrets(tmp_path: Path) -> None:
    assert not keep_in_history('credentials.add("smtp", "h", "default", secret="hunter2")')
    assert not keep_in_history("password = 'x'")
    assert keep_in_history("credentials.list()")
    path = tmp_path / "history"
    append_history(path, "for i in x:\n    y")
    append_history(path, 'x(password="p")')
    assert list(FileHistory(str(path)).load_history_strings()) == ["for i in x:\n    y"]


def test_the_prompt_does_not_wait_for_the_worker(home: Path) -> None:
    from jcsh.shell.repl import Repl

    ready = threading.Event()

    class StartingSession:  # a worker that takes its time to come up
        @property
        def layers(self) -> list[str]:
            ready.wait(10)
            return ["restrictedpython"]

    try:
        repl = Repl(Context(home_arg=str(home), out=io.StringIO(), err=io.StringIO()), StartingSession())
        started = time.monotonic()
        banner, toolbar = repl.banner(), repl.toolbar()
        assert time.monotonic() - started < 2
        assert "sandbox: " in banner and "mail not configured — try %configure" in banner
        assert "not configured" in "".join(text for _, text in toolbar)
    finally:
        ready.set()


@pytest.mark.timeout(30)
def test_values_are_echoed_cut_and_exit_leaves(home: Path) -> None:
    from jcsh.shell.repl import ECHO_LIMIT, Repl, open_session

    out, err = io.StringIO(), io.StringIO()
    ctx = Context(home_arg=str(home), out=out, err=err)
    session = open_session(ctx)
    try:
        repl = Repl(ctx, session)
        assert repl.execute("'x' * 10000") == 0
        echoed = out.getvalue().strip().splitlines()[-1]
        assert echoed.startswith("'xxx") and echoed.endswith("more characters)")
        assert len(echoed) < ECHO_LIMIT + 40
        assert repl.execute('jcsOut.print("no newline")') == 0
        assert out.getvalue().endswith("no newline\n")  # the prompt starts on a line of its own
        assert repl.execute("[n for n in range(3)]") == 0
        assert out.getvalue().endswith("[0, 1, 2]\n")
        assert repl.execute("undefined_name") == 1
        assert "NameError" in err.getvalue() and repl.last is not None and repl.last[0] == "failed"
        assert "undefined_name" not in repl.names() and "jcsOut" in repl.names()
        with pytest.raises(ExitRepl) as left:
            repl.execute("exit(3)")
        assert left.value.status == 3
    finally:
        session.close()


# --- help(obj), obj? and %history ----------------------------------------------------------------


class _NoWorker:
    """A session that fails the test if the REPL asks the worker anything: help is static."""

    layers = ()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("help asked the worker")

    def names(self) -> list[str]:
        raise AssertionError("help asked the worker")


def test_help_and_question_mark_show_the_preloaded_api_without_running_anything(home: Path) -> None:
    from jcsh.shell.repl import Repl

    out, err = io.StringIO(), io.StringIO()
    repl = Repl(Context(home_arg=str(home), out=out, err=err), _NoWorker())
    assert repl.execute("help(mail.send)") == 0
    shown = out.getvalue()
    assert shown.startswith("mail.send(to, subject=None, body=None, *, cc=None, bcc=None, from_addr=None, ")
    assert "Send one message; the result record, or a JcshError" in shown
    for asked in ("mail.send?", "  mail.send??  ", "?mail.send"):
        out.truncate(0)
        out.seek(0)
        assert repl.execute(asked) == 0
        assert out.getvalue() == shown, asked
    out.truncate(0)
    out.seek(0)
    assert repl.execute("registry?") == 0
    assert out.getvalue().startswith("registry: ") and "\n  registry.get(path, default=...)\n" in out.getvalue()
    assert repl.execute("jcsArgs?") == 0 and "a list of strings" in out.getvalue()
    assert repl.execute("help()") == 0 and "help(mail.send)" in out.getvalue()
    assert repl.execute("nosuch?") == 1
    assert err.getvalue().startswith("jcsh: no documentation for nosuch: help() knows the preloaded names (jcsOut")
    assert repl.execute("help(mail._link)") == 1  # private members are not documented
    assert repl.last is not None and repl.last[0] == "failed"


def test_help_request_forms() -> None:
    from jcsh.shell.statement import help_request

    assert help_request("help(mail.send)") == "mail.send"
    assert help_request(" help( tls ) ") == "tls"
    assert help_request("help()") == ""
    assert help_request("mail.send?") == help_request("?mail.send") == "mail.send"
    for code in ("help(1)", "help(mail.send, 2)", "x = help(mail)", "mail.send?.x", "a?b", "print('?')", "%help"):
        assert help_request(code) is None, code


def test_percent_help_documents_api_names_too(home: Path) -> None:
    magics, out, err = _magics(home)
    assert magics.run("%help tls.probe") == 0
    assert out.getvalue().startswith("tls.probe(host=None, port=None, *, mode=None")
    assert magics.run("%help nosuch.thing") == 2 and "unknown command %nosuch.thing" in err.getvalue()


def test_percent_history_lists_recent_lines(home: Path) -> None:
    magics, out, err = _magics(home)
    assert magics.run("%history") == 0 and out.getvalue() == "the history is empty\n"
    for n in range(1, 26):
        append_history(home / "history", f"line_{n} = {n}")
    append_history(home / "history", "for i in range(2):\n    print(i)")
    out.truncate(0)
    out.seek(0)
    assert magics.run("%history 3") == 0
    assert out.getvalue() == "24  line_24 = 24\n25  line_25 = 25\n26  for i in range(2):\n    ...>     print(i)\n"
    out.truncate(0)
    out.seek(0)
    assert magics.run("%history") == 0
    assert len(out.getvalue().splitlines()) == 21 and out.getvalue().startswith(" 7  line_7 = 7\n")
    out.truncate(0)
    out.seek(0)
    assert magics.run("%history 1 --json") == 0
    assert json.loads(out.getvalue()) == {
        "history": [{"number": 26, "text": "for i in range(2):\n    print(i)"}],
        "total": 26,
    }
    for bad, message in (("0", "N must be 1 or more, not 0"), ("x", "N must be a whole number of lines, not 'x'")):
        assert magics.run(f"%history {bad}") == 2
        assert message in err.getvalue()


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_question_mark_and_history_at_a_real_prompt(terminal) -> None:
    t = terminal()
    t.prompt()
    t.run("mail.send?")
    t.expect(r"mail\.send\(to, subject=None")
    t.expect(r"Send one message")
    t.prompt()
    t.run("marker_value = 7")
    t.prompt()
    t.run("%history 2")
    t.expect(r"\d+  marker_value = 7\s+\d+  %history 2")
    t.prompt()
    assert t.finish() == 0
