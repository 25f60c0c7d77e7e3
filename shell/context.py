"""What a command runs with: options, streams, and the stores, opened on first use."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from jcsh.runtime.home import HomeWarning, ensure_home, home_warnings, resolve_home

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

    from jcsh.runtime.credentials import CredentialStore
    from jcsh.runtime.registry import Registry
    from jcsh.runtime.sandbox.grants import Grants

__all__ = ["Context"]


def _isatty(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class _EscapingOutput(io.TextIOBase):
    """Writes JSON text with unsafe characters as \\uXXXX escapes (each character on its own: chunk-safe)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        from jcsh.runtime.controls import escape_json_text

        self._out.write(escape_json_text(text))
        return len(text)

    def flush(self) -> None:
        self._out.flush()


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
        return _isatty(self.out) and os.environ.get("TERM") != "dumb"

    @property
    def interactive(self) -> bool:
        return _isatty(self.stdin)

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
            from jcsh.runtime.home import rekey_leftovers
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

    def document_output(self) -> TextIO:
        """Where a streamed JSON document goes (an export): stdout as it is to a file or pipe; on a
        terminal through the escaping emit_document does, chunk by chunk."""
        return _EscapingOutput(self.out) if _isatty(self.out) else self.out  # type: ignore[return-value]

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
            self._credentials = None
