"""A home removed or replaced under a running REPL: each write is refused with the reason, the REPL goes
on, and nothing is written to a deleted file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import jcsh
from tests.support.terminal import Terminal


@pytest.mark.timeout(90)
@pytest.mark.slow
def test_a_home_removed_then_replaced_under_the_repl(home: Path) -> None:
    t = Terminal(home)
    try:
        t.prompt()
        t.run('registry.set("/before", "1")')
        t.prompt()
        t.run("%registry set /before2 2")
        t.prompt()
        shutil.rmtree(home)
        t.run('registry.set("/gone", "x")')
        t.expect(r"line 1: the home \S+ was removed while jcsh was running \(registry.sqlite3 is gone\)")
        t.prompt()
        t.run("%registry set /gone2 x")
        t.expect(r"jcsh: the home \S+ was removed while jcsh was running")
        t.prompt()
        t.run('print(registry.get("/before"))')  # what it already read is still there to read
        t.expect(r"\n1\r?\n")
        t.prompt()
        assert jcsh(home, "registry", "set", "/new-home", "yes").code == 0  # another process makes a new home
        t.run('registry.set("/replaced", "x")')
        t.expect(r"was replaced by another file while jcsh was running; nothing was written")
        t.prompt()
        assert t.finish() == 0
    finally:
        t.close()
    assert "Traceback" not in t.text, t.text
    assert jcsh(home, "registry", "get", "/replaced").code == 1
    assert jcsh(home, "registry", "get", "/new-home").out == "yes\n"
