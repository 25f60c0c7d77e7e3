"""The supported-protocols check cached in the home: reused, re-done when stale, never a reason to fail."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.sink import Sink, SinkConfig
from jcsh.runtime.tls import protocol_cache
from jcsh.runtime.tls.protocol_cache import cache_path, cached_protocols
from jcsh.runtime.tls.protocols import supported_protocols
from tests.support.cli import jcsh


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the real supported-protocols checks the cache lets through."""
    calls: list[int] = []

    def counted() -> object:
        calls.append(1)
        return supported_protocols()

    monkeypatch.setattr(protocol_cache, "supported_protocols", counted)
    return calls


def test_the_second_probe_process_reads_the_check_from_the_home(tmp_path: Path, checks: list[int]) -> None:
    first = cached_protocols(tmp_path)
    assert cache_path(tmp_path).is_file() and len(checks) == 1
    again = cached_protocols(tmp_path)
    assert len(checks) == 1  # answered from the file
    assert (again.names, again.default_enabled, again.reasons) == (first.names, first.default_enabled, first.reasons)
    assert again.openssl == ssl.OPENSSL_VERSION
    assert oct(cache_path(tmp_path).parent.stat().st_mode & 0o777) == "0o700"


def test_another_openssl_version_means_a_fresh_check(tmp_path: Path, checks: list[int]) -> None:
    cached_protocols(tmp_path)
    path = cache_path(tmp_path)
    doc = json.loads(path.read_text())
    doc["key"]["openssl"] = "OpenSSL 0.9.8 (another build)"
    doc["protocols"] = ["SSLv3"]  # what that other build said must not leak into this one
    path.write_text(json.dumps(doc))
    report = cached_protocols(tmp_path)
    assert len(checks) == 2 and report.names == supported_protocols().names
    assert json.loads(path.read_text())["key"]["openssl"] == ssl.OPENSSL_VERSION  # rewritten


def test_an_edited_openssl_configuration_means_a_fresh_check(
    tmp_path: Path, checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "openssl.cnf"
    conf.write_text("# nothing\n")
    monkeypatch.setenv("OPENSSL_CONF", str(conf))
    home = tmp_path / "home"
    cached_protocols(home)
    cached_protocols(home)
    assert len(checks) == 1
    conf.write_text("# something else, e.g. a new MinProtocol\n")
    cached_protocols(home)
    assert len(checks) == 2


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff garbage",
        b'{"format": 1, "key": ',  # cut short
        b"[]",
        b'{"format": 1}',
        b"[" * 100_000,  # too deep for the parser, and too big
        "SAME_KEY_BAD_NAMES",
        "SAME_KEY_DEFAULT_NOT_SUPPORTED",
    ],
)
def test_a_damaged_cache_file_is_ignored_and_rewritten(tmp_path: Path, checks: list[int], content: bytes | str) -> None:
    path = cache_path(tmp_path)
    if isinstance(content, str):  # a well-formed file made under this key, with impossible contents
        cached_protocols(tmp_path)
        doc = json.loads(path.read_text())
        if content == "SAME_KEY_BAD_NAMES":
            doc["protocols"] = ["TLSv9", 3]
        else:
            doc["default_enabled"] = ["SSLv3", *doc["protocols"]]
            doc["reasons"].pop("SSLv3", None)
        content = json.dumps(doc).encode()
        checks.clear()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    report = cached_protocols(tmp_path)
    assert report.names == supported_protocols().names and len(checks) == 1
    assert json.loads(path.read_text())["protocols"] == report.names  # replaced by a good one
    cached_protocols(tmp_path)
    assert len(checks) == 1


def test_a_home_where_the_cache_cannot_be_written_still_answers(tmp_path: Path, checks: list[int]) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder would go")
    assert cached_protocols(tmp_path).names == supported_protocols().names
    assert cached_protocols(tmp_path).names == supported_protocols().names
    assert len(checks) == 2  # no cache, so each process checks, as before the cache existed


@contextlib.contextmanager
def _small_tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(where)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_full_or_read_only_home_never_fails_the_check(tmp_path: Path, checks: list[int], fault: str) -> None:
    with _small_tmpfs(tmp_path / "home") as home:
        (home / "cache").mkdir()
        if fault == "full":
            with contextlib.suppress(OSError), open(home / "filler", "wb") as f:
                while True:
                    f.write(b"x" * 4096)
                    f.flush()
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        report = cached_protocols(home)
        assert report.names == supported_protocols().names
        assert not cache_path(home).exists()
        assert not [p for p in (home / "cache").iterdir() if p.name.startswith(".tls-protocols-")]  # no leftovers


@pytest.mark.timeout(30)
def test_tls_probe_ignores_a_corrupt_cache_and_leaves_a_good_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = cache_path(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{not json")
    with Sink(SinkConfig(port=0, mode="starttls")) as sink:
        ran = jcsh(home, "tls", "probe", f"127.0.0.1:{sink.port}", "--starttls", "--json")
    assert ran.code == 0, ran.err
    assert ran.json["protocols"]["TLSv1.2"] is True
    assert json.loads(path.read_text())["protocols"] == supported_protocols().names


def test_tls_protocols_checks_afresh_and_refreshes_the_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = cache_path(home)
    path.parent.mkdir(parents=True)
    path.write_text("stale")
    ran = jcsh(home, "tls", "protocols", "--json")
    assert ran.code == 0 and ran.json["protocols"] == supported_protocols().names
    assert json.loads(path.read_text())["protocols"] == supported_protocols().names
