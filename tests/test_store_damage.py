"""Damaged copies of a real database: bytes flipped at fixed offsets, cut short, emptied. Damage is
exit 74 and never "not found", writes are refused, `registry check` names it, and nothing prints a
traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jcsh.runtime.registry import open_registry
from tests.support.cli import jcsh, jcsh_process
from tests.support.faults import clean, fill_home

PAGE = 4096
ENTRIES = {f"/bulk/g{i % 30:02d}/entry-{i:05d}": f"value number {i} " + "x" * 40 for i in range(0, 3000, 7)}


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose database spans a hundred pages: the registry tree, its index, credentials."""
    home = tmp_path_factory.mktemp("sound") / "home"
    fill_home(home)
    registry = open_registry(home)
    with registry.transaction():
        for i in range(3000):
            registry.set(f"/bulk/g{i % 30:02d}/entry-{i:05d}", f"value number {i} " + "x" * 40)
    registry.close()
    return home


def _damaged(sound: Path, tmp_path: Path, how: str) -> Path:
    home = tmp_path / "home"
    shutil.copytree(sound, home)
    db = home / "registry.sqlite3"
    data = bytearray(db.read_bytes())
    kind, _, where = how.partition("@")
    if kind == "flip":
        offset = eval(where, {"PAGE": PAGE, "END": len(data)})
        data[offset] ^= 0xFF
    elif kind == "cut":
        data = data[: eval(where, {"PAGE": PAGE, "END": len(data)})]
    db.write_bytes(bytes(data))
    return home


DAMAGE = [
    "flip@0",  # the magic string: not a database
    "flip@18",  # the header's write version: SQLite will not write
    "flip@100",  # page 1's b-tree header (the schema)
    "flip@PAGE",  # page 2: the registry tree's root
    "flip@2*PAGE",  # page 3: the parent index's root
    "flip@5*PAGE",
    "flip@10*PAGE+8",  # inside a page header: cell count
    "flip@20*PAGE",
    "flip@END-PAGE",  # the last page
    "cut@END//2",
    "cut@PAGE",
    "cut@100",
]


@pytest.mark.parametrize("how", DAMAGE)
def test_damage_is_74_never_not_found_and_check_names_it(sound: Path, tmp_path: Path, how: str) -> None:
    home = _damaged(sound, tmp_path, how)
    reads = dict([("/u/grüße", "☃ 日本語"), *list(ENTRIES.items())[::40]])
    for path, value in reads.items():
        got = jcsh(home, "--json", "registry", "get", path)
        clean(got)
        assert got.code in (0, 74), (how, path, got)  # never 1, "no registry entry"
        if got.code == 0:
            assert got.json["value"] == value
        else:
            assert got.json["error"]["cause"] == "damaged", got.json
    for args in (
        ("registry", "ls", "/bulk"),
        ("registry", "export"),
        ("credential", "ls"),
        ("registry", "get", "/nope"),
    ):
        ran = jcsh(home, "--json", *args)
        clean(ran)
        assert ran.code in (0, 74) or (args[-1] == "/nope" and ran.code == 1), (how, args, ran)
    before = (home / "registry.sqlite3").read_bytes()
    writes: list[tuple[str, ...]] = [("registry", "set", "/new/entry", "v"), ("credential", "protocol", "add", "X")]
    for write in writes:
        refused = jcsh(home, "--json", *write)
        clean(refused)
        assert refused.code == 74 and refused.json["error"]["cause"] == "damaged", (how, refused)
        assert "run `jcsh registry check`" in refused.json["error"]["message"]
    assert (home / "registry.sqlite3").read_bytes() == before
    check = jcsh(home, "--json", "registry", "check")
    assert check.code == 74 and check.json["ok"] is False and check.json["problems"], (how, check)


@pytest.mark.parametrize("how", ["flip@PAGE", "cut@END//2", "flip@0"])
def test_damage_in_a_real_process_is_one_line(sound: Path, tmp_path: Path, how: str) -> None:
    home = _damaged(sound, tmp_path, how)
    for args in (("registry", "export"), ("registry", "check")):
        ran = jcsh_process(home, *args)
        clean(ran)
        assert ran.code == 74
        assert len(ran.err.strip().splitlines()) == 1 or args[-1] == "check"
        if args[-1] == "export":
            assert "registry.sqlite3 is damaged (" in ran.err and str(home) in ran.err


def test_an_empty_database_next_to_its_key_is_a_lost_registry(sound: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(sound, home)
    (home / "registry.sqlite3").write_bytes(b"")
    ran = jcsh(home, "--json", "registry", "check")
    assert ran.code == 74 and "the registry was lost or replaced" in ran.json["problems"][0]


def test_a_miss_confirms_the_file_is_sound_first(sound: Path, tmp_path: Path) -> None:
    """An index that lost an entry answers "no such entry"; the integrity check before it says so tells."""
    home = tmp_path / "home"
    shutil.copytree(sound, home)
    import sqlite3

    conn = sqlite3.connect(home / "registry.sqlite3")
    conn.execute("PRAGMA writable_schema = ON")  # make the index and the table disagree, as damage does
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entry_parent'").fetchone()
    conn.close()
    db = home / "registry.sqlite3"
    data = bytearray(db.read_bytes())
    start = (root - 1) * PAGE
    data[start : start + PAGE] = bytes([0x0A, 0, 0, 0, 0, 0x10, 0, 0]) + bytes(PAGE - 8)  # an empty leaf
    db.write_bytes(bytes(data))
    ran = jcsh(home, "--json", "registry", "ls", "/bulk")
    assert ran.code == 74 and ran.json["error"]["cause"] == "damaged", ran
