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
    "probe16": ("jcsh.runtime.tls.scan", None),
    "roundtrip": ("jcsh.runtime.sandbox.client", None),
    "startup": ("jcsh.runtime.sandbox.client", "ipython -c"),
    "loop": ("jcsh.runtime.sandbox.client", None),
    "repl": ("jcsh.shell.repl jcsh.runtime.sandbox.client", "ptpython"),
    "batch": ("jcsh.runtime.sandbox.client", None),
    "testmail-auth": ("jcsh.shell.commands.testmail", "swaks"),
    "regget": ("jcsh.runtime.sandbox.client", None),
    "store": ("jcsh.runtime.store", None),
}
SLOW = {"repl", "batch", "probe", "probe16", "loop", "startup"}


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


def _bench(*args: str, timeout: float = 170) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--mta", "127.0.0.1:10025"], "--mta needs --mta-ca"),
        (["--mta", "no-port", "--mta-ca", "x"], "is not HOST:PORT"),
        (["--mta", "127.0.0.1:0", "--mta-ca", "x"], "is not HOST:PORT"),
        (["--mta-user", "bench"], "--mta-user needs --mta HOST:PORT"),
        (["--mta", "127.0.0.1:25", "--mta-ca", "/nonexistent/ca.pem"], "no such file"),
        (["--mta", "127.0.0.1:25", "--mta-ca", __file__, "--mta-auth-port", "587"], "go together"),
    ],
)
def test_bad_mta_options_are_refused_before_anything_runs(args: list[str], says: str) -> None:
    proc = _bench("--quick", "--only", "testmail", *args, timeout=30)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "bench:" not in proc.stderr  # no case started


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_mta_run_measures_the_mail_cases_again_and_puts_them_side_by_side(tmp_path: Path) -> None:
    from jcsh.runtime.sink import Sink, SinkConfig

    # any STARTTLS server with a certificate stands in for the MTA here (Postfix in bench/NOTES.md)
    with Sink(SinkConfig(port=0, mode="starttls", cert_dir=tmp_path / "cert")) as mta:
        proc = _bench(
            "--quick", "--only", "testmail", "--peer-path", str(tmp_path),
            "--mta", f"127.0.0.1:{mta.port}", "--mta-ca", str(mta.cert_path),
        )  # fmt: skip
        received = len(mta.messages)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"## Against a real MTA (127.0.0.1:{mta.port}" in proc.stdout
    assert received >= 4  # jcsh and the smtplib script, a warm-up and the timed runs, all through the "MTA"
    side = [line for line in proc.stdout.splitlines() if line.startswith("| `jcsh testmail` (STARTTLS) | swaks")]
    assert side and "not installed" in side[-1]
    assert any("(MTA)" in line for line in proc.stdout.splitlines())
