"""RedwoodScript (Java) pasted into jcsh: the one-line hint, and the documented TLS snippet ported."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from jcsh.shell.context import Context
from jcsh.shell.java import HINT, TLS_PROTOCOLS_PYTHON, java_hint, looks_like_java
from tests.support.cli import jcsh_process

ROOT = Path(__file__).resolve().parent.parent

# As the product's mail module documentation prints it (Scripting > Shell, "Using TLS").
DOCUMENTED_SNIPPET = "\n".join(
    [
        "import javax.net.ssl.SSLContext;",
        "{",
        '  String protocols = String.join(" ", ',  # the trailing space is the documentation's
        "    SSLContext",
        "        .getDefault()",
        "        .getSupportedSSLParameters()",
        "        .getProtocols()",
        ");",
        "  jcsOut.println(protocols);",
        "}",
        "",
    ]
)

JAVA = [
    'String server = "smtp.example.test";\njcsOut.println(server);',
    "import java.util.List;\nList<String> names = new ArrayList<>();",
    "for (int i = 0; i < 3; i++) {\n  jcsOut.println(i);\n}",
    'jcsOut.println("a");\nSystem.out.println("b");',
    "int port = 587;\nif (port == 587) {\n  jcsOut.println(port);\n}",
]
PYTHON_ERRORS = [
    "print(1",
    "def f(:\n    pass",
    "x = {\n  'a': 1,\n  'b' 2\n}",
    "for i in range(3)\n    print(i)",
    "if x = 1:\n    pass",
]


@pytest.mark.parametrize("source", JAVA)
def test_java_is_recognised(source: str) -> None:
    assert looks_like_java(source)
    assert java_hint(source, 'File "<string>", line 1\nSyntaxError: invalid syntax') == (HINT, None)


@pytest.mark.parametrize("source", PYTHON_ERRORS)
def test_python_with_a_syntax_error_gets_no_hint(source: str) -> None:
    assert java_hint(source, "SyntaxError: invalid syntax") is None


def test_only_compile_failures_get_a_hint() -> None:
    java = JAVA[0]
    assert java_hint(java, "Traceback ...\nNameError: name 'x' is not defined") is None
    assert java_hint(java, None) is None


@pytest.mark.timeout(30)
def test_the_documented_snippet_exits_1_and_prints_its_python_form(home: Path, tmp_path: Path) -> None:
    snippet = tmp_path / "protocols.java"
    snippet.write_text(DOCUMENTED_SNIPPET)
    ran = jcsh_process(home, "run", str(snippet))
    assert ran.code == 1
    assert ran.err.count("\n") == 1 and "TLS-protocols snippet in RedwoodScript (Java)" in ran.err
    assert "Traceback" not in ran.err and "SyntaxError" not in ran.err
    assert ran.out == TLS_PROTOCOLS_PYTHON
    # What it printed runs, and says what `jcsh tls protocols` says.
    ported = tmp_path / "protocols.jcs"
    ported.write_text(ran.out)
    script, command = jcsh_process(home, "run", str(ported)), jcsh_process(home, "tls", "protocols")
    assert script.code == command.code == 0 and script.out == command.out
    as_json = jcsh_process(home, "--json", "-c", DOCUMENTED_SNIPPET)
    assert as_json.code == 1
    doc = as_json.json
    assert doc["ok"] is False and doc["python"] == TLS_PROTOCOLS_PYTHON and "RedwoodScript" in doc["hint"]


@pytest.mark.timeout(30)
def test_other_java_gets_the_syntax_error_and_one_hint_line(home: Path) -> None:
    ran = jcsh_process(home, "-c", JAVA[0])
    assert ran.code == 1 and ran.out == ""
    lines = ran.err.splitlines()
    assert lines[-2] == "SyntaxError: invalid syntax" and lines[-1] == HINT
    python = jcsh_process(home, "-c", PYTHON_ERRORS[0])
    assert python.code == 1 and "hint:" not in python.err


def test_the_python_form_is_the_shipped_example() -> None:
    example = (ROOT / "examples" / "tls_protocols.jcs").read_text()
    code = "".join(line for line in example.splitlines(keepends=True) if not line.startswith("#"))
    assert code == TLS_PROTOCOLS_PYTHON


@pytest.mark.timeout(30)
def test_the_repl_gives_the_hint_too(home: Path) -> None:
    from jcsh.shell.repl import Repl, open_session

    out, err = io.StringIO(), io.StringIO()
    ctx = Context(home_arg=str(home), out=out, err=err)
    session = open_session(ctx)
    try:
        repl = Repl(ctx, session)
        assert repl.execute('String s = "x";') == 1
        assert err.getvalue().rstrip().endswith(HINT)
        assert repl.execute(DOCUMENTED_SNIPPET.strip()) == 1
        assert out.getvalue().endswith(TLS_PROTOCOLS_PYTHON)
    finally:
        session.close()
