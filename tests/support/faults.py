"""Real store faults for tests: a tmpfs filled to the last byte, a read-only bind mount, a home with data."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cli import Ran, jcsh

__all__ = ["PASSWORD", "fill_home", "need_root", "tmpfs", "read_only_view", "fill_disk", "clean"]

PASSWORD = "pässwörd ✓ 🔑"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root; this test runs the real fault or not at all")


def fill_home(home: Path) -> None:
    """Entries (unicode included), the smtp protocol and a password credential (so a key)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, value in (("/configuration/mail/Server", "smtp.example.test"), ("/u/grüße", "☃ 日本語")):
        assert jcsh(home, "registry", "set", path, value).code == 0
    assert jcsh(home, "credential", "protocol", "add", "smtp").code == 0
    added = jcsh(
        home,
        "credential", "add", "--protocol", "smtp", "--endpoint", "smtp.example.test",
        "--virtual-user", "default", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.code == 0, added.err


def clean(ran: Ran) -> None:
    """What every fault must look like: no traceback, nothing that looks like a crash."""
    text = ran.out + ran.err
    assert "Traceback" not in text and "internal error" not in text, text
    assert PASSWORD not in text


@contextmanager
def _mounted(args: list[str], target: Path) -> Iterator[Path]:
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


@contextmanager
def tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    """A small tmpfs of our own, unmounted afterwards."""
    need_root()
    with _mounted(["-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs"], where) as mounted:
        yield mounted


@contextmanager
def read_only_view(source: Path, where: Path) -> Iterator[Path]:
    """source, seen read-only through a bind mount at where."""
    need_root()
    with _mounted(["--bind", str(source)], where) as mounted:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True, capture_output=True)
        yield mounted


def fill_disk(folder: Path) -> Path:
    """Write a file until the file system has not one byte left; returns it (delete it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0
    return filler
