"""What a command runs with: options, streams, and the stores, opened on first use."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from jcsh.runtime.home import HomeWarning, ensure_home, home_warnings, resolve_home

if TYPE_CHECKING:
    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import Registry

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
        self._home: Path | None = None
        self._registry: Registry | None = None
        self._credentials: CredentialStore | None = None
        # What is unsafe about the home (other users can reach it ...): said once, on stderr, when the
        # home is first used; `mail doctor` sets this False first and lists them as findings instead.
        self.home_warnings_on_stderr = True
        self.home_problems: list[HomeWarning] = []

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
            home = ensure_home(resolve_home(self.home_arg))
            self.home_problems = home_warnings(home)
            self._home = home
            if self.home_warnings_on_stderr:
                for problem in self.home_problems:
                    self.warn(problem.line())
        return self._home

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from jcsh.runtime.keyfile import rekey_leftovers
            from jcsh.runtime.registry import open_registry

            home = self.home
            registry = open_registry(home)
            if rekey_leftovers(home):  # a `credential rekey` stopped part-way: finish or undo it, and say so
                self._recover_rekey(registry)
            self._registry = registry
        return self._registry

    def _recover_rekey(self, registry: Registry) -> None:
        from jcsh.runtime.errors import StoreError
        from jcsh.runtime.keyfile import recover_rekey

        try:
            done = recover_rekey(registry.store, self.home)
        except StoreError as e:
            if not registry.store.read_only:
                registry.close()
                raise
            done = f"{e.message} (the home cannot be written, so it was left as it is)"
        if done:
            self.warn(done)

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
            self._credentials = None
