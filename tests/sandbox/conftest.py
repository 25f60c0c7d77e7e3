"""Sessions over a fresh home: restricted (both layers) and unrestricted (the process layer alone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jcsh.runtime.credentials import CredentialStore
from jcsh.runtime.registry import open_registry
from jcsh.runtime.sandbox.client import Session
from jcsh.runtime.sandbox.host import Host
from tests.sandbox.helpers import Outside


def _session(
    folder: Path, *, restricted: bool, timeout: float = 5.0, rlimits: dict[str, int] | None = None
) -> Iterator[Session]:
    home = folder / "home"
    home.mkdir(mode=0o700)
    registry = open_registry(home)
    session = Session(
        Host(registry, CredentialStore(registry, home), home), timeout=timeout, restricted=restricted, rlimits=rlimits
    )
    session.start()
    yield session
    session.close()
    registry.close()


@pytest.fixture(scope="module")
def restricted_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """One restricted worker for a whole module (respawned by the session when a payload kills it)."""
    yield from _session(tmp_path_factory.mktemp("restricted"), restricted=True)


@pytest.fixture(scope="module")
def unrestricted_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """A worker without the RestrictedPython layer: only the process layer contains it."""
    yield from _session(tmp_path_factory.mktemp("unrestricted"), restricted=False)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """A fresh restricted worker with a short timeout, for tests that change or kill it."""
    yield from _session(tmp_path, restricted=True, timeout=1.0)


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Outside]:
    watched = tmp_path / "outside"
    watched.mkdir()
    o = Outside(watched)
    yield o
    o.close()
