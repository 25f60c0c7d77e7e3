"""Run the jcsh benchmarks side by side with their peers and print (or record) the table.

    bench/run.py [--quick] [--only NAME[,NAME...]] [--peer-path PATH] [--list]

A full run writes bench/RESULTS.md; --quick (few iterations, smaller workloads) only prints.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import case_mail, case_process, case_sandbox, case_store, case_tls
from bench.fixtures import Fixtures
from bench.harness import (
    ROOT,
    Case,
    CaseError,
    Row,
    Settings,
    Unavailable,
    environment,
    error_rows,
    find_peer,
    render_table,
    unavailable_rows,
)

__all__ = ["CASES", "main", "run_cases"]

CASES: list[Case] = [
    *case_process.CASES[:2],
    *case_sandbox.CASES[:1],
    *case_mail.CASES,
    *case_tls.CASES,
    *case_process.CASES[2:],
    *case_sandbox.CASES[1:],
    *case_store.CASES,
]
PEERS = ("ipython", "ptpython", "swaks", "sslyze", "openssl")
RESULTS = ROOT / "bench" / "RESULTS.md"


def _rows_without_run(case: Case, reason: str, *, error: bool) -> list[Row]:
    peers = [p for p, _ in case.columns]
    rows = (error_rows if error else unavailable_rows)(case.title, reason, peers)
    for row, (_, target) in zip(rows, case.columns, strict=False):
        row.target = target
    return rows


def run_cases(cases: list[Case], settings: Settings, log=sys.stderr) -> list[Row]:
    """Every case in order; a case that cannot run gives rows saying why, never a crash."""
    fx = Fixtures(settings)
    rows: list[Row] = []
    try:
        for case in cases:
            start = time.monotonic()
            log.write(f"bench: {case.name} ...")
            log.flush()
            try:
                got = case.run(fx)
                status = "done"
            except Unavailable as e:
                got, status = _rows_without_run(case, str(e), error=False), "not available"
            except CaseError as e:
                got, status = _rows_without_run(case, str(e), error=True), "error"
            except Exception as e:  # a harness bug must show in the table, not hide the other cases
                detail = "".join(traceback.format_exception_only(type(e), e)).strip()
                got, status = _rows_without_run(case, f"harness: {detail}", error=True), "error"
                traceback.print_exc(file=log)
            log.write(f" {status} ({time.monotonic() - start:.1f} s)\n")
            rows.extend(got)
    finally:
        fx.close()
    return rows


def _peers(settings: Settings) -> str:
    lines = []
    for name in PEERS:
        lines.append(f"- {name}: {find_peer(name, settings) or 'not installed'}")
    return "\n".join(lines)


def _select(only: str | None) -> list[Case]:
    if not only:
        return list(CASES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"bench: unknown case {', '.join(unknown)}; cases: {', '.join(known)}")
    return [known[n] for n in names]


def _record(table: str, settings: Settings, elapsed: float) -> None:
    env = environment()
    text = [
        "# jcsh benchmark results",
        "",
        (
            "Written by `make bench` (`bench/run.py`); every ratio is jcsh's median over the peer's, "
            "measured in the same run, sides alternating (A B A B) after a warm-up."
        ),
        "",
        f"- date: {env['date']}",
        f"- Python: {env['python']}",
        f"- OpenSSL: {env['openssl']}",
        f"- CPU: {env['cpu']}",
        f"- OS: {env['os']}",
        f"- run took {elapsed:.0f} s",
        "",
        table.rstrip("\n"),
        "",
        "Peers used:",
        "",
        _peers(settings),
        "",
    ]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():  # hand-written findings (profiles, fixes) carried into every record
        text += [notes.read_text().rstrip("\n"), ""]
    RESULTS.write_text("\n".join(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, smaller workloads; print only")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run only these cases")
    parser.add_argument(
        "--peer-path", metavar="PATH", help="look for peers only in this PATH-like list (tests use it to hide them)"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.list:
        for case in CASES:
            targets = ", ".join(f"{p} {t}" for p, t in case.columns)
            print(f"{case.name:10} {case.title} ({targets})")
        return 0
    settings = Settings(quick=args.quick, peer_path=args.peer_path)
    cases = _select(args.only)
    start = time.monotonic()
    rows = run_cases(cases, settings)
    table = render_table(rows)
    print(table, end="")
    if not args.quick and not args.only:
        _record(table, settings, time.monotonic() - start)
        print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 1 if any(r.verdict == "fail" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
