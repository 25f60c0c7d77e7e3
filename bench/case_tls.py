"""`jcsh tls probe` of four versions and the certificate against sslyze and openssl s_client; 16 targets in one."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fixtures import Fixtures
from bench.harness import (
    Case,
    CaseError,
    Row,
    Side,
    Unavailable,
    alternate,
    check_jcsh,
    find_peer,
    jcsh_command,
    not_built,
    ratio_row,
)

__all__ = ["CASES"]

PROBE_LIMIT = 0.25  # issue 5: at most a quarter of sslyze's median
OPENSSL_LIMIT = 1.5  # issue 15: within 1.5x openssl s_client run once per version, one after another
MANY = 16
MANY_LIMIT = 2.0  # issue 15: 16 targets in one probe within 2x the wall time of one
VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_SSLYZE_KEYS = {
    "TLSv1": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}
_OPENSSL_FLAGS = {"TLSv1": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}

Verdicts = dict[str, bool]


class _Runner:
    """Runs one side once, keeping the verdicts it saw last."""

    def __init__(self, fn: Callable[[], Verdicts]) -> None:
        self.fn = fn
        self.verdicts: Verdicts | None = None

    def __call__(self) -> float:
        start = time.perf_counter()
        self.verdicts = self.fn()
        return time.perf_counter() - start


def _run(
    argv: list[str], env: dict[str, str], who: str, ok: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=300)
    if proc.returncode not in ok:
        tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()[-2:]
        raise CaseError(f"{who} exited {proc.returncode}: {' | '.join(tail)}")
    return proc


def _jcsh(argv: list[str], env: dict[str, str]) -> Callable[[], Verdicts]:
    def run() -> Verdicts:
        doc = json.loads(_run(argv, env, "jcsh tls probe").stdout)
        if not doc.get("certificate"):
            raise CaseError("jcsh tls probe reported no certificate")
        return {v: bool(doc["protocols"][v]) for v in VERSIONS}

    return run


def _sslyze(exe: str, host: str, port: int, env: dict[str, str], out: str) -> Callable[[], Verdicts]:
    argv = [
        exe,
        "--quiet",
        "--starttls",
        "smtp",
        "--tlsv1",
        "--tlsv1_1",
        "--tlsv1_2",
        "--tlsv1_3",
        "--certinfo",
        "--json_out",
        out,
        f"{host}:{port}",
    ]

    def run() -> Verdicts:
        _run(argv, env, "sslyze")
        with open(out, encoding="utf-8") as f:
            doc: Any = json.load(f)
        scan = doc["server_scan_results"][0]
        if scan.get("scan_status") != "COMPLETED":
            raise CaseError(f"sslyze could not scan: {scan.get('connectivity_error_trace')}")
        result = scan["scan_result"]
        if result["certificate_info"]["status"] != "COMPLETED":
            raise CaseError("sslyze reported no certificate")
        return {v: bool(result[k]["result"]["accepted_cipher_suites"]) for v, k in _SSLYZE_KEYS.items()}

    return run


def _openssl(exe: str, host: str, port: int, cafile: str, env: dict[str, str]) -> Callable[[], Verdicts]:
    def run() -> Verdicts:
        verdicts = {}
        for version, flag in _OPENSSL_FLAGS.items():
            argv = [exe, "s_client", "-connect", f"{host}:{port}", "-starttls", "smtp", flag, "-brief"]
            # verified as the other sides verify: a handshake whose certificate fails counts as refused
            argv += ["-CAfile", cafile, "-verify_return_error"]
            if version in ("TLSv1", "TLSv1.1"):  # OpenSSL 3 offers them only at security level 0
                argv += ["-cipher", "DEFAULT@SECLEVEL=0"]
            verdicts[version] = _run(argv, env, "openssl s_client", ok=(0, 1)).returncode == 0
        return verdicts

    return run


def _show(verdicts: Verdicts | None) -> str:
    if verdicts is None:
        return "?"
    return " ".join(f"{v}:{'yes' if ok else 'no'}" for v, ok in verdicts.items())


def _sides(
    fx: Fixtures, host: str, port: int, cafile: Path, home: Path, tag: str
) -> tuple[_Runner, _Runner | None, _Runner | None]:
    env = fx.env(home)  # the home trusts the server's certificate
    jcsh = _Runner(_jcsh([*jcsh_command(), "tls", "probe", f"{host}:{port}", "--starttls", "--json"], env))
    exe = find_peer("sslyze", fx.settings)
    sslyze = _Runner(_sslyze(exe, host, port, env, str(fx.scratch / f"sslyze-{tag}.json"))) if exe else None
    exe = find_peer("openssl", fx.settings)
    openssl = _Runner(_openssl(exe, host, port, str(cafile), env)) if exe else None
    return jcsh, sslyze, openssl


def _compare(jcsh: _Runner, others: dict[str, _Runner | None]) -> tuple[bool, str]:
    """Do the peers that ran agree with jcsh's verdicts? And the sentence saying so."""
    parts, same = [f"jcsh {_show(jcsh.verdicts)}"], True
    for name, runner in others.items():
        if runner is None:
            continue
        agree = runner.verdicts == jcsh.verdicts
        same &= agree
        parts.append(f"{name} {'agrees' if agree else 'DIFFERS: ' + _show(runner.verdicts)}")
    return same, "; ".join(parts)


def probe(fx: Fixtures) -> list[Row]:
    server = fx.server()  # a sink allowing OpenSSL's default versions here (TLS 1.2-1.3), or the MTA
    home = fx.mail_home(server)
    target = f"{server.host}:{server.port}"
    check_jcsh([*jcsh_command(), "tls", "probe", target, "--starttls", "--json"], fx.env(home))
    jcsh, sslyze, openssl = _sides(fx, server.host, server.port, server.cafile, home, "timed")
    sides = [Side("jcsh", jcsh), Side("sslyze", sslyze), Side("openssl s_client x4", openssl)]
    alternate(sides, fx.settings.runs(5, quick=2), warmup=1)
    same, said = _compare(jcsh, {"sslyze": sslyze, "openssl": openssl})
    where = "the MTA" if server.sink is None else "STARTTLS sink allowing TLS 1.2-1.3"
    notes = [f"{where}: {said}"]
    if not fx.settings.quick and fx.settings.mta is None:
        # a second server that refuses both the oldest and the newest version, checked once
        legacy = fx.start_sink("--tls-min", "TLSv1.1", "--tls-max", "TLSv1.2")
        runners = _sides(fx, legacy.host, legacy.port, legacy.cert_path, home, "legacy")
        for runner in runners:
            if runner is not None:
                runner()
        same_legacy, said_legacy = _compare(runners[0], {"sslyze": runners[1], "openssl": runners[2]})
        same &= same_legacy
        notes.append(f"sink allowing TLS 1.1-1.2: {said_legacy}")
    rows = [
        ratio_row(PROBE_TITLE, sides[0], sides[1], PROBE_LIMIT, note="; ".join(notes)),
        ratio_row(
            PROBE_TITLE,
            sides[0],
            sides[2],
            OPENSSL_LIMIT,
            note="openssl s_client once per version, one after the other, verifying the certificate "
            "(verdicts only, no certificate summary)",
        ),
    ]
    if not same:
        rows[0].verdict = "fail"
        rows[0].note += " — verdicts differ"
    return rows


def probe_many(fx: Fixtures) -> list[Row]:
    """16 targets in one `tls probe` against one: concurrency, not 16 times the wall time."""
    server = fx.server()
    env = fx.env(fx.mail_home(server))
    target = f"{server.host}:{server.port}"
    one_argv = [*jcsh_command(), "tls", "probe", target, "--starttls", "--json"]
    many_argv = [*jcsh_command(), "tls", "probe", *[target] * MANY, "--starttls", "--json"]
    check_jcsh(one_argv, env)
    proc = subprocess.run(many_argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=300)
    text = (proc.stderr + proc.stdout).decode(errors="replace")
    if proc.returncode != 0 and ("unrecognized arguments" in text or not_built(text)):
        raise Unavailable("`jcsh tls probe` takes one target: multi-target probing is not available yet")
    many = _Runner(_jcsh_many(many_argv, env))
    one = _Runner(_jcsh(one_argv, env))
    sides = [Side("jcsh", many), Side("`tls probe`, 1 target", one)]
    alternate(sides, fx.settings.runs(5, quick=2), warmup=1)
    note = (
        f"one `jcsh tls probe` of the same server given {MANY} times (each target its own section) against "
        f"one target, whole process ({server.label}); verdicts of every section equal the single run's"
    )
    row = ratio_row(MANY_TITLE, sides[0], sides[1], MANY_LIMIT, note=note)
    if many.verdicts != one.verdicts:
        row.verdict = "fail"
        row.note += f" — they differ: {_show(many.verdicts)} vs {_show(one.verdicts)}"
    return [row]


def _jcsh_many(argv: list[str], env: dict[str, str]) -> Callable[[], Verdicts]:
    """The verdicts of a multi-target probe when every section agrees; CaseError when one differs."""

    def run() -> Verdicts:
        doc = json.loads(_run(argv, env, "jcsh tls probe (16 targets)").stdout)
        seen = [{v: bool(t["protocols"][v]) for v in VERSIONS} for t in doc["targets"]]
        if len(seen) != MANY or any(s != seen[0] for s in seen):
            raise CaseError(f"jcsh tls probe of {MANY} targets gave {len(seen)} differing section(s)")
        return seen[0]

    return run


def probe_mx(fx: Fixtures) -> list[Row]:
    """`tls probe --mx` of two MX hosts with DANE and MTA-STS against one target probe of the first."""
    if fx.settings.mta is not None:
        raise Unavailable("--mx needs two sinks and a DNS responder of its own, not the MTA")
    import sys

    from bench.servers import SinkProcess

    folder = fx.folder("mx-world")
    world = subprocess.Popen(
        [sys.executable, "-m", "bench.mx_world", str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert world.stdin is not None and world.stdout is not None
    try:
        line = world.stdout.readline().split()
        if not line or line[0] != "ready":
            raise CaseError("the DNS/MTA-STS helper did not start")
        dns, web_port, root, cert1, key1, cert2, key2 = line[1:]
        base = [*jcsh_command(), "sink", "--port", "0", "--starttls"]
        one = SinkProcess([*base, "--cert", cert1, "--key", key1], fx.env(fx.folder("sink-home")), Path(cert1))
        argv_two = [*base, "--host", "127.0.0.2", "--port", str(one.port), "--cert", cert2, "--key", key2]
        two = SinkProcess(argv_two, fx.env(fx.folder("sink-home")), Path(cert2))
        try:
            world.stdin.write(f"{one.port}\n")
            world.stdin.flush()
            if world.stdout.readline().strip() != "ok":
                raise CaseError("the DNS helper did not take the TLSA records")
            env = fx.env() | {"JCSH_NAMESERVERS": dns, "JCSH_MTA_STS_PORT": web_port, "SSL_CERT_FILE": root}
            mx_argv = [*jcsh_command(), "tls", "probe", "--mx", "bench.test", "--port", str(one.port), "--json"]
            first = [*jcsh_command(), "tls", "probe", f"127.0.0.1:{one.port}", "--servername", "mx1.bench.test"]
            first.append("--json")
            doc = json.loads(_run(mx_argv, env, "jcsh tls probe --mx").stdout)
            dane = [h.get("dane") and h["dane"]["status"] for h in doc["hosts"]]
            covered = [h["mta_sts_covered"] for h in doc["hosts"]]
            if dane != ["verified", "verified"] or covered != [True, True] or doc["mta_sts"]["mode"] != "enforce":
                raise CaseError(f"jcsh tls probe --mx saw DANE {dane}, MTA-STS coverage {covered}")
            sides = [
                Side("jcsh", _Runner(_jcsh_mx(mx_argv, env))),
                Side("`tls probe` of the first MX", _Runner(_jcsh(first, env))),
            ]
            alternate(sides, fx.settings.runs(5, quick=2), warmup=1)
        finally:
            one.stop()
            two.stop()
    finally:
        world.stdin.close()
        world.wait(timeout=10)
    note = (
        "two MX hosts (sink processes on 127.0.0.1 and 127.0.0.2), TLSA 3 1 1 with the AD bit for each, an "
        "enforce MTA-STS policy over HTTPS and a TLS-RPT record from a DNS responder in its own process, "
        "against a single-target probe of the first MX (its address, --servername)"
    )
    return [ratio_row(MX_TITLE, sides[0], sides[1], MX_LIMIT, note=note)]


def _jcsh_mx(argv: list[str], env: dict[str, str]) -> Callable[[], Verdicts]:
    def run() -> Verdicts:
        doc = json.loads(_run(argv, env, "jcsh tls probe --mx").stdout)
        return {v: bool(doc["hosts"][0]["protocols"][v]) for v in VERSIONS}

    return run


PROBE_TITLE = "`jcsh tls probe` 4 versions + cert"
MX_TITLE = "`jcsh tls probe --mx`, 2 MX + DANE + MTA-STS"
MX_LIMIT = 1.5  # issue 16: under 1.5x a single-target probe of the first MX
MANY_TITLE = f"`jcsh tls probe`, {MANY} targets"

CASES = [
    Case(
        "probe",
        PROBE_TITLE,
        (("sslyze", f"<= {PROBE_LIMIT}x"), ("openssl s_client x4", f"<= {OPENSSL_LIMIT}x")),
        probe,
    ),
    Case("probe16", MANY_TITLE, (("`tls probe`, 1 target", f"<= {MANY_LIMIT}x"),), probe_many),
    Case("probemx", MX_TITLE, (("`tls probe` of the first MX", f"<= {MX_LIMIT}x"),), probe_mx),
]
