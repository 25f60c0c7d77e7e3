"""The process layer on its own: system calls refused with the language layer off, the CPU-time
backstop, a script's own MemoryError, and worker folders left behind by a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jcsh.runtime.sandbox import process
from jcsh.runtime.sandbox.client import Session
from jcsh.runtime.sandbox.limits import DEFAULT_LIMITS, cpu_backstop, seccomp_available
from jcsh.runtime.sandbox.process import WorkerProcess, sweep_stale_folders
from tests.sandbox.helpers import run

pytestmark = pytest.mark.skipif(not seccomp_available(), reason="the process layer needs seccomp")


def _nr(name: str) -> int:
    import pyseccomp

    return int(pyseccomp.resolve_syscall(pyseccomp.system_arch(), name))


def _raw(name: str, *args: str) -> str:
    """A payload making the system call `name` through libc's syscall(); prints its errno."""
    return (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"r = libc.syscall({_nr(name)}, {', '.join(args)})\nprint('errno', ctypes.get_errno() if r == -1 else 0)"
    )


EACCES, EPERM = "errno 13", "errno 1"
# (name, payload, what it prints or raises) — each of these succeeds in an ordinary process.
REFUSED = [
    ("stat", "import os\nos.stat('/etc/passwd')", "PermissionError"),
    ("lstat", "import os\nos.lstat('/')", "PermissionError"),
    ("statx", _raw("statx", "-100", "b'/'", "0", "0xfff", "ctypes.create_string_buffer(256)"), EACCES),
    ("access", "import os\nprint('exists', os.access('/', os.F_OK))", "exists False"),
    ("faccessat2", _raw("faccessat2", "-100", "b'/'", "0", "0"), EACCES),
    ("readlink", "import os\nos.readlink('/proc/self/exe')", "PermissionError"),
    ("chdir", "import os\nos.chdir('/')", "PermissionError"),
    ("getxattr", "import os\nos.getxattr('/', 'user.jcsh')", "PermissionError"),
    ("shmget", _raw("shmget", "0", "4096", "0o1600"), EPERM),
    ("msgget", _raw("msgget", "0", "0o1600"), EPERM),
    ("semget", _raw("semget", "0", "1", "0o1600"), EPERM),
    ("mq_open", _raw("mq_open", "b'jcsh-test'", "0o102", "0o600", "None"), EPERM),
    ("setpriority-parent", "import os\nos.setpriority(os.PRIO_PROCESS, os.getppid(), 19)", "PermissionError"),
    ("setpriority-user", "import os\nos.setpriority(os.PRIO_USER, 0, 19)", "PermissionError"),
    ("ioprio_set-parent", _raw("ioprio_set", "1", "os.getppid()", "(3 << 13)"), EPERM),
    ("sched_setaffinity-parent", "import os\nos.sched_setaffinity(os.getppid(), {0})", "PermissionError"),
    (
        "sched_setscheduler-parent",
        "import os\nos.sched_setscheduler(os.getppid(), os.SCHED_BATCH, os.sched_param(0))",
        "PermissionError",
    ),
    ("pdeathsig", ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
     "print('errno', ctypes.get_errno() if libc.prctl(1, 0, 0, 0, 0) else 0)"), EPERM),
    ("ignore-sigxcpu", "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)", "PermissionError"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "payload", "expected"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_process_layer_refuses(unrestricted_session: Session, name: str, payload: str, expected: str) -> None:
    ran = run(unrestricted_session, payload)
    assert expected in ran.text, f"{name}: {ran.text}"
    assert not ran.result.namespace_lost


def test_the_worker_may_still_change_itself(unrestricted_session: Session) -> None:
    code = (
        "import os\nos.setpriority(os.PRIO_PROCESS, os.getpid(), 1)\n"
        "os.sched_setaffinity(os.getpid(), os.sched_getaffinity(os.getpid()))\nprint('ok')"
    )
    ran = run(unrestricted_session, code)
    assert ran.result.ok and ran.out == "ok\n", ran.text


@pytest.mark.timeout(60)
def test_the_cpu_backstop_ends_a_worker_its_parent_does_not_stop() -> None:
    config = {"namespace": "jcsh.stdlib.preload", "limits": DEFAULT_LIMITS, "modules": False}
    worker = WorkerProcess(config)
    try:
        assert worker.channel.recv(20)["t"] == "ready"
        cpu_backstop(worker.pid, 1.0)
        # A loop in C ignores SIGINT; here no parent clock runs at all: only the kernel stops it.
        worker.channel.send({"t": "run", "src": "any(iter(int, 1))", "file": "<stdin>", "mode": "exec"})
        started = time.monotonic()
        with pytest.raises(EOFError):
            while time.monotonic() - started < 45:
                worker.channel.recv(1)
    finally:
        ended = worker.kill()
    assert ended == "it was ended by SIGXCPU"


def test_the_backstop_is_above_the_timeout(session: Session) -> None:
    assert session.limits["cpu_backstop_seconds"] > session.timeout


@pytest.mark.parametrize(
    "code",
    [
        "raise MemoryError",
        "raise MemoryError('the script says so')",
        "def f():\n    raise MemoryError()\nf()",
    ],
)
def test_a_memory_error_the_script_raises_is_its_own_error(session: Session, code: str) -> None:
    ran = run(session, code)
    assert (ran.result.exit_code, ran.result.limit) == (1, None), ran.text
    assert "MemoryError" in ran.text and "memory limit" not in ran.text


def test_a_real_memory_error_reraised_is_still_the_limit(session: Session) -> None:
    ran = run(session, "try:\n    s = 'a' * 2**34\nexcept MemoryError as e:\n    raise e")
    assert (ran.result.exit_code, ran.result.limit) == (4, "memory"), ran.text


def _age(folder: Path) -> None:
    past = time.time() - 3600
    os.utime(folder, (past, past))


@pytest.mark.timeout(60)
def test_folders_of_killed_parents_go_and_live_ones_stay(tmp_path: Path, home: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "JCSH_HOME": str(home)}
    # A parent killed while its script runs: its worker dies with it and leaves its folder.
    parent = subprocess.Popen([sys.executable, "-m", "jcsh", "-c", "while True:\n    pass"], env=env)
    deadline = time.monotonic() + 20
    while not list(tmp.glob("jcsh-worker-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [left] = tmp.glob("jcsh-worker-*")
    time.sleep(0.3)  # the worker is in its folder
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    # Another worker still at work (a process whose folder it is), a young folder, a folder not empty.
    busy = tmp / "jcsh-worker-busy"
    young = tmp / "jcsh-worker-young"
    full = tmp / "jcsh-worker-full"
    for folder in (busy, young, full):
        folder.mkdir(mode=0o700)
    (full / "keep").write_text("not a worker's")
    sleeper = subprocess.Popen(["sleep", "30"], cwd=busy)
    try:
        for folder in (left, busy, full):
            _age(folder)
        deadline = time.monotonic() + 10
        while process._working_folders() and str(left) in process._working_folders() and time.monotonic() < deadline:
            time.sleep(0.05)  # the killed parent's worker is on its way out
        ran = subprocess.run([sys.executable, "-m", "jcsh", "-c", "print(6 * 7)"], env=env, capture_output=True)
        assert ran.stdout == b"42\n"
        assert sorted(p.name for p in tmp.iterdir()) == ["jcsh-worker-busy", "jcsh-worker-full", "jcsh-worker-young"]
    finally:
        sleeper.kill()
        sleeper.wait()
    # Once per process: a second start does not scan again.
    process._swept = False
    sweep_stale_folders()
    assert process._swept
