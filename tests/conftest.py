"""Fixtures shared by every test file: a test PKI, and a fresh jcsh home with its stores."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# `tests.support` must import under a bare `pytest` too, not only `python -m pytest` (which adds the cwd).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from jcsh.runtime.credentials import CredentialStore  # noqa: E402
from jcsh.runtime.registry import Registry, open_registry  # noqa: E402
from tests.support.pki import TestCA  # noqa: E402
from tests.support.terminal import Terminal  # noqa: E402


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """The test root CA (clients trust it in the tests that say so)."""
    return TestCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A second CA nobody trusts: its leaves are "untrusted issuer"."""
    return TestCA(tmp_path_factory.mktemp("other-pki"), name="jcsh Untrusted Root CA")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh, empty jcsh home folder (mode 0700)."""
    folder = tmp_path / "home"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def registry(home: Path) -> Iterator[Registry]:
    reg = open_registry(home)
    yield reg
    reg.close()


@pytest.fixture
def credentials(registry: Registry, home: Path) -> CredentialStore:
    return CredentialStore(registry, home)


@pytest.fixture
def terminal(home: Path) -> Iterator[Callable[..., Terminal]]:
    """Start jcsh under a pseudo-terminal (any number of times); each is closed at the end."""
    opened: list[Terminal] = []

    def start(*args: str, **kw: str) -> Terminal:
        t = Terminal(home, *args, **kw)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()
