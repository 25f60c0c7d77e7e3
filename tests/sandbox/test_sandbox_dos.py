"""Denial of service: each attempt is stopped within the timeout + 1 s and the shell stays usable."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jcsh.runtime.sandbox.client import TIMEOUT_GRACE_SECONDS, Session
from jcsh.runtime.sandbox.limits import seccomp_available
from tests.sandbox.helpers import Ran, run


def _stopped(session: Session, code: str, **kwargs: Any) -> tuple[Ran, float]:
    started = time.monotonic()
    ran = run(session, code, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < session.timeout + 1.5, f"took {elapsed:.1f} s"  # 1 s, and the machine's load
    after = run(session, "jcsOut.println(6 * 7)")
    assert after.result.ok and after.out == "42\n", "the shell is not usable afterwards"
    return ran, elapsed


def test_busy_loop_is_interrupted_and_keeps_the_namespace(session: Session) -> None:
    run(session, "kept = 1")
    ran, elapsed = _stopped(session, "while True:\n    pass")
    r = ran.result
    assert (r.ok, r.exit_code, r.limit, r.namespace_lost) == (False, 4, "timeout", False)
    # One line that says where it was when interrupted.
    assert r.error in (
        "timed out after 1 s at <stdin> line 1: while True:",
        "timed out after 1 s at <stdin> line 2: pass",
    )
    assert elapsed < session.timeout + 2  # no kill: SIGINT was enough
    assert run(session, "jcsOut.println(kept)").out == "1\n"


@pytest.mark.slow
def test_loop_that_swallows_the_interrupt_is_killed(session: Session) -> None:
    code = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    ran, elapsed = _stopped(session, code)
    r = ran.result
    assert (r.exit_code, r.limit, r.namespace_lost) == (4, "timeout", True)
    assert "namespace was lost" in r.error
    assert elapsed >= session.timeout + TIMEOUT_GRACE_SECONDS - 0.2


def test_huge_power_is_stopped(session: Session) -> None:
    ran, _ = _stopped(session, "x = 10**10**8")  # CPython's pow checks for signals: SIGINT is enough
    assert (ran.result.exit_code, ran.result.limit) == (4, "timeout")


def test_catastrophic_regex_is_stopped(session: Session) -> None:
    ran, _ = _stopped(session, "import re\nre.match(r'(a+)+$', 'a' * 64 + 'b')")
    assert (ran.result.exit_code, ran.result.limit) == (4, "timeout")


@pytest.mark.slow
def test_loop_in_c_that_ignores_signals_is_killed(session: Session) -> None:
    ran, elapsed = _stopped(session, "any(iter(int, 1))")  # no bytecode runs, so no signal handler either
    r = ran.result
    assert (r.exit_code, r.limit, r.namespace_lost) == (4, "timeout", True)
    assert elapsed >= session.timeout + TIMEOUT_GRACE_SECONDS - 0.2


def test_huge_string_hits_the_memory_limit(session: Session) -> None:
    ran, elapsed = _stopped(session, "s = 'a' * 2**34")
    r = ran.result
    assert (r.exit_code, r.limit, r.namespace_lost) == (4, "memory", False)
    assert "MemoryError" in r.error and "memory limit of 1024 MiB" in r.error
    assert elapsed < 3


def test_memory_grown_in_steps_hits_the_limit(tmp_path) -> None:
    from tests.sandbox.conftest import _session

    # A smaller address space than the default GiB: filling that takes seconds of page faults.
    limits = {"address_space_bytes": 384 << 20, "core_bytes": 0, "file_size_bytes": 0, "open_files": 32}
    for s in _session(tmp_path, restricted=True, timeout=10.0, rlimits=limits):
        ran, _ = _stopped(s, "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))")
        assert (ran.result.exit_code, ran.result.limit) == (4, "memory")
        assert "memory limit of 384 MiB" in ran.result.error


def test_deep_recursion_is_an_ordinary_error(session: Session) -> None:
    ran, elapsed = _stopped(session, "def f(n):\n    return f(n + 1)\nf(0)")
    r = ran.result
    assert (r.exit_code, r.namespace_lost) == (1, False)
    assert "RecursionError" in r.error and "Previous line repeated" in r.error
    assert r.error.count("\n") < 20  # the repeated frames are folded
    assert elapsed < 3


def test_ten_megabytes_of_output_are_cut_at_the_limit(session: Session) -> None:
    session.timeout = 10  # the limit, not the clock, must stop it
    ran, elapsed = _stopped(session, "for i in range(100000):\n    print('x' * 99)")
    r = ran.result
    assert (r.exit_code, r.limit, r.namespace_lost) == (4, "output", False)
    assert len(ran.out) == session.output_limit
    assert "output limit reached" in r.error
    assert elapsed < 3


def test_output_limit_holds_even_when_the_script_catches_it(session: Session) -> None:
    session.timeout = 10
    code = (
        "n = 0\nwhile n < 10**7:\n    n += 1\n    try:\n        print('y' * 1000)\n"
        "    except BaseException:\n        pass"
    )
    ran, _ = _stopped(session, code)
    assert (ran.result.exit_code, ran.result.limit) == (4, "output")
    assert len(ran.out) <= session.output_limit


def test_one_huge_print_is_cut(session: Session) -> None:
    session.timeout = 10
    ran, _ = _stopped(session, "print('z' * (5 * 2**20))")
    assert (ran.result.exit_code, ran.result.limit) == (4, "output")
    assert len(ran.out) == session.output_limit


def test_fork_bomb_is_refused(session: Session) -> None:
    ran, _ = _stopped(session, "import os\nwhile True:\n    os.fork()")
    assert "import of 'os' is not allowed" in ran.result.error


@pytest.mark.skipif(not seccomp_available(), reason="needs seccomp")
def test_fork_bomb_without_the_restricted_layer(tmp_path) -> None:
    from tests.sandbox.conftest import _session

    for s in _session(tmp_path, restricted=False, timeout=1.0):
        ran, _ = _stopped(s, "import os\nwhile True:\n    os.fork()")
        assert "PermissionError" in ran.result.error


def test_sleep_is_interrupted(session: Session) -> None:
    ran, elapsed = _stopped(session, "import time\ntime.sleep(60)")
    assert (ran.result.exit_code, ran.result.limit, ran.result.namespace_lost) == (4, "timeout", False)
    assert elapsed < session.timeout + 2
