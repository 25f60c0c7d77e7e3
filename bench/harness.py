"""Timing, peers and the results table of the benchmark harness."""

from __future__ import annotations

import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.servers import MtaOptions

__all__ = [
    "ROOT",
    "VENV_BIN",
    "Case",
    "check_jcsh",
    "not_built",
    "ratio_row",
    "absolute_row",
    "unavailable_rows",
    "error_rows",
    "Row",
    "Side",
    "Unavailable",
    "CaseError",
    "find_peer",
    "jcsh_command",
    "alternate",
    "timed_process",
    "ms",
    "render_table",
    "environment",
    "Settings",
]

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
NOT_INSTALLED = "not installed"
NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class Case:
    """A benchmark: its --only name, its table title, (peer, target) per row, and the code."""

    name: str
    title: str
    columns: tuple[tuple[str, str], ...]  # shown as is when the case cannot run
    run: Callable[..., list[Row]]  # run(fixtures) -> rows


# what a jcsh command prints while its capability has not landed
_NOT_BUILT = (
    "not built yet",
    "invalid choice",
    "not available yet",
    "No module named 'runtime.",
    "No module named 'stdlib.",
    "cannot import name",
)


def not_built(text: str) -> bool:
    """Does this output say the capability has not landed yet?"""
    return any(marker in text for marker in _NOT_BUILT)


def check_jcsh(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    expect_out: bytes | None = None,
    input: bytes | None = None,
    expect_rc: int = 0,
) -> bytes:
    """Run a jcsh command once; Unavailable while it is not built, CaseError when it misbehaves."""
    proc = subprocess.run(
        argv,
        input=input,
        capture_output=True,
        env=env,
        timeout=120,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    text = (proc.stderr + proc.stdout).decode(errors="replace")
    if proc.returncode != expect_rc:
        last = text.strip().splitlines()[-1:] or [""]
        if not_built(text):
            raise Unavailable(f"`{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}`: {last[0]}")
        raise CaseError(f"`{Path(argv[0]).name} {' '.join(argv[1:3])}` exited {proc.returncode}: {last[0]}")
    if expect_out is not None and expect_out not in proc.stdout:
        raise CaseError(f"`{Path(argv[0]).name} {' '.join(argv[1:3])}` printed {proc.stdout[:200]!r}")
    return proc.stdout


class Unavailable(Exception):
    """The jcsh side of a case has not landed yet (module missing, command not built)."""


class CaseError(Exception):
    """A side ran but did not do its job (wrong output, bad exit code): the case fails."""


@dataclass(frozen=True)
class Settings:
    """How hard to measure: --quick takes few runs and smaller workloads."""

    quick: bool
    peer_path: str | None = None  # os.pathsep list searched instead of PATH + venv (tests hide peers)
    mta: MtaOptions | None = None  # mail cases talk to this real MTA instead of a sink process

    def runs(self, full: int, quick: int = 3) -> int:
        return quick if self.quick else full


@dataclass
class Side:
    """One side of a comparison: a name and a callable that does the work once and is timed."""

    name: str
    action: Callable[[], object] | None  # None: the peer is not installed
    samples: list[float] = field(default_factory=list)
    missing: str = NOT_INSTALLED

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


@dataclass
class Row:
    """One line of the table: jcsh against one peer (or an absolute target when peer is None)."""

    case: str
    jcsh: float | None  # seconds
    peer: str = "—"
    peer_median: float | None = None
    target: str = "report"  # "<= 0.35x", "< 2 ms" or "report"
    verdict: str = "report"  # pass | fail | report | skip
    note: str = ""  # why a cell is empty, or what was compared besides time
    jcsh_text: str | None = None  # replaces the formatted jcsh median (e.g. "not available")
    peer_text: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.jcsh is None or not self.peer_median:
            return None
        return self.jcsh / self.peer_median


def ratio_row(case: str, jcsh: Side, peer: Side, limit: float | None, note: str = "") -> Row:
    """Compare medians; a limit makes it pass/fail, no limit only reports the ratio."""
    row = Row(case, jcsh.median, peer.name, peer.median, note=note)
    row.target = f"<= {limit:g}x" if limit is not None else "report"
    if peer.action is None:
        row.peer_text = peer.missing
        row.verdict = "skip"
    elif limit is None:
        row.verdict = "report"
    else:
        ratio = row.ratio
        row.verdict = "pass" if ratio is not None and ratio <= limit else "fail"
    return row


def absolute_row(case: str, jcsh: Side, limit_s: float, target: str, note: str = "") -> Row:
    """A target in seconds with no peer (statement round trip, registry export)."""
    median = jcsh.median
    verdict = "pass" if median is not None and median < limit_s else "fail"
    return Row(case, median, target=target, verdict=verdict, note=note)


def unavailable_rows(case: str, reason: str, peers: Sequence[str] = ("—",), target: str = "") -> list[Row]:
    return [Row(case, None, peer=p, target=target, verdict="skip", jcsh_text=NOT_AVAILABLE, note=reason) for p in peers]


def error_rows(case: str, message: str, peers: Sequence[str] = ("—",), target: str = "") -> list[Row]:
    return [Row(case, None, peer=p, target=target, verdict="fail", jcsh_text="error", note=message) for p in peers]


def _is_shim(path: str) -> bool:
    # pyenv/asdf shims are bash launchers that pick another interpreter and add ~0.5 s: not the peer
    parts = Path(path).parts
    return "shims" in parts and any(p in (".pyenv", ".asdf") for p in parts)


def find_peer(name: str, settings: Settings) -> str | None:
    """The peer's executable: PATH first (launcher shims skipped), then the venv's bin; else None."""
    if settings.peer_path is not None:
        return shutil.which(name, path=settings.peer_path)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which(name, path=folder) if folder else None
        if found and not _is_shim(found):
            return found
    found = shutil.which(name, path=str(VENV_BIN))
    return found


def jcsh_command() -> list[str]:
    """How to start jcsh: the console script beside this interpreter, else `python -m jcsh`."""
    script = VENV_BIN / "jcsh"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "jcsh"]


def timed_process(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    expect_rc: int = 0,
    expect_out: bytes | None = None,
    timeout: float = 120,
    cwd: str | Path | None = None,
) -> Callable[[], float]:
    """A callable that runs argv once, checks it did its job, and returns its wall time."""

    def run() -> float:
        start = time.perf_counter()
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            env=env,
            timeout=timeout,
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != expect_rc or (expect_out is not None and expect_out not in proc.stdout):
            tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()[-3:]
            raise CaseError(f"{Path(argv[0]).name} exited {proc.returncode}: {' | '.join(tail)}")
        return elapsed

    return run


def alternate(sides: Sequence[Side], runs: int, warmup: int = 1) -> None:
    """Warm each side up, then run them in turn (A B A B ...), collecting wall times."""
    live = [s for s in sides if s.action is not None]
    for _ in range(warmup):
        for side in live:
            side.action()  # type: ignore[misc]
    for _ in range(runs):
        for side in live:
            # each action times itself, so set-up inside it (a fresh home) stays out of the sample
            side.samples.append(float(side.action()))  # type: ignore[misc, arg-type]


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 10:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def render_table(rows: Sequence[Row]) -> str:
    """The Markdown table every run prints, with notes numbered below it."""
    head = ["case", "jcsh median", "peer", "peer median", "ratio", "target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: list[str] = []
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "—"
        case = row.case
        if row.note:
            if row.note not in notes:
                notes.append(row.note)
            case += f" [{notes.index(row.note) + 1}]"
        cells = [
            case,
            row.jcsh_text or ms(row.jcsh),
            row.peer,
            row.peer_text or ms(row.peer_median),
            ratio,
            row.target or "—",
            row.verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(f"[{i}] {n}" for i, n in enumerate(notes, 1)) + "\n"
    return text


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, str]:
    """What the numbers were measured on."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "python": f"{platform.python_version()} ({sys.executable})",
        "openssl": ssl.OPENSSL_VERSION,
        "cpu": f"{_cpu_model()}, {os.cpu_count()} CPU(s)",
        "os": f"{platform.system()} {platform.release()}",
        # other work on the machine moves every figure: say how busy it was
        "load": "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg()),
    }
