"""`jcsh -c`, `jcsh run FILE [ARG...]`, and stdin as a script: exit statuses, output, the timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from jcsh.runtime.registry import open_registry
from tests.support.cli import jcsh, jcsh_process

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("code", "status", "out", "err"),
    [
        ("jcsOut.println(1)", 0, "1\n", ""),
        ("print('a'); jcsErr.println('b')", 0, "a\n", "b\n"),
        ("1/0", 1, "", "ZeroDivisionError: division by zero\n"),
        ("import os", 1, "", "import of 'os' is not allowed"),
        ("raise SystemExit(7)", 7, "", ""),
        ("exit('stopped: bad input')", 1, "", "stopped: bad input\n"),
        ("print('x' * (2 * 2**20))", 4, None, "output limit reached"),
        ("x = (", 1, "", "SyntaxError"),
    ],
)
def test_dash_c(home: Path, code: str, status: int, out: str | None, err: str) -> None:
    ran = jcsh(home, "-c", code)
    assert ran.code == status, ran
    if out is not None:
        assert ran.out == out
    assert err in ran.err


def test_timeout_option_and_registry_key(home: Path) -> None:
    ran = jcsh(home, "--timeout", "0.5", "-c", "while True:\n    pass")
    assert ran.code == 4 and "timed out after 0.5 s" in ran.err
    registry = open_registry(home)
    registry.set("/configuration/shell/Timeout", "0.5")
    registry.close()
    ran = jcsh(home, "-c", "import time\ntime.sleep(5)")
    assert ran.code == 4 and "timed out after 0.5 s" in ran.err
    ran = jcsh(home, "--timeout", "9", "-c", "import time\ntime.sleep(0.6)")
    assert ran.code == 0


def test_bad_timeout_in_the_registry_is_named(home: Path) -> None:
    registry = open_registry(home)
    registry.set("/configuration/shell/Timeout", "soon")
    registry.close()
    ran = jcsh(home, "-c", "1")
    assert ran.code == 1 and "/configuration/shell/Timeout is 'soon'" in ran.err


def test_json_is_one_document(home: Path) -> None:
    ran = jcsh(home, "--json", "-c", "print('hi')\njcsErr.println('e')\n1/0")
    assert ran.code == 1
    data = ran.json
    assert data["stdout"] == "hi\n" and data["stderr"] == "e\n" and data["exit_code"] == 1
    assert data["error"]["kind"] == "failed" and data["limit"] is None
    assert data["error"]["message"].endswith("ZeroDivisionError: division by zero")


def test_json_error_of_a_timeout_has_the_one_timeout_kind(home: Path) -> None:
    ran = jcsh(home, "--json", "--timeout", "0.5", "-c", "while True: pass")
    assert ran.code == 4
    assert ran.json["error"]["kind"] == "timeout" and ran.json["limit"] == "timeout"
    assert ran.json["error"]["message"].startswith("timed out after 0.5 s")
    ok = jcsh(home, "--json", "-c", "print(1)").json
    assert ok["ok"] is True and ok["error"] is None


def test_run_file_with_args(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "args.jcs"
    script.write_text("print(jcsArgs)\nif len(jcsArgs) > 2:\n    raise ValueError(jcsArgs[2])\n")
    ran = jcsh(home, "run", str(script), "a", "--flag")
    assert (ran.code, ran.out) == (0, "['a', '--flag']\n")
    ran = jcsh(home, "run", str(script), "a", "b", "boom")
    assert ran.code == 1
    assert f'File "{script}", line 3, in <module>' in ran.err and "ValueError: boom" in ran.err
    ran = jcsh(home, "run", "-", "x", stdin="print('stdin', jcsArgs)")
    assert ran.out == "stdin ['x']\n"
    ran = jcsh(home, "run", str(tmp_path / "missing.jcs"))
    assert ran.code == 2 and "cannot read" in ran.err


def test_registry_tree_example(home: Path) -> None:
    registry = open_registry(home)
    registry.set("/configuration/mail/Server", "smtp.example.test")
    registry.set("/configuration/mail/smtp.example.test/Port", "587")
    registry.close()
    ran = jcsh(home, "run", str(EXAMPLES / "registry_tree.jcs"), "/configuration")
    assert ran.code == 0, ran.err
    assert ran.out == (
        "/configuration\n  mail\n    Server = smtp.example.test\n    smtp.example.test\n      Port = 587\n"
    )


@pytest.mark.timeout(60)
def test_stdin_that_is_not_a_terminal_runs_as_a_script(home: Path) -> None:
    ran = jcsh_process(home, stdin="x = 6\njcsOut.println(x * 7)\n")
    assert (ran.code, ran.out) == (0, "42\n")
    ran = jcsh_process(home, stdin="raise SystemExit(3)\n")
    assert ran.code == 3
