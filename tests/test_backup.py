"""`jcsh backup` and `jcsh restore`: a live home round-trips exactly, committed changes still in the
WAL are in the backup, a bad backup or a non-empty home changes nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.registry import open_registry
from tests.support.cli import jcsh, jcsh_process
from tests.support.faults import PASSWORD, clean, fill_home

ROOT = str(Path(__file__).resolve().parent.parent)
SMTP = ("smtp", "smtp.example.test", "default")


def _state(home: Path) -> tuple[str, str, str]:
    """Everything a user would compare: the export, the credential list, the password."""
    store = CredentialStore(open_registry(home), home)
    try:
        secret = store.secret(store.find(*SMTP)).reveal()
    finally:
        store.registry.close()
    return jcsh(home, "registry", "export").out, jcsh(home, "--json", "credential", "ls").out, secret


def test_backup_and_restore_round_trip_a_home_exactly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_home(home)
    backup = tmp_path / "b.jcsh"
    made = jcsh(home, "--json", "backup", str(backup))
    assert made.code == 0, made.err
    assert made.json["entries"] == 5 and made.json["credentials"] == 1 and made.json["secrets"] == 1
    assert backup.stat().st_mode & 0o777 == 0o600
    with tarfile.open(backup) as tar:
        assert tar.getnames() == ["manifest.json", "secret.key", "registry.sqlite3"]
    assert PASSWORD.encode() not in backup.read_bytes()
    restored = jcsh(tmp_path / "new", "--json", "restore", str(backup))
    assert restored.code == 0, restored.err
    assert restored.json["replaced"] is False and restored.json["entries"] == 5
    assert _state(tmp_path / "new") == _state(home)
    assert (tmp_path / "new" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "new").iterdir() if p.name.startswith(".restore")] == []


def test_backup_to_stdout_and_restore_from_stdin(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_home(home)
    with open(tmp_path / "b", "wb") as out:
        made = subprocess.run(
            [sys.executable, "-m", "jcsh", "--home", str(home), "backup", "-"], stdout=out, stderr=subprocess.PIPE
        )
    assert made.returncode == 0 and b"backed up" in made.stderr
    with open(tmp_path / "b", "rb") as source:
        back = subprocess.run(
            [sys.executable, "-m", "jcsh", "--home", str(tmp_path / "new"), "restore", "-"],
            stdin=source,
            capture_output=True,
        )
    assert back.returncode == 0, back.stderr
    assert _state(tmp_path / "new") == _state(home)
    import gzip

    (tmp_path / "b.gz").write_bytes(gzip.compress((tmp_path / "b").read_bytes()))
    assert jcsh(tmp_path / "gz", "restore", str(tmp_path / "b.gz")).code == 0  # `backup - | gzip` reads back
    assert _state(tmp_path / "gz") == _state(home)


_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint = 0")  # committed, but left in the -wal file
conn.execute("INSERT INTO entry(path, parent, value) VALUES ('/only-in-wal', '/', 'committed')")
print("committed", flush=True)
time.sleep(30)
"""


@pytest.mark.timeout(60)
def test_backup_includes_committed_changes_still_in_the_wal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_home(home)
    db = home / "registry.sqlite3"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "committed\n"
        assert (home / "registry.sqlite3-wal").stat().st_size > 0
        assert b"only-in-wal" not in db.read_bytes()  # so copying the two files would miss it
        made = jcsh_process(home, "backup", str(tmp_path / "b"))
        assert made.code == 0, made.err
    finally:
        holder.kill()
        holder.wait()
    assert jcsh(tmp_path / "new", "restore", str(tmp_path / "b")).code == 0
    assert jcsh(tmp_path / "new", "registry", "get", "/only-in-wal").out == "committed\n"


def test_restore_into_a_home_that_holds_a_registry_needs_force(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    fill_home(source)
    assert jcsh(source, "backup", str(tmp_path / "b")).code == 0
    assert jcsh(target, "registry", "set", "/mine", "keep me").code == 0
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    refused = jcsh(target, "--json", "restore", str(tmp_path / "b"))
    assert refused.code == 2 and "already holds a registry" in refused.json["error"]["message"]
    assert "--force" in refused.json["error"]["message"]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    forced = jcsh(target, "--json", "restore", "--force", str(tmp_path / "b"))
    assert forced.code == 0 and forced.json["replaced"] is True
    assert _state(target) == _state(source)
    assert jcsh(target, "registry", "get", "/mine").code == 1


def test_a_home_with_an_empty_store_counts_as_empty(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    fill_home(source)
    assert jcsh(source, "backup", str(tmp_path / "b")).code == 0
    assert jcsh(target, "registry", "ls").code == 0  # any command leaves an empty store behind
    assert jcsh(target, "restore", str(tmp_path / "b")).code == 0


def _archive(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _forge(members: dict[str, bytes]) -> bytes:
    """A backup of these members with a manifest that matches them: only what is inside is wrong."""
    import hashlib
    import json

    manifest = json.loads(members["manifest.json"])
    manifest["members"] = {
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in members.items()
        if name != "manifest.json"
    }
    return _archive({**members, "manifest.json": json.dumps(manifest).encode()})


def _members(backup: Path) -> dict[str, bytes]:
    with tarfile.open(backup) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


@pytest.mark.parametrize(
    "how",
    ["truncated", "flipped", "not-a-tar", "zeros", "empty", "wrong-key", "no-key", "extra-member", "damaged-db"],
)
def test_a_bad_backup_changes_nothing(tmp_path: Path, how: str) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    fill_home(source)
    backup = tmp_path / "b"
    assert jcsh(source, "backup", str(backup)).code == 0
    good = backup.read_bytes()
    members = _members(backup)
    from cryptography.fernet import Fernet

    bad = {
        "truncated": good[: len(good) // 2],
        "flipped": good[:3000] + bytes([good[3000] ^ 0xFF]) + good[3001:],
        "not-a-tar": b"this is not a backup\n" * 100,
        "zeros": bytes(10240),
        "empty": b"",
        "wrong-key": None,
        "no-key": None,
        "extra-member": _archive({**members, "../../etc/passwd": b"x"}),
        "damaged-db": None,
    }[how]
    if how == "wrong-key":
        members["secret.key"] = Fernet.generate_key() + b"\n"
        bad = _forge(members)
    elif how == "no-key":
        del members["secret.key"]
        bad = _forge(members)
    elif how == "damaged-db":
        db = bytearray(members["registry.sqlite3"])
        db[4096] ^= 0xFF
        members["registry.sqlite3"] = bytes(db)
        bad = _forge(members)
    backup.write_bytes(bad)
    assert jcsh(target, "registry", "set", "/mine", "keep me").code == 0
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    ran = jcsh_process(target, "restore", "--force", str(backup))
    clean(ran)
    assert ran.code == 2, (how, ran)
    assert len(ran.err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before, how
    assert jcsh(target, "registry", "get", "/mine").out == "keep me\n"


def test_dev_zero_as_a_backup_to_restore(tmp_path: Path) -> None:
    ran = jcsh_process(tmp_path / "h", "restore", "/dev/zero")
    clean(ran)
    assert ran.code == 2 and "is not a jcsh backup" in ran.err
    (tmp_path / "notes.txt").write_text("notes\n")
    notes = jcsh(tmp_path / "h", "restore", str(tmp_path / "notes.txt"))
    assert notes.code == 2 and notes.err.startswith(f"jcsh: {tmp_path / 'notes.txt'} is not a jcsh backup (")


def test_a_backup_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    import sqlite3

    source, target = tmp_path / "source", tmp_path / "target"
    fill_home(source)
    assert jcsh(source, "backup", str(tmp_path / "b")).code == 0
    members = _members(tmp_path / "b")
    db = tmp_path / "db"
    db.write_bytes(members["registry.sqlite3"])
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    members["registry.sqlite3"] = db.read_bytes()
    (tmp_path / "b").write_bytes(_forge(members))
    ran = jcsh(target, "--json", "restore", str(tmp_path / "b"))
    assert ran.code == 74 and "written by a newer release of jcsh (schema version 7" in ran.json["error"]["message"]
    assert not (target / "registry.sqlite3").exists() and not (target / "secret.key").exists()


def test_backup_refuses_a_terminal_and_a_missing_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_home(home)
    missing = jcsh(home, "backup", str(tmp_path / "nope" / "b"))
    assert missing.code == 2 and "does not exist" in missing.err
    both = jcsh(home, "--json", "backup", "-")
    assert both.code == 2 and "--json" in both.json["error"]["message"]
    import pty

    main, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "jcsh", "--home", str(home), "backup", "-"],
            stdout=secondary,
            stderr=subprocess.PIPE,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(main)
        os.close(secondary)
    assert proc.returncode == 2 and b"standard output is a terminal" in proc.stderr
    main, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "jcsh", "--home", str(tmp_path / "new"), "restore", "-"],
            stdin=secondary,
            capture_output=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(main)
        os.close(secondary)
    assert proc.returncode == 2 and b"standard input is a terminal" in proc.stderr


def test_a_second_backup_replaces_the_first_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_home(home)
    backup = tmp_path / "b"
    assert jcsh(home, "backup", str(backup)).code == 0
    assert jcsh(home, "registry", "set", "/later", "1").code == 0
    assert jcsh(home, "backup", str(backup)).code == 0
    assert jcsh(tmp_path / "new", "restore", str(backup)).code == 0
    assert jcsh(tmp_path / "new", "registry", "get", "/later").out == "1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "home", "new"]
