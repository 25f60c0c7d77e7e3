"""`jcsh completion bash|zsh|fish`: scripts a shell loads, completing commands, options and registry paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jcsh.runtime.registry import Registry
from jcsh.shell.commands import specs
from tests.support.cli import jcsh

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash")

# Fill COMP_WORDS as bash does for a line, call the function the script registered, print the candidates.
_COMPLETE = """
source "$1"
shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
fn=$(complete -p jcsh | sed -E 's/.*-F ([^ ]+) .*/\\1/')
"$fn" jcsh "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("completion-home")
    ran = jcsh(home, "completion", "bash")
    assert ran.code == 0, ran.err
    path = home / "jcsh.bash"
    path.write_text(ran.out)
    return path


def _complete(script: Path, home: Path, *words: str) -> list[str]:
    assert BASH is not None
    # `jcsh` on PATH is this interpreter's console script, as the installed completion would find it.
    env = {**os.environ, "JCSH_HOME": str(home), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ran = subprocess.run(
        [BASH, "--norc", "-c", _COMPLETE, "complete", str(script), "jcsh", *words],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.split()


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_bash_loads_the_script(bash_script: Path) -> None:
    ran = subprocess.run([BASH or "bash", "-n", str(bash_script)], capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    loaded = subprocess.run(
        [BASH or "bash", "--norc", "-c", f'source "{bash_script}" && complete -p jcsh'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert loaded.returncode == 0 and loaded.stdout.startswith("complete "), loaded.stderr


@pytest.mark.skipif(BASH is None, reason="needs bash")
@pytest.mark.timeout(60)
def test_bash_completes_commands_options_and_registry_paths(bash_script: Path, home: Path, registry: Registry) -> None:
    assert set(_complete(bash_script, home, "")) >= {name.split()[0] for name in specs()}
    assert _complete(bash_script, home, "te") == ["testmail"]
    assert _complete(bash_script, home, "tls", "") == ["protocols", "probe"]
    assert {"--starttls", "--implicit", "--servername", "--timeout"} <= set(
        _complete(bash_script, home, "tls", "probe", "--")
    )
    assert _complete(bash_script, home, "completion", "") == ["bash", "zsh", "fish"]
    registry.set("/configuration/mail/Server", "smtp.example.test")
    registry.set("/configuration/mail/Port", "587")
    registry.set("/configuration/jcs/Other", "x")
    for action in ("get", "set", "ls", "rm"):
        got = _complete(bash_script, home, "registry", action, "/configuration/mail/")
        assert got == ["/configuration/mail/Port", "/configuration/mail/Server"], action


def test_zsh_and_fish_scripts_name_every_command_and_ask_for_paths(home: Path) -> None:
    for shell in ("zsh", "fish"):
        ran = jcsh(home, "completion", shell)
        assert ran.code == 0, ran.err
        for name in specs():
            assert name.split()[-1] in ran.out, (shell, name)
        assert ran.out.count("jcsh completion --registry-paths") >= 4, shell
        assert "--starttls" in ran.out or "starttls" in ran.out
    assert jcsh(home, "completion", "zsh").out.startswith("#compdef jcsh")


def test_registry_paths_for_the_script(home: Path, tmp_path: Path, registry: Registry) -> None:
    registry.set("/a/b", "1")
    assert jcsh(home, "completion", "--registry-paths").out == "/a\n/a/b\n"
    fresh = tmp_path / "not-yet"
    ran = jcsh(fresh, "completion", "--registry-paths")
    assert ran.code == 0 and ran.out == "" and not fresh.exists()  # completing creates no home


def test_bad_shell_is_a_usage_error(home: Path) -> None:
    ran = jcsh(home, "completion", "tcsh")
    assert ran.code == 2 and "invalid choice: 'tcsh'" in ran.err and ran.out == ""
    ran = jcsh(home, "completion")
    assert ran.code == 2 and ran.err == "jcsh: name the shell: jcsh completion bash|zsh|fish\n"
    assert "registry-paths" not in jcsh(home, "completion", "--help").out  # the script's own question


def test_start_up_does_not_load_the_completion_generator() -> None:
    code = "import sys; from jcsh.shell.cli import build_parser; build_parser(); print('shtab' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr
