"""What a command runs with: options, streams, and the stores, opened on first use."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from jcsh.runtime.home import ensure_home, resolve_home

if TYPE_CHECKING:
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import Registry
    from jcsh.runtime.sandbox.grants import Grants

__all__ = ["Context"]


class Context:
    """Options and streams of one command, shared by the command line and the REPL."""

    # A plain class, not a dataclass: this is on every command's start-up path (see docs/decisions.md).
    def __init__(
        self,
        *,
        home_arg: str | None = None,
        json: bool = False,
        no_color: bool = False,
        timeout: float | None = None,
        vi: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
        stdin: TextIO | None = None,
        session: Any = None,
        grants: Grants | None = None,
    ) -> None:
        self.home_arg = home_arg
        self.json = json
        self.no_color = no_color
        self.timeout = timeout
        self.vi = vi  # REPL key bindings
        self.out: TextIO = sys.stdout if out is None else out
        self.err: TextIO = sys.stderr if err is None else err
        self.stdin: TextIO = sys.stdin if stdin is None else stdin
        self.session = session  # the REPL's sandbox session, when a command runs inside one
        self.grants = grants  # --allow-config / --allow-net for scripts; None: the defaults
        self._home: Path | None = None
        self._registry: Registry | None = None
        self._credentials: CredentialStore | None = None

    def __repr__(self) -> str:
        return f"Context(home_arg={self.home_arg!r}, json={self.json})"

    @property
    def color(self) -> bool:
        if self.json or self.no_color or os.environ.get("NO_COLOR"):
            return False
        return bool(getattr(self.out, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"

    @property
    def interactive(self) -> bool:
        return bool(getattr(self.stdin, "isatty", lambda: False)())

    @property
    def home(self) -> Path:
        if self._home is None:
            self._home = ensure_home(resolve_home(self.home_arg))
        return self._home

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from jcsh.runtime.registry import open_registry

            self._registry = open_registry(self.home)
        return self._registry

    @property
    def credentials(self) -> CredentialStore:
        if self._credentials is None:
            from jcsh.runtime.credentials import CredentialStore

            self._credentials = CredentialStore(self.registry, self.home)
        return self._credentials

    def emit(self, data: dict[str, Any], text: str | None) -> None:
        """Print the result: the JSON document with --json, else the human text."""
        if self.json:
            import json  # lazily: most runs never print JSON

            self.out.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
        elif text:
            self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    def warn(self, message: str) -> None:
        """A diagnostic on stderr (never on stdout, so --json stays one document)."""
        self.err.write(f"jcsh: {message}\n")
        self.err.flush()

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None
