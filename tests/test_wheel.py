"""The built wheel: one `jcsh` package with its examples, working beside other `runtime`/`shell` packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from jcsh.runtime import __version__
from jcsh.runtime.sandbox.limits import available_layers

ROOT = Path(__file__).resolve().parent.parent
_SKIP = shutil.ignore_patterns(".git", ".venv*", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis")

DUMMY = "raise ImportError('the dummy {name} package on PYTHONPATH was imported instead of jcsh.{name}')\n"


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=240, **kwargs)  # type: ignore[call-overload]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_installs_one_package_that_works_beside_a_dummy_runtime(tmp_path: Path) -> None:
    # Build from a copy, so that the build's own folders never land in (or come from) the worktree.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_SKIP)
    wheels = tmp_path / "wheels"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, source)
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("jcsh-*.whl")

    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # This interpreter's pip installs into the new venv (with the dependencies): no pip bootstrap there.
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile", wheel)
    assert installed.returncode == 0, installed.stderr

    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
        or sysconfig.get_paths()["purelib"]
    )
    for name in ("shell", "runtime", "stdlib"):
        assert not (site / name).exists(), f"{name} landed in site-packages"
        assert (site / "jcsh" / name / "__init__.py").is_file()
        assert not (site / "jcsh" / name).is_symlink()
    top_level = next(site.glob("jcsh-*.dist-info")) / "top_level.txt"
    assert top_level.read_text().split() == ["jcsh"]
    assert sorted(p.name for p in (site / "jcsh" / "examples").glob("*.jcs")) == sorted(
        p.name for p in (ROOT / "examples").glob("*.jcs")
    )

    # A folder on PYTHONPATH holding packages named runtime and shell (as PyPI's `shell` would).
    dummies = tmp_path / "dummies"
    for name in ("runtime", "shell", "stdlib"):
        (dummies / name).mkdir(parents=True)
        (dummies / name / "__init__.py").write_text(DUMMY.format(name=name))
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(dummies),
        "JCSH_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
    }
    env.pop("PYTHONSAFEPATH", None)
    jcsh = venv / "bin" / "jcsh"

    def ok(*args: str) -> str:
        ran = _run(jcsh, *args, cwd=work, env=env)
        assert ran.returncode == 0, f"jcsh {' '.join(args)}: {ran.stderr}"
        assert "dummy" not in ran.stderr
        return ran.stdout

    version = ok("--version")
    assert version.startswith(f"jcsh {__version__} (Python ")
    assert all(layer in version for layer in available_layers())  # the installed worker applies them all
    assert ok("-c", "import json\nprint(json.dumps({'sum': 6 * 7}), jcsArgs)") == '{"sum": 42} []\n'
    protocols = ok("tls", "protocols")
    assert protocols.startswith(("TLSv1.3", "TLSv1.2"))
    assert "send_testmail" in ok("examples")
    ok("examples", "tls_protocols")
    assert ok("run", "tls_protocols.jcs") == protocols  # the copied example runs, as the command says
    # The dummies are importable in that environment: it is jcsh that does not reach for them.
    dummy = _run(python, "-c", "import runtime", cwd=work, env=env)
    assert dummy.returncode == 1 and "the dummy runtime package" in dummy.stderr
    as_module = _run(python, "-m", "jcsh", "--version", cwd=work, env=env)
    assert as_module.returncode == 0 and as_module.stdout.startswith(f"jcsh {__version__}"), as_module.stderr
