"""The home folder: where the registry, the key and the history live."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resolve_home", "ensure_home"]

APP_NAME = "jcsh"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--home`, else `$JCSH_HOME`, else the platform's user data folder."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get("JCSH_HOME")
    if env:
        return Path(env).expanduser().absolute()
    import platformdirs  # only when needed: it is not free at start-up

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def ensure_home(home: Path) -> Path:
    """Create the folder (mode 0700) if missing; an existing folder keeps its mode."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home
