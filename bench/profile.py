"""Profile the jcsh side of a benchmark case with cProfile and -X importtime.

    bench/profile.py CASE [--top N] [--out FILE.prof]

CASE: startup, testmail, testmail-auth, probe, batch, export, import. The parent process is profiled; a sandbox
worker cannot write a profile once its seccomp filter is on, so time its boot with -X importtime
(printed for the parent here) or by stages.
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import case_mail
from bench.case_process import _registry_document
from bench.fixtures import TO, Fixtures
from bench.harness import Settings

__all__ = ["main"]

CASES = ("startup", "testmail", "testmail-auth", "probe", "batch", "export", "import")


def _arguments(case: str, fx: Fixtures) -> tuple[list[str], dict[str, str]]:
    """The jcsh arguments of the case and the environment to run them in (fixtures started)."""
    if case == "startup":
        return ["-c", "jcsOut.println(1)"], fx.env()
    if case in ("testmail", "testmail-auth"):
        server = fx.server(auth=case == "testmail-auth")
        return ["testmail", "--to", TO], fx.env(fx.mail_home(server))
    if case == "probe":
        server = fx.server()
        return ["tls", "probe", f"{server.host}:{server.port}", "--starttls", "--json"], fx.env(fx.mail_home(server))
    if case == "batch":
        jcs = fx.scratch / "batch.jcs"
        jcs.write_text(case_mail.JCSH_LOOP)
        return ["run", str(jcs), str(case_mail.BATCH)], fx.env(fx.mail_home(fx.server()))
    doc = fx.scratch / "registry.json"
    doc.write_text(json.dumps(_registry_document(10_000)))
    source = fx.folder("registry")
    subprocess.run(
        [sys.executable, "-m", "jcsh", "registry", "import", str(doc)],
        env=fx.env(source),
        check=True,
        capture_output=True,
    )
    if case == "export":
        return ["registry", "export", "/bench"], fx.env(source)
    return ["registry", "import", str(doc)], fx.env(fx.folder("registry-target"))


def _import_times(stderr: str, top: int) -> str:
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|", 2)
            if cumulative.strip().isdigit() and not name.startswith("   "):  # top-level imports only
                rows.append((int(cumulative), name.strip()))
    rows.sort(reverse=True)
    total = sum(us for us, _ in rows)
    lines = [f"top-level imports: {total / 1000:.1f} ms in all"]
    lines += [f"  {us / 1000:7.1f} ms  {name}" for us, name in rows[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--top", type=int, default=25, help="rows of each listing (default 25)")
    parser.add_argument("--out", default=None, help="keep the cProfile data in this file")
    args = parser.parse_args(argv)
    fx = Fixtures(Settings(quick=True))
    try:
        jcsh_args, env = _arguments(args.case, fx)
        out = args.out or str(fx.scratch / "profile.prof")
        # one plain run first, so that bytecode caches and the home are as in a timed run
        subprocess.run([sys.executable, "-m", "jcsh", *jcsh_args], env=env, capture_output=True)
        if args.case == "import":
            jcsh_args, env = _arguments("import", fx)
        proc = subprocess.run(
            [sys.executable, "-m", "cProfile", "-o", out, "-m", "jcsh", *jcsh_args],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            print(f"jcsh exited {proc.returncode}: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        text = io.StringIO()
        stats = pstats.Stats(out, stream=text)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        print(text.getvalue())
        if args.case == "import":
            jcsh_args, env = _arguments("import", fx)
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "jcsh", *jcsh_args], env=env, capture_output=True, text=True
        )
        print(_import_times(proc.stderr, args.top))
    finally:
        fx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
