"""Every --help ends with Examples, Exit codes and Environment; the README's exit codes are the table's."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jcsh.runtime.errors import EXIT_MEANING, ExitStatus
from jcsh.shell.cli import build_parser
from jcsh.shell.commands import specs
from jcsh.shell.epilog import EXAMPLES
from tests.support.cli import jcsh

ROOT = Path(__file__).resolve().parent.parent


def _every_command_line() -> list[list[str]]:
    """The words of every parser: jcsh, each command, each group (`tls`), each action (`registry get`)."""
    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        found.append(words)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*words, name])

    walk(build_parser(), [])
    return found


COMMAND_LINES = _every_command_line()


def _sections(text: str) -> dict[str, str]:
    """Title -> body of the trailing sections ("Examples:" at the start of a line, and the rest)."""
    parts = re.split(r"^(Examples|Exit codes|Environment):\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_the_walk_finds_every_command() -> None:
    lines = {" ".join(words) for words in COMMAND_LINES}
    assert set(specs()) <= lines
    assert {"", "tls", "mail", "registry get", "credential protocol add"} <= lines


@pytest.mark.parametrize("words", COMMAND_LINES, ids=lambda w: " ".join(w) or "jcsh")
def test_every_help_ends_with_examples_exit_codes_and_environment(home: Path, words: list[str]) -> None:
    ran = jcsh(home, *words, "--help")
    assert ran.code == 0, ran.err
    tail = ran.out[ran.out.index("\nExamples:\n") :]
    assert re.findall(r"^(Examples|Exit codes|Environment):$", tail, flags=re.M) == [
        "Examples",
        "Exit codes",
        "Environment",
    ]
    sections = _sections(ran.out)
    assert re.search(r"^  (jcsh|printf|eval)\b", sections["Examples"], flags=re.M), sections["Examples"]
    assert "JCSH_HOME" in sections["Environment"]
    # Exit codes come from the one table: each line "  CODE  meaning" starts as the table says.
    codes = re.findall(r"^  (\d+)\s+(.+)$", sections["Exit codes"], flags=re.M)
    assert codes and {"0", "2"} <= {c for c, _ in codes}
    for code, first_line in codes:
        assert EXIT_MEANING[ExitStatus(int(code))].startswith(first_line.strip())


def test_every_command_has_its_own_examples() -> None:
    assert set(specs()) <= set(EXAMPLES)
    for name in specs():
        assert all(line.startswith(("jcsh ", "printf ", "eval ")) for line, _ in EXAMPLES[name]), name


def test_network_and_script_commands_name_their_environment(home: Path) -> None:
    assert "JCSH_NAMESERVERS" in _sections(jcsh(home, "configure", "--help").out)["Environment"]
    assert "NO_COLOR" in _sections(jcsh(home, "--help").out)["Environment"]
    probe_codes = _sections(jcsh(home, "tls", "probe", "--help").out)["Exit codes"]
    assert re.search(r"^  3\s+connection", probe_codes, flags=re.M)


def test_the_repl_help_names_the_percent_command(home: Path) -> None:
    from jcsh.shell.magics import Magics

    class Shell:
        ctx = None

    parser = Magics(Shell()).parser_for("probe")
    assert parser is not None
    text = parser.format_help()
    assert "\n  %probe smtp.example.test\n" in text and "Exit codes:" in text


def test_help_as_a_process_builds_its_epilog_only_then() -> None:
    # The sections are built when --help prints, so an ordinary start never imports textwrap for them.
    code = (
        "import sys; from jcsh.shell.cli import build_parser; build_parser('tls'); "
        "print('jcsh.shell.epilog' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "jcsh", "tls", "probe", "--help"], capture_output=True, text=True, timeout=30
    )
    assert ran.returncode == 0 and "Exit codes:" in ran.stdout and "Traceback" not in ran.stderr


def test_readme_exit_codes_are_the_table() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| code | meaning |") :]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", table[: table.index("\n\n")], flags=re.M)
    assert [(int(code), meaning) for code, meaning in rows] == [
        (int(status), EXIT_MEANING[status]) for status in ExitStatus
    ]
    assert set(EXIT_MEANING) == set(ExitStatus)
