"""The store at scale: `registry import` and `registry export` of 1,000,000 entries, wall time and peak
memory, against release 0.1.0's registry code run on the same document in the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.fixtures import Fixtures
from bench.harness import ROOT, Case, CaseError, Row, jcsh_command

__all__ = ["CASES"]

ENTRIES = 1_000_000
QUICK_ENTRIES = 100_000
GROUP = 1000  # entries per group: /bench/gNNNN/kNNNNNN
EXPORT_MEMORY_MIB = 100.0  # issue 11: export under 100 MiB
RELEASE = "72fac29"  # release 0.1.0's store, the "today" of issue 11
_MIB = 1024.0

# Release 0.1.0's `registry import FILE` and `registry export PATH`, as its command line did them
# (read, json.loads, import_; export_json, write), with its own runtime/registry.py from git.
_OLD = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("registry_0_1_0", sys.argv[1])
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
registry = old.open_registry(Path(sys.argv[3]))
if sys.argv[2] == "import":
    with open(sys.argv[4], encoding="utf-8-sig") as f:
        registry.import_(json.loads(f.read()))
else:
    sys.stdout.write(registry.export_json(sys.argv[4]))
    sys.stdout.flush()
"""


def _write_document(path: Path, entries: int) -> None:
    """The import document, written as it goes (the harness must not hold a million dicts)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"path": "/bench", "value": null, "children": {')
        for g in range(0, entries, GROUP):
            leaves = ", ".join(
                f'"k{i:07d}": {{"value": {json.dumps(f"value {i} of the bench")}, "children": {{}}}}'
                for i in range(g, min(g + GROUP, entries))
            )
            f.write(("" if g == 0 else ", ") + f'"g{g // GROUP:04d}": {{"value": null, "children": {{{leaves}}}}}')
        f.write("}}")


def _measure(argv: list[str], env: dict[str, str], out: Path | None = None) -> tuple[float, float]:
    """(seconds, peak resident MiB) of one whole process; CaseError when it fails."""
    start = time.perf_counter()
    with open(out or os.devnull, "wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise CaseError(f"`{' '.join(Path(a).name for a in argv[:4])}` failed: {err.splitlines()[-1:] or status}")
    return elapsed, usage.ru_maxrss / 1024.0  # Linux reports KiB


def _old_registry(fx: Fixtures) -> Path | None:
    """0.1.0's runtime/registry.py, from this checkout's history; None when git cannot give it."""
    target = fx.scratch / "registry_0_1_0.py"
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{RELEASE}:runtime/registry.py"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    target.write_bytes(source)
    return target


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} MiB"


def store(fx: Fixtures) -> list[Row]:
    entries = QUICK_ENTRIES if fx.settings.quick else ENTRIES
    doc = fx.scratch / "registry-big.json"
    _write_document(doc, entries)
    jcsh = jcsh_command()
    home = fx.folder("store-home")
    env = fx.env(home)
    imp = _measure([*jcsh, "registry", "import", str(doc)], env)
    exported = fx.scratch / "export-jcsh.json"
    exp = _measure([*jcsh, "registry", "export", "/bench"], env, exported)
    if exported.read_bytes().count(b'"value": "value ') != entries:
        raise CaseError(f"the export of /bench does not hold {entries:,} values")
    old_imp = old_exp = None
    old = _old_registry(fx)
    compared = f"release 0.1.0's registry.py ({RELEASE}) is not in this checkout's git history"
    if old is not None and fx.settings.quick:
        compared = "release 0.1.0 runs in full runs only (~1 GiB, ~20 s)"
    elif old is not None:
        old_home = fx.folder("store-home-0.1.0")
        old_imp = _measure([sys.executable, "-c", _OLD, str(old), "import", str(old_home), str(doc)], env)
        old_out = fx.scratch / "export-0.1.0.json"
        old_exp = _measure([sys.executable, "-c", _OLD, str(old), "export", str(old_home), "/bench"], env, old_out)
        if old_out.read_bytes() != exported.read_bytes():
            raise CaseError("the export differs from release 0.1.0's bytes")
        old_out.unlink()
        compared = "the two exports are the same bytes"
    exported.unlink()
    doc.unlink()
    title = f"registry {{}} {entries:,}"
    note = (
        f"{entries:,} values under /bench ({GROUP} per group), whole process, one run each; the peer is release "
        f"0.1.0's runtime/registry.py ({RELEASE}) doing what its command line did; peak = max resident set; " + compared
    )
    return [
        _row(title.format("import"), imp[0], old_imp and old_imp[0], "time", note),
        _row(title.format("import") + " peak", imp[1], old_imp and old_imp[1], "memory", note),
        _row(title.format("export"), exp[0], old_exp and old_exp[0], "time", note),
        _row(title.format("export") + " peak", exp[1], old_exp and old_exp[1], "memory", note, limit=EXPORT_MEMORY_MIB),
    ]


def _row(case: str, jcsh: float, peer: float | None, kind: str, note: str, limit: float | None = None) -> Row:
    """Time or memory against 0.1.0: no worse (<= 1x); export memory also under its absolute limit."""
    row = Row(case, jcsh, "0.1.0", peer, note=note, target="<= 1x")
    if kind == "memory":
        row.jcsh_text, row.peer_text = _mib(jcsh), _mib(peer)
    if peer is None:
        row.peer_text = "skipped"
    if limit is not None:
        row.target = f"< {limit:.0f} MiB, <= 1x"
    if peer is None and limit is None:
        row.verdict = "report"
    else:
        ok = (peer is None or jcsh <= peer) and (limit is None or jcsh < limit)
        row.verdict = "pass" if ok else "fail"
    return row


CASES = [
    Case(
        "store",
        f"registry import/export {ENTRIES:,}",
        (("0.1.0", "<= 1x"), ("0.1.0", "<= 1x"), ("0.1.0", "<= 1x"), ("0.1.0", f"< {EXPORT_MEMORY_MIB:.0f} MiB")),
        store,
    )
]
