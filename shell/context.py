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


def _isatty(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


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
        return _isatty(self.out) and os.environ.get("TERM") != "dumb"

    @property
    def interactive(self) -> bool:
        return _isatty(self.stdin)

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

    # Output: every byte jcsh writes for a person goes through one of these methods, which pass it
    # through render.human() (the sanitizer) or render.json_document(); tests/test_sanitize.py
    # checks that no command writes to a stream another way.

    def emit(self, data: dict[str, Any], text: str | None, *, exact: bool = False) -> None:
        """Print the result: the JSON document with --json, else the human text.

        exact: a value the caller may capture (`$(jcsh registry get ...)`): written as it is
        when stdout is not a terminal, sanitized like any other text when it is.
        """
        from jcsh.shell.render import human, json_document

        if self.json:
            self.out.write(json_document(data))
        elif text:
            text = text if exact and not _isatty(self.out) else human(text)
            self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    def emit_document(self, document: str) -> None:
        """A JSON document that is the result itself (an export): exact to a file or pipe; on a
        terminal with unsafe characters as \\uXXXX escapes, which decode to the same document."""
        from jcsh.runtime.controls import escape_json_text

        self.out.write(document if not _isatty(self.out) else escape_json_text(document))
        self.out.flush()

    def warn(self, message: str) -> None:
        """A diagnostic on stderr (never on stdout, so --json stays one document)."""
        self.show(f"jcsh: {message}\n", err=True)

    def show(self, text: str, *, err: bool = False) -> None:
        """Human text written as it is given (no newline added): a prompt, a line of a stream."""
        from jcsh.shell.render import human

        stream = self.err if err else self.out
        stream.write(human(text))
        stream.flush()

    def script_output(self, stream: str, text: str) -> None:
        """What a script wrote to jcsOut/jcsErr: sanitized on a terminal, exact to a file or pipe."""
        target = self.err if stream == "err" else self.out
        if _isatty(target):
            from jcsh.shell.render import human

            text = human(text)
        target.write(text)
        target.flush()

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None
