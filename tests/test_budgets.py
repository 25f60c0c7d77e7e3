"""The budgets of one script run: registry writes, registry answers, network connections.

Each is hit by a script as a user would write it; the run ends with exit 4 (kind "limit"), and
what was spent stays within the budget.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.errors import LimitHit
from jcsh.runtime.registry import Registry, open_registry
from jcsh.runtime.sandbox.budget import DEFAULT_BUDGETS
from jcsh.runtime.sandbox.host import Host
from jcsh.runtime.sink import Sink, SinkConfig
from tests.support.cli import Ran, jcsh, jcsh_process
from tests.support.mailconf import configure_mail

MIB = 1 << 20


def _db_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.glob("registry.sqlite3*"))


def _flood(home: Path, registry: Registry, path: str, value: str) -> tuple[Ran, int]:
    """A script that sets path (an f-string of i) to value a million times; how it ended, and the growth."""
    registry.set("/configuration/shell/Timeout", "60")
    registry.close()
    before = _db_bytes(home)
    ran = jcsh_process(home, "-c", f"for i in range(10**6):\n    registry.set({path}, {value})\n")
    assert ran.code == 4 and ran.err.count("\n") == 1, ran.err
    return ran, _db_bytes(home) - before


@pytest.mark.timeout(60)
def test_a_registry_flood_stops_at_the_budget(home: Path, registry: Registry) -> None:
    ran, grown = _flood(home, registry, "f'/flood/{i}'", "'x' * 60000")
    assert "at most 16 MiB per run" in ran.err, ran.err
    assert 15 * MIB < grown <= 16 * MIB * 1.1, grown
    # Rewriting one entry does not grow the file, but it writes: values count as they are written.
    # The budget belongs to one run (the next may write again), and its refusal is catchable.
    rewrite = "try:\n    for i in range(10**6):\n        registry.set('/flood/0', 'y' * 60000)\n"
    caught = jcsh_process(home, "-c", rewrite + "except JcshError as e:\n    print(e.kind, e.exit_code, e)\n")
    assert caught.code == 0 and caught.out.startswith("limit 4 registry.set('/flood/0'): "), caught.err
    assert "has written 15.9" in caught.out and "of registry values" in caught.out


@pytest.mark.timeout(60)
def test_long_paths_cannot_grow_the_database_past_the_budget(home: Path, registry: Registry) -> None:
    ran, grown = _flood(home, registry, "'/flood/' + 'p' * 1000 + str(i)", "''")
    assert "a script may grow it by at most 16 MiB per run" in ran.err, ran.err
    assert grown <= 16 * MIB * 1.1


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_run_writes_at_most_20000_distinct_entries(home: Path, registry: Registry) -> None:
    host = Host(registry, CredentialStore(registry, home), home)
    host.begin_run()
    for i in range(DEFAULT_BUDGETS.registry_entries):
        host.handle("registry.set", {"path": f"/many/{i}", "value": "v"})
    host.handle("registry.set", {"path": "/many/0", "value": "again"})  # an entry already written
    with pytest.raises(LimitHit, match="at most 20000 per run"):
        host.handle("registry.set", {"path": "/many/one-more", "value": "v"})
    assert not registry.exists("/many/one-more")
    host.begin_run()
    host.handle("registry.set", {"path": "/many/one-more", "value": "v"})


_PEAK = (
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.__stderr__.write('peak ' + line.split()[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "from jcsh.shell.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_huge_walk_is_refused_early_and_small(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    registry = open_registry(home)
    children = {f"entry-{i:06d}": {"value": "v" * 20, "children": {}} for i in range(300_000)}
    registry.import_({"path": "/big", "value": None, "children": children})
    registry.close()
    del children
    for call in ("registry.walk('/big')", "registry.list('/big')", "registry.walk('/')"):
        # The parent's own peak (VmHWM of this process image), not a figure inherited from pytest.
        p = subprocess.run(
            [sys.executable, "-c", _PEAK, "--home", str(home), "-c", call],
            capture_output=True,
            text=True,
            timeout=60,
        )
        error, peak = p.stderr.splitlines()
        assert p.returncode == 4 and "more than 100000 entries" in error, p.stderr
        assert int(peak.split()[1]) < 200 * 1024, peak  # KiB
    assert jcsh(home, "-c", "print(len(registry.walk('/big/entry-000007')))").out == "1\n"


class _Counter:
    """A TCP port that counts the connections it accepts (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()


@pytest.mark.timeout(60)
def test_a_run_opens_at_most_64_connections(home: Path, registry: Registry) -> None:
    with Sink(SinkConfig(port=0)) as sink:
        configure_mail(registry, sink.port)
        ran = jcsh(home, "-c", "for i in range(100):\n    mail.send('a@example.test', f'n{i}', 'x')\n")
        assert ran.code == 4 and "a script may open at most 64" in ran.err, ran.err
        assert len(sink.messages) == 64
        # A session's connection, opened before the budget was spent, carries on to its QUIT.
        sink.messages.clear()
        mixed = (
            "s = mail.session()\ns.send('a@example.test', 'session 1', 'x')\ntry:\n"
            "    for i in range(100):\n        mail.send('a@example.test', f'n{i}', 'x')\n"
            "except JcshError as e:\n    print(e.kind)\n"
            "s.send('a@example.test', 'session 2', 'x')\ns.close()\n"
        )
        ran = jcsh(home, "-c", mixed)
        assert (ran.code, ran.out) == (0, "limit\n"), ran.err
        subjects = [m.subject for m in sink.messages]
        assert subjects == ["session 1", *(f"n{i}" for i in range(63)), "session 2"]
        # Connections a probe makes are counted one by one, however many threads make them.
        counter = _Counter()
        probes = (
            f"for i in range(100):\n    try:\n        tls.probe('127.0.0.1:{counter.port}', timeout=2)\n"
            "    except JcshError as e:\n        if e.kind == 'limit':\n            raise\n"
        )
        probed = jcsh(home, f"--allow-net=127.0.0.1:{counter.port}", "-c", probes)
        counter.sock.close()
    assert probed.code == 4 and "a script may open at most 64" in probed.err, probed.err
    assert counter.count == 64


@pytest.mark.timeout(30)
def test_a_service_that_is_not_smtp_shows_no_more_than_40_characters(home: Path, registry: Registry) -> None:
    banner = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5 secret-build-id-0123456789\r\n"
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(banner)
                conn.settimeout(2)
                try:
                    conn.recv(100)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        configure_mail(registry, port)
        for call in ("mail.send('a@example.test', 's', 'b')", "tls.probe()"):
            ran = jcsh(home, "-c", f"try:\n    {call}\nexcept JcshError as e:\n    print(e.exit_code, e)")
            head = f"3 127.0.0.1:{port} is not an SMTP server (protocol error): '"
            assert ran.out.startswith(head) and ran.out.endswith("'\n"), ran.out
            shown = ran.out[len(head) : -2]
            assert len(shown) <= 40 and shown in banner.decode() and "secret-build-id" not in ran.out
    finally:
        server.close()
