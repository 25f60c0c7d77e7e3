"""Run jcsh's command line in-process (fast) or as a real process, and capture what it prints."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jcsh.shell.cli import main

__all__ = ["Ran", "jcsh", "jcsh_process", "JCSH"]

JCSH = [sys.executable, "-m", "jcsh"]


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        import json

        return json.loads(self.out)


def jcsh(home: Path, *args: str, stdin: str = "") -> Ran:
    """Run `jcsh --home HOME ARGS...` in this process."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--home", str(home), *args])
    finally:
        sys.stdin = saved
    return Ran(code, out.getvalue(), err.getvalue())


def jcsh_process(home: Path, *args: str, stdin: str = "", timeout: float = 60, env: dict | None = None) -> Ran:
    """Run `python -m jcsh --home HOME ARGS...` as a separate process."""
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run(
        [*JCSH, "--home", str(home), *args], input=stdin, capture_output=True, text=True, timeout=timeout, env=full_env
    )
    return Ran(p.returncode, p.stdout, p.stderr)
