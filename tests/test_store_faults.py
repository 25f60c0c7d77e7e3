"""Real store faults: a full disk, a read-only home, no permission, a lock held too long, a lost
registry, a newer schema. Each gives one line naming the file and the cause, exit 74, no traceback."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jcsh.runtime.store import migrations
from tests.support.cli import JCSH, Ran, jcsh, jcsh_process
from tests.support.faults import clean, fill_disk, fill_home, need_root, read_only_view, tmpfs

ROOT = str(Path(__file__).resolve().parent.parent)
SMTP = ("--protocol", "smtp", "--endpoint", "smtp.example.test", "--virtual-user", "default")


def _store_error(ran: Ran, cause: str) -> dict:
    clean(ran)
    assert ran.code == 74, ran
    error = ran.json["error"]
    assert (error["kind"], error["cause"]) == ("store", cause), error
    assert error["path"] in error["message"]
    return error


def _human_store_error(ran: Ran, why: str) -> None:
    clean(ran)
    assert ran.code == 74, ran
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and why in lines[0], ran.err


# -- a full disk ------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_full_disk_refuses_writes_with_74_and_loses_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs") as fs:
        home = fs / "home"
        fill_home(home)
        before = jcsh(home, "registry", "export").out
        filler = fill_disk(fs)
        writes = [
            ("registry", "set", "/configuration/mail/Port", "587"),
            ("registry", "rm", "/u/grüße"),
            ("credential", "protocol", "add", "X509_TrustedCertificate"),
            ("credential", "rekey"),
        ]
        for args in writes:
            _store_error(jcsh_process(home, "--json", *args), "disk-full")
        _human_store_error(jcsh_process(home, "registry", "set", "/a", "1"), "the disk is full")
        # Reads still answer: the file alone holds the store, so it is read without SQLite's -shm.
        for args, shown in (
            (("registry", "get", "/u/grüße"), "☃ 日本語\n"),
            (("credential", "ls"), "smtp.example.test"),
            (("registry", "export"), '"grüße"'),
            (("registry", "check"), f"ok (schema version {migrations.latest_version()}, 5 entries, 1 credentials)"),
        ):
            ran = jcsh_process(home, *args)
            clean(ran)
            assert ran.code == 0 and shown in ran.out, ran
        # A backup onto the full disk fails whole: no partial file left behind.
        _store_error(jcsh_process(home, "--json", "backup", str(fs / "b.tar")), "disk-full")
        assert sorted(p.name for p in fs.iterdir()) == ["filler", "home"]
        filler.unlink()
        assert jcsh(home, "registry", "export").out == before
        assert jcsh(home, "registry", "check").code == 0


# -- a read-only home -------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_read_only_home_serves_every_read_and_refuses_writes(tmp_path: Path) -> None:
    from jcsh.runtime.sink import Sink, SinkConfig

    source = tmp_path / "rw"
    fill_home(source / "home")
    with Sink(SinkConfig(port=0, mode="starttls")) as sink:
        for key, value in (("Server", sink.host), ("Port", str(sink.port)), ("Transport", "smtp")):
            assert jcsh(source / "home", "registry", "set", f"/configuration/mail/{key}", value).code == 0
        expected = jcsh(source / "home", "registry", "export").out
        with read_only_view(source, tmp_path / "ro") as view:
            home = view / "home"
            assert jcsh_process(home, "registry", "export").out == expected
            assert jcsh_process(home, "registry", "get", "/u/grüße").out == "☃ 日本語\n"
            assert "grüße = ☃ 日本語" in jcsh_process(home, "registry", "ls", "/u").out
            assert jcsh_process(home, "--json", "credential", "ls").json["credentials"][0]["has_secret"] is True
            settings = jcsh_process(home, "--json", "mail", "settings")
            assert settings.code == 0 and settings.json["server"]["value"] == sink.host
            probe = jcsh_process(home, "--json", "tls", "probe", "--timeout", "5")
            assert probe.code == 0 and probe.json["port"] == sink.port, probe
            script = jcsh_process(home, "-c", 'print(registry.get("/u/grüße"), len(credentials.list()))')
            assert (script.code, script.out) == (0, "☃ 日本語 1\n"), script
            assert jcsh_process(home, "registry", "check").code == 0
            assert jcsh_process(home, "registry", "get", "/nope").code == 1  # a miss is still a miss
            for args in (
                ("registry", "set", "/a", "1"),
                ("registry", "import", "-"),
                ("credential", "protocol", "add", "X509_TrustedCertificate"),
                ("credential", "rm", *SMTP),
            ):
                _store_error(jcsh_process(home, "--json", *args, stdin='{"path": "/x", "children": {}}'), "read-only")
            _human_store_error(jcsh_process(home, "registry", "set", "/a", "1"), "the home is read-only")
            refused = jcsh_process(home, "-c", 'registry.set("/a", "1")')
            assert refused.code == 74 and refused.err.startswith('File "<string>", line 1: cannot write ')
            assert refused.err.rstrip().endswith("the home is read-only")
            assert "Traceback" not in refused.err and len(refused.err.strip().splitlines()) == 1
    assert jcsh(source / "home", "registry", "export").out == expected


_WITHOUT_OVERRIDE = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def test_a_home_another_user_keeps_private_is_permission_denied(tmp_path: Path) -> None:
    need_root()
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run jcsh as root without its permission override")
    home = tmp_path / "home"
    fill_home(home)
    for path in (home, *home.iterdir()):
        os.chown(path, 65534, 65534)
    # root without CAP_DAC_OVERRIDE is held to the file modes, as any other user would be
    denied = subprocess.run(
        [*_WITHOUT_OVERRIDE, *JCSH, "--home", str(home), "--json", "registry", "get", "/u/grüße"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
        timeout=60,
    )
    ran = Ran(denied.returncode, denied.stdout, denied.stderr)
    _store_error(ran, "permission-denied")
    assert "is owned by another user (nobody)" in ran.err


# -- locked, lost, newer, not a folder ---------------------------------------------------------------

_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep(30)
"""


@pytest.mark.timeout(60)
def test_a_store_locked_beyond_the_timeout_is_74_locked(home: Path) -> None:
    fill_home(home)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(home / "registry.sqlite3")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        start = time.monotonic()
        ran = jcsh_process(home, "--json", "registry", "set", "/a", "1", env={"JCSH_STORE_TIMEOUT": "0.5"})
        assert time.monotonic() - start < 10
        error = _store_error(ran, "locked")
        assert "locked by another process (waited 0.5 s)" in error["message"]
        # Reads are not blocked by a writer (WAL).
        assert jcsh_process(home, "registry", "get", "/u/grüße").out == "☃ 日本語\n"
    finally:
        holder.kill()
        holder.wait()
    assert jcsh(home, "registry", "get", "/a").code == 1
    ran = jcsh_process(home, "registry", "ls", env={"JCSH_STORE_TIMEOUT": "soon"})
    assert ran.code == 2 and "JCSH_STORE_TIMEOUT must be a number of seconds" in ran.err


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_a_lost_registry_next_to_its_key_is_refused(home: Path, how: str) -> None:
    fill_home(home)
    db = home / "registry.sqlite3"
    db.unlink()
    if how == "empty":
        db.touch()
    ran = jcsh(home, "--json", "registry", "ls")
    error = _store_error(ran, "missing")
    assert "the registry was lost or replaced; restore it with `jcsh restore FILE`" in error["message"]
    assert db.exists() == (how == "empty") and (how == "missing" or db.stat().st_size == 0)  # nothing created


def test_a_newer_schema_is_refused_and_left_untouched(home: Path) -> None:
    fill_home(home)
    db = home / "registry.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = db.read_bytes()
    for args in (("registry", "get", "/u/grüße"), ("registry", "set", "/a", "1"), ("credential", "ls")):
        ran = jcsh_process(home, "--json", *args)
        error = _store_error(ran, "newer-release")
        assert f"schema version 99; this release knows up to {migrations.latest_version()}" in error["message"]
    assert db.read_bytes() == before


def test_a_home_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    ran = jcsh(tmp_path / "file", "--json", "registry", "ls")
    assert _store_error(ran, "missing")["message"].endswith("is not a folder")


def test_home_warnings_once_per_command_and_in_the_doctor(home: Path) -> None:
    fill_home(home)
    assert jcsh(home, "registry", "ls").err == ""
    os.chmod(home, 0o750)
    os.chmod(home / "secret.key", 0o644)
    ran = jcsh(home, "registry", "get", "/u/grüße")
    assert ran.code == 0 and ran.out == "☃ 日本語\n"
    lines = ran.err.splitlines()
    assert lines == [
        f"jcsh: the home {home} can be opened by its group or others (mode 0750); run `chmod 700 {home}`",
        f"jcsh: {home}/secret.key has mode 0644, not 0600; run `chmod 600 {home}/secret.key`",
    ]
    doctor = jcsh(home, "--json", "mail", "doctor")
    assert doctor.err == ""
    messages = [f["message"] for f in doctor.json["findings"] if f["level"] == "warning"]
    assert any("can be opened by its group or others" in m for m in messages)
    assert any("not 0600" in m for m in messages)
    if os.geteuid() == 0:
        os.chmod(home, 0o700)
        os.chmod(home / "secret.key", 0o600)
        os.chown(home, 65534, -1)
        assert "is owned by another user (nobody)" in jcsh(home, "registry", "ls").err


def test_uncaught_store_error_ends_a_script_with_74_and_one_line(home: Path) -> None:
    fill_home(home)
    script = home.parent / "w.jcs"
    script.write_text('print("before")\nregistry.set("/a", "1")\n')
    db = home / "registry.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    ran = jcsh_process(home, "--timeout", "20", "run", str(script))  # the store opens at the script's first call
    assert ran.out == "before\n"
    _human_store_error(ran, "written by a newer release of jcsh")
    assert ran.err.startswith(f'File "{script}", line 2: {home}/registry.sqlite3 was written by a newer release')
    code = "try:\n    registry.get('/u')\nexcept JcshError as e:\n    print(e.kind, e.exit_code)"
    caught = jcsh_process(home, "--timeout", "20", "-c", code)
    assert (caught.code, caught.out) == (0, "store 74\n"), caught
