"""The REPL's input line: a prompt_toolkit PromptSession with Python highlighting, `%` commands
highlighted as commands, Enter that runs only complete statements, auto-indent and history."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prompt_toolkit.completion import Completer
from prompt_toolkit.document import Document
from prompt_toolkit.enums import DEFAULT_BUFFER, EditingMode
from prompt_toolkit.filters import Condition, emacs_insert_mode, has_focus, has_selection, vi_insert_mode
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import Lexer, PygmentsLexer
from prompt_toolkit.shortcuts import PromptSession
from prompt_toolkit.styles import Style

from jcsh.shell.history import keep_in_history, open_history_file
from jcsh.shell.prompt_text import CONTINUATION, PROMPT
from jcsh.shell.statement import INDENT, is_complete, next_indent

__all__ = ["build_prompt", "JcshLexer", "RedactingHistory"]


_STYLE = {
    "prompt": "ansigreen bold",
    "continuation": "ansigreen",
    "magic": "ansicyan bold",
    "magic.option": "ansiyellow",
    "magic.arg": "",
}
_TOOLBAR_COLORS = {  # without colour the toolbar keeps prompt_toolkit's reverse video
    "bottom-toolbar": "noreverse bg:ansigray ansiblack",
    "bottom-toolbar.ok": "bg:ansigray ansigreen bold",
    "bottom-toolbar.failed": "bg:ansigray ansired bold",
}


class RedactingHistory(FileHistory):
    """FileHistory (created 0600) that does not store entries holding a literal secret."""

    def __init__(self, filename: str | Path) -> None:
        try:
            open_history_file(Path(filename))
        except OSError:
            pass  # a read-only or vanished home: the session goes on without saving history
        super().__init__(filename)

    def store_string(self, string: str) -> None:
        if keep_in_history(string):
            try:
                super().store_string(string)
            except OSError:
                pass  # history is best effort, as append_history's is: never the end of a session


class JcshLexer(Lexer):
    """Python through pygments; a `%` line as a command, its options and its arguments.

    Compiling pygments' Python patterns takes tens of milliseconds, so `load()` does it in a
    thread once the prompt is on screen; until then text shows unhighlighted for an instant.
    """

    def __init__(self) -> None:
        self._python: PygmentsLexer | None = None
        self._loading: threading.Thread | None = None
        self.on_ready: Callable[[], object] = lambda: None
        self.then: Sequence[Callable[[], object]] = ()  # more warm-ups for the same thread

    def load(self, *, background: bool = True) -> None:
        if self._loading is not None or self._python is not None:
            return
        if not background:
            self._build()
            return
        self._loading = threading.Thread(target=self._build, name="jcsh-warmup", daemon=True)
        self._loading.start()

    def _build(self) -> None:
        from pygments.lexers.python import PythonLexer

        self._python = PygmentsLexer(PythonLexer)
        try:
            self.on_ready()
        except RuntimeError:  # no prompt is running any more (between prompts, or leaving): nothing to redraw
            pass
        for warm in self.then:
            try:
                warm()
            except Exception:
                pass

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        lines = document.lines
        if not document.text.lstrip().startswith("%"):
            if self._python is None:
                return lambda number: [("", lines[number])] if number < len(lines) else []
            return self._python.lex_document(document)

        def line(number: int) -> StyleAndTextTuples:
            text = lines[number]
            fragments: StyleAndTextTuples = []
            for part in re.split(r"(\s+)", text):
                if not part or part.isspace():
                    fragments.append(("", part))
                elif number == 0 and part.startswith("%") and not any(f[1].strip() for f in fragments):
                    fragments.append(("class:magic", part))
                elif part.startswith("-"):
                    fragments.append(("class:magic.option", part))
                else:
                    fragments.append(("class:magic.arg", part))
            return fragments

        return line


def _key_bindings() -> KeyBindings:
    kb = KeyBindings()
    default_focused = has_focus(DEFAULT_BUFFER)
    insert_mode = emacs_insert_mode | vi_insert_mode

    @Condition
    def in_indentation() -> bool:
        from prompt_toolkit.application import get_app

        before = get_app().current_buffer.document.current_line_before_cursor
        return before == "" or before.isspace()

    @kb.add("enter", filter=default_focused & ~has_selection)
    def _(event: KeyPressEvent) -> None:
        """Run a complete statement; otherwise start the next line, indented."""
        buffer = event.current_buffer
        if buffer.complete_state and buffer.complete_state.current_completion:
            buffer.complete_state = None  # Enter picks the highlighted completion
            return
        document = buffer.document
        # In insert mode Enter mid-text splits the line; in vi navigation mode it runs the input.
        at_end = not document.text_after_cursor.strip() or not insert_mode()
        if at_end and is_complete(document.text):
            text = document.text.rstrip()  # the blank line that ended a block is not part of it
            if text != document.text:
                buffer.document = Document(text, len(text))
            buffer.validate_and_handle()
        elif insert_mode():
            buffer.insert_text("\n" + next_indent(document.text_before_cursor))

    @kb.add("tab", filter=default_focused & insert_mode & in_indentation & ~has_selection)
    def _(event: KeyPressEvent) -> None:
        """Tab in the indentation indents; elsewhere it completes."""
        event.current_buffer.insert_text(INDENT)

    @kb.add("backspace", filter=default_focused & insert_mode & in_indentation & ~has_selection)
    def _(event: KeyPressEvent) -> None:
        """Backspace in the indentation removes one level."""
        before = event.current_buffer.document.current_line_before_cursor
        width = len(before) % len(INDENT) or len(INDENT)
        event.current_buffer.delete_before_cursor(min(width, len(before)) or 1)

    return kb


def build_prompt(
    *,
    history: Path | None,
    completer: Completer | None,
    toolbar: Callable[[], Any] | None,
    vi: bool = False,
    color: bool = True,
    warmups: Sequence[Callable[[], object]] = (),
    **io: Any,
) -> PromptSession[str]:
    """The PromptSession of the REPL; after its first render a thread loads the highlighter and
    runs `warmups` (caches completion needs). `io` may give `input`/`output` (tests)."""
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.output import ColorDepth

    lexer = JcshLexer()
    lexer.then = warmups
    session: PromptSession[str] = PromptSession(
        message=[("class:prompt", PROMPT)],
        prompt_continuation=lambda width, line, soft: [("class:continuation", CONTINUATION)],
        multiline=True,
        lexer=lexer,
        completer=completer,
        complete_while_typing=True,
        auto_suggest=AutoSuggestFromHistory(),
        history=RedactingHistory(history) if history else None,
        enable_history_search=False,
        key_bindings=_key_bindings(),
        editing_mode=EditingMode.VI if vi else EditingMode.EMACS,
        bottom_toolbar=toolbar,
        style=Style.from_dict({**_STYLE, **(_TOOLBAR_COLORS if color else {})}),
        color_depth=None if color else ColorDepth.DEPTH_1_BIT,
        include_default_pygments_style=color,
        **io,
    )
    lexer.on_ready = session.app.invalidate  # thread-safe: redraw the current text highlighted
    session.app.after_render += lambda app: lexer.load()
    return session
