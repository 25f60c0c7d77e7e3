"""Run the jcsh benchmarks side by side with their peers and print (or record) the table.

    bench/run.py [--quick] [--only NAME[,NAME...]] [--peer-path PATH] [--list]
                 [--mta HOST:PORT --mta-ca CA.pem [--mta-auth-port PORT --mta-user U --mta-password-file F]]

Every mail case talks to `jcsh sink` in its own process; with --mta the mail cases then run again
against that real MTA (bench/postfix-setup.sh sets up a local Postfix) and both tables are kept.
A full run writes bench/RESULTS.md; --quick (few iterations, smaller workloads) only prints.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    ms,
    render_table,
    unavailable_rows,
)
from bench.servers import MtaOptions, parse_host_port

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
MTA_CASES = ("testmail", "testmail-auth", "batch", "probe", "probe16")  # what --mta runs again
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


def _side_by_side(sink_rows: list[Row], mta_rows: list[Row]) -> str:
    """One line per MTA row with the sink run's ratio beside it."""
    by_key = {(r.case, r.peer): r for r in sink_rows}
    lines = [
        "| case | peer | sink: jcsh / peer | ratio | MTA: jcsh / peer | ratio | target | verdict sink / MTA |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cells(row: Row | None) -> list[str]:
        if row is None:
            return ["—", "—"]
        pair = f"{row.jcsh_text or ms(row.jcsh)} / {row.peer_text or ms(row.peer_median)}"
        return [pair, f"{row.ratio:.2f}x" if row.ratio is not None else "—"]

    for row in mta_rows:
        sink = by_key.get((row.case, row.peer))
        verdicts = f"{sink.verdict if sink else '—'} / {row.verdict}"
        lines.append(
            "| " + " | ".join([row.case, row.peer, *cells(sink), *cells(row), row.target or "—", verdicts]) + " |"
        )
    return "\n".join(lines) + "\n"


def _record(table: str, mta_part: str, settings: Settings, elapsed: float) -> None:
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
        f"- load average (1, 5, 15 min) when the run ended: {env['load']}",
        f"- run took {elapsed:.0f} s",
        "",
        "## Against the bench's sink (`jcsh sink`, its own process)",
        "",
        table.rstrip("\n"),
        "",
        mta_part.rstrip("\n") or "No MTA run (`bench/run.py --mta ...`, see NOTES below).",
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


def _mta_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> MtaOptions | None:
    if args.mta is None:
        extra = [o for o in ("mta_ca", "mta_auth_port", "mta_user", "mta_password_file") if getattr(args, o)]
        if extra:
            parser.error(f"--{extra[0].replace('_', '-')} needs --mta HOST:PORT")
        return None
    try:
        host, port = parse_host_port(args.mta, "--mta")
    except ValueError as e:
        parser.error(str(e))
    if not args.mta_ca:
        parser.error("--mta needs --mta-ca CA.pem: every side verifies the MTA's certificate")
    for option, value in (("--mta-ca", args.mta_ca), ("--mta-password-file", args.mta_password_file)):
        if value is not None and not Path(value).is_file():
            parser.error(f"{option} {value}: no such file")
    auth = (args.mta_auth_port, args.mta_user, args.mta_password_file)
    if any(a is not None for a in auth) and not all(a is not None for a in auth):
        parser.error("--mta-auth-port, --mta-user and --mta-password-file go together")
    auth_port = None
    if args.mta_auth_port is not None:
        try:
            _, auth_port = parse_host_port(f"{host}:{args.mta_auth_port}", "--mta-auth-port")
        except ValueError as e:
            parser.error(str(e))
    return MtaOptions(
        host,
        port,
        Path(args.mta_ca).absolute(),
        auth_port,
        args.mta_user,
        Path(args.mta_password_file).absolute() if args.mta_password_file else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, smaller workloads; print only")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run only these cases")
    parser.add_argument(
        "--peer-path", metavar="PATH", help="look for peers only in this PATH-like list (tests use it to hide them)"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--mta", metavar="HOST:PORT", help="also run the mail cases against this MTA (STARTTLS)")
    parser.add_argument(
        "--mta-ca", metavar="CA.pem", help="verify the MTA's certificate with this CA (or the certificate itself)"
    )
    parser.add_argument("--mta-auth-port", metavar="PORT", help="the MTA's port that takes AUTH (after STARTTLS)")
    parser.add_argument("--mta-user", metavar="USER", help="the login on --mta-auth-port")
    parser.add_argument("--mta-password-file", metavar="FILE", help="a file holding the password of --mta-user")
    args = parser.parse_args(argv)
    mta = _mta_options(args, parser)
    if args.list:
        for case in CASES:
            targets = ", ".join(f"{p} {t}" for p, t in case.columns)
            print(f"{case.name:14} {case.title} ({targets})")
        return 0
    settings = Settings(quick=args.quick, peer_path=args.peer_path)
    cases = _select(args.only)
    start = time.monotonic()
    rows = run_cases(cases, settings)
    table = render_table(rows)
    print(table, end="")
    mta_part = ""
    if mta is not None:
        mta_cases = [c for c in cases if c.name in MTA_CASES]
        mta_rows = run_cases(mta_cases, dataclasses.replace(settings, mta=mta))
        sink_rows, rows = rows, rows + mta_rows
        mta_part = "\n".join(
            [
                f"## Against a real MTA ({args.mta}, STARTTLS; AUTH on port {mta.auth_port or '—'})",
                "",
                render_table(mta_rows).rstrip("\n"),
                "",
                "Side by side (sink run above, MTA run just before):",
                "",
                _side_by_side(sink_rows, mta_rows),
            ]
        )
        print("\n" + mta_part, end="")
    if not args.quick and not args.only:
        _record(table, mta_part, settings, time.monotonic() - start)
        print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 1 if any(r.verdict == "fail" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
