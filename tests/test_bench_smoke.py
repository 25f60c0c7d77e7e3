"""The benchmark harness still runs: `bench/run.py --quick --only CASE` prints its table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import Row, Side, absolute_row, ratio_row, render_table

ROOT = Path(__file__).resolve().parent.parent
HEADER = ["case", "jcsh median", "peer", "peer median", "ratio", "target", "verdict"]
VERDICTS = {"pass", "fail", "skip", "report"}

# case -> (the modules whose presence means the jcsh side exists, a peer the run hides)
CASES = {
    "registry": ("jcsh.runtime.registry", None),
    "testmail": ("jcsh.shell.commands.testmail", "swaks"),
    "probe": ("jcsh.runtime.tls.probe", "sslyze"),
    "roundtrip": ("jcsh.runtime.sandbox.client", None),
    "startup": ("jcsh.runtime.sandbox.client", "ipython -c"),
    "loop": ("jcsh.runtime.sandbox.client", None),
    "repl": ("jcsh.shell.repl jcsh.runtime.sandbox.client", "ptpython"),
    "batch": ("jcsh.runtime.sandbox.client", None),
    "store": ("jcsh.runtime.store", None),
}
SLOW = {"repl", "batch", "probe", "loop", "startup"}


def _landed(modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules.split())
    except ModuleNotFoundError:
        return False


def run_bench(case: str, peer_path: Path) -> list[dict[str, str]]:
    """Run one case quickly with every peer hidden; the table's rows as dicts."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", case, "--peer-path", str(peer_path)],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: some target missed, which timing on CI may do
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert len(lines) >= 3, proc.stdout
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == HEADER
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=False)) for line in lines[2:]]


@pytest.mark.parametrize("case", [pytest.param(c, marks=[pytest.mark.slow] if c in SLOW else []) for c in CASES])
@pytest.mark.timeout(180)
def test_quick_run_prints_a_table_with_verdicts(case: str, tmp_path: Path) -> None:
    module, hidden = CASES[case]
    rows = run_bench(case, tmp_path)  # an empty folder as the only place to look for peers
    assert rows
    for row in rows:
        assert row["verdict"] in VERDICTS, row
        assert row["jcsh median"] != "error", row
        if row["jcsh median"] == "not available":  # only while the capability has not landed
            assert row["verdict"] == "skip" and not _landed(module), row
            continue
        assert row["jcsh median"].endswith(("ms", " s", " MiB")), row
        if row["peer"] == hidden:
            assert row["peer median"] == "not installed" and row["verdict"] == "skip", row
        elif row["peer"] == "—":
            assert row["verdict"] in {"pass", "fail"}, row
    if hidden and _landed(module):
        assert any(r["peer"] == hidden for r in rows)


def _side(name: str, *samples: float) -> Side:
    return Side(name, lambda: 0.0, list(samples))


def test_ratio_verdict_is_the_median_against_the_limit() -> None:
    jcsh = _side("jcsh", 0.10, 0.35, 0.30)  # median 0.30
    peer = _side("ipython", 0.90, 1.00, 2.00)  # median 1.00
    assert ratio_row("c", jcsh, peer, 0.35).verdict == "pass"
    assert ratio_row("c", jcsh, peer, 0.25).verdict == "fail"
    assert ratio_row("c", jcsh, peer, None).verdict == "report"
    missing = ratio_row("c", jcsh, Side("swaks", None), 1.5)
    assert (missing.verdict, missing.peer_text) == ("skip", "not installed")


def test_absolute_target_and_table_notes() -> None:
    fast = absolute_row("round trip", _side("jcsh", 0.001, 0.0015, 0.004), 0.002, "< 2 ms", note="why")
    slow = absolute_row("round trip", _side("jcsh", 0.003), 0.002, "< 2 ms", note="why")
    assert (fast.verdict, slow.verdict) == ("pass", "fail")
    text = render_table([fast, slow, Row("other", None, jcsh_text="not available", verdict="skip")])
    assert "| round trip [1] | 1.50 ms | — | — | — | < 2 ms | pass |" in text
    assert "| round trip [1] | 3.00 ms |" in text  # one note, numbered once
    assert text.count("[1] why") == 1
    assert "| other | not available |" in text
