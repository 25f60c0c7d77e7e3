"""The README's first session runs as pasted: bash, jcsh on PATH, a fresh home, nothing else."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin folder, where the jcsh console script is


def readme_block(heading: str) -> str:
    """The first ```sh block after `heading` in README.md, verbatim."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(heading) + r"\n.*?```sh\n(.*?)```", text, re.S)
    assert found, f"no sh block after {heading!r}"
    return found.group(1)


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.skipif(shutil.which("bash") is None or not (BIN / "jcsh").exists(), reason="needs bash and jcsh")
def test_the_first_session_runs_as_pasted_on_a_fresh_machine(tmp_path: Path) -> None:
    block = readme_block("## A first session, against a local test server")
    home = tmp_path / "user"
    home.mkdir()
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),  # the default jcsh home: ~/.local/share/jcsh of this fresh user
        "LANG": "C.UTF-8",
    }
    ran = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    out = ran.stdout
    # The sink printed its trust lines, and the block ran the same ones (certificate path and all).
    cert = home / ".local" / "share" / "jcsh" / "sink" / "sink.pem"
    assert f"--virtual-user jcsh-sink --certificate {cert} --replace" in out
    assert "stored X509_TrustedCertificate 127.0.0.1 jcsh-sink" in out
    assert re.search(r"^  trust     trusted$", out, re.M)  # the probe trusts the sink
    assert re.search(r"^status: +sent$", out, re.M) and re.search(r"^trust: +verified", out, re.M)
    assert out.rstrip().endswith("stopped; 1 message(s) received")


def test_the_real_server_recipe_follows_the_first_session() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = text.index("## A first session, against a local test server")
    real = text.index("### Then: send through your real server")
    assert first < real < text.index("## The home folder")
    recipe = readme_block("### Then: send through your real server")
    assert "--quit-after auth" in recipe and "--certificate" in recipe and "--real-user" in recipe
    assert "password" not in recipe.lower().replace("--password-stdin", "")  # prompted, never an argument
