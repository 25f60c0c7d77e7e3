"""`credential rekey` stopped at every point (the process dies there): the next command that opens the
home finishes or rolls it back by itself, says so in one line, and every secret still decrypts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jcsh.runtime.credentials import REKEY_STEPS, CredentialStore
from jcsh.runtime.registry import open_registry
from tests.support.cli import jcsh, jcsh_process
from tests.support.faults import PASSWORD, clean, fill_home

ROOT = str(Path(__file__).resolve().parent.parent)

_STOPPER = """
import os, sys
from pathlib import Path
from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.registry import open_registry
home, stop_at = Path(sys.argv[1]), sys.argv[2]
store = CredentialStore(open_registry(home), home)
def step(name):
    if name == stop_at:
        os._exit(9)  # no clean-up of any kind: as if the power went
store.rekey(steps=step)
"""

# step -> (what the next command says, whether the new key is the one that stays)
EXPECTED = {
    "re-encrypted": (None, False),
    "new-key-written": ("stopped before its commit and was rolled back", False),
    "committed": ("was finished", True),
    "old-key-moved": ("was finished", True),  # secret.key missing, .old and .new beside it
    "new-key-placed": ("was finished", True),
}


def _secrets(home: Path) -> list[str]:
    store = CredentialStore(open_registry(home), home)
    try:
        return [store.secret(c).reveal() for c in store.list() if c.has_secret]
    finally:
        store.registry.close()


@pytest.mark.parametrize("step", REKEY_STEPS)
def test_a_rekey_stopped_at_each_step_is_recovered_on_the_next_open(home: Path, step: str) -> None:
    fill_home(home)
    assert jcsh(home, "credential", "protocol", "add", "other").code == 0
    more = ("credential", "add", "--protocol", "other", "--endpoint", "e", "--virtual-user", "v", "--password-stdin")
    assert jcsh(home, *more, stdin="second secret\n").code == 0
    old_key = (home / "secret.key").read_bytes()
    stopped = subprocess.run([sys.executable, "-c", _STOPPER, str(home), step], cwd=ROOT, timeout=60)
    assert stopped.returncode == 9
    if step == "old-key-moved":
        assert not (home / "secret.key").exists()
        assert (home / "secret.key.new").exists() and (home / "secret.key.old").exists()
    said, new_key_stays = EXPECTED[step]
    ran = jcsh_process(home, "registry", "get", "/u/grüße")  # any command that opens the home
    clean(ran)
    assert ran.code == 0 and ran.out == "☃ 日本語\n"
    if said is None:
        assert ran.err == ""
    else:
        [line] = ran.err.splitlines()
        assert "a `credential rekey`" in line and said in line, line
    assert not (home / "secret.key.new").exists() and not (home / "secret.key.old").exists()
    assert ((home / "secret.key").read_bytes() != old_key) == new_key_stays
    assert sorted(_secrets(home)) == sorted([PASSWORD, "second secret"])
    assert jcsh(home, "registry", "check").code == 0
    again = jcsh(home, "credential", "rekey")
    assert again.code == 0 and again.err == ""
    assert sorted(_secrets(home)) == sorted([PASSWORD, "second secret"])


def test_no_key_matches_is_a_clear_error(home: Path) -> None:
    fill_home(home)
    from cryptography.fernet import Fernet

    (home / "secret.key").write_bytes(Fernet.generate_key())
    (home / "secret.key.new").write_bytes(Fernet.generate_key())
    ran = jcsh(home, "--json", "credential", "ls")
    assert ran.code == 74 and ran.json["error"]["cause"] == "damaged"
    assert "none of secret.key, secret.key.new, secret.key.old" in ran.json["error"]["message"]
    assert (home / "secret.key.new").exists()  # nothing was changed
