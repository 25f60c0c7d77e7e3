"""Tab completion for the REPL; it reads names and static descriptions and never runs user code.

Sources: the script namespace (names only, asked from the worker), the members of the preloaded
objects (stdlib.describe, with their one-line docs), the import allowlist, registry paths inside
`registry.get("/...`, and the `%` commands with their argparse options.
"""

from __future__ import annotations

import argparse
import keyword
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from jcsh.shell.render import one_line
from jcsh.shell.statement import scan

__all__ = ["Sources", "JcshCompleter", "RegistryEntry"]

RegistryEntry = tuple[str, bool, "str | None"]  # (name, has children, value)

_REGISTRY_CALL = re.compile(
    r"\bregistry\s*\.\s*(?:get|set|delete|list|walk|value|children|exists)\s*\(\s*[rRuU]?(['\"])(/[^'\"]*)$"
)
_IMPORT = re.compile(
    r"^\s*(?:import|from)\s+([\w.]*)$|^\s*import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*\s*,\s*([\w.]*)$"
)
_FROM_IMPORT = re.compile(r"^\s*from\s+[\w.]+\s+import\b")
_ATTRIBUTE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.\s*(\w*)$")
_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)$")
_META_WIDTH = 60


def _none() -> list[str]:
    return []


@dataclass
class Sources:
    """Where completions come from; each a cheap callable, failures mean no completions."""

    namespace: Callable[[], Iterable[str]] = _none
    members: Callable[[], Mapping[str, Mapping[str, str]]] = dict
    modules: Callable[[], Iterable[str]] = _none
    registry_children: Callable[[str], Iterable[RegistryEntry]] = lambda path: []
    magics: Callable[[], Mapping[str, str]] = dict  # name -> one-line summary
    magic_parser: Callable[[str], argparse.ArgumentParser | None] = lambda name: None
    path_magics: frozenset[str] = field(default_factory=lambda: frozenset({"run"}))
    registry_magics: frozenset[str] = field(default_factory=lambda: frozenset({"registry"}))


def _short(text: str | None) -> str:
    text = one_line((text or "").replace("\n", " "))  # registry values: shown, so escaped
    return text if len(text) <= _META_WIDTH else text[: _META_WIDTH - 1] + "…"


class JcshCompleter(Completer):
    """Python and `%` command completion over static sources."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self._paths: Completer | None = None

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        try:
            if document.text.lstrip().startswith("%"):
                yield from self._magic(document, complete_event)
            else:
                yield from self._python(document.text_before_cursor)
        except Exception:
            return

    # Python -----------------------------------------------------------------------------------

    def _python(self, before: str) -> Iterator[Completion]:
        state = scan(before)
        if state.comment:
            return
        if state.string:
            m = _REGISTRY_CALL.search(before)
            if m:
                yield from self._registry(m.group(2))
            return
        line = before.rsplit("\n", 1)[-1]
        if _FROM_IMPORT.match(line):
            return  # a module's members are not known without importing it
        m = _IMPORT.match(line)
        if m:
            typed = m.group(1) if m.group(1) is not None else m.group(2) or ""
            for name in sorted(set(self.sources.modules())):
                if name.startswith(typed) and name != typed:
                    yield Completion(name, -len(typed))
            return
        m = _ATTRIBUTE.search(line)
        if m:
            obj, typed = m.groups()
            members = self.sources.members().get(obj, {})
            for name in sorted(members):
                if name.startswith(typed) and not name.startswith("_"):
                    yield Completion(name, -len(typed), display_meta=_short(members[name]))
            return
        m = _NAME.search(line)
        if not m:
            return
        typed = m.group(1)
        described = self.sources.members()
        names = set(self.sources.namespace()) | set(keyword.kwlist)
        for name in sorted(names):
            if name.startswith(typed) and name != typed and (typed.startswith("_") or not name.startswith("_")):
                meta = "preloaded" if name in described else ("keyword" if keyword.iskeyword(name) else "")
                yield Completion(name, -len(typed), display_meta=meta)

    def _registry(self, typed: str) -> Iterator[Completion]:
        parent, _, prefix = typed.rpartition("/")
        for name, has_children, value in self.sources.registry_children(parent or "/"):
            if name.startswith(prefix):
                yield Completion(
                    name,
                    -len(prefix),
                    display=one_line(name) + ("/" if has_children else ""),
                    display_meta=_short(value),
                )

    # % commands -------------------------------------------------------------------------------

    def _magic(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor.lstrip()
        words = before[1:].split()
        if before.endswith((" ", "\t")) or not words:
            words.append("")
        magics = self.sources.magics()
        if len(words) == 1:
            typed = words[0]
            offered = {n.split()[0]: ("" if " " in n else summary) for n, summary in magics.items()}
            for name, summary in sorted(offered.items()):
                if name.startswith(typed):
                    yield Completion(name, -len(typed), display="%" + name, display_meta=_short(summary))
            return
        name, rest, typed = words[0], words[1:-1], words[-1]
        if len(words) == 2 and not typed.startswith(("-", "/")):
            # `%tls pro` -> probe, protocols: the second word of two-word commands
            for full, summary in sorted(magics.items()):
                first, _, second = full.partition(" ")
                if first == name and second.startswith(typed):
                    yield Completion(second, -len(typed), display_meta=_short(summary))
        if " ".join(words[:2]) in magics:
            name, rest = " ".join(words[:2]), words[2:-1]
        if name in self.sources.path_magics and not typed.startswith("-"):
            yield from self._files(typed, event)
            return
        if name in self.sources.registry_magics and typed.startswith("/"):
            yield from self._registry(typed)
            return
        parser = self.sources.magic_parser(name)
        if parser is None:
            return
        parser, expects_value = _walk(parser, rest)
        if expects_value:
            return
        if typed.startswith("-"):
            for option in sorted(_options(parser)):
                if option.startswith(typed):
                    yield Completion(option, -len(typed), display_meta=_short(_options(parser)[option]))
            return
        for choice, summary in sorted(_subcommands(parser).items()):
            if choice.startswith(typed):
                yield Completion(choice, -len(typed), display_meta=_short(summary))

    def _files(self, typed: str, event: CompleteEvent) -> Iterator[Completion]:
        if self._paths is None:
            from prompt_toolkit.completion import PathCompleter

            self._paths = PathCompleter(expanduser=True)
        yield from self._paths.get_completions(Document(typed), event)


# argparse walking: argparse has no public API to list what a parser accepts, so this reads its
# action list (stable since Python 3.2).


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = _subparsers(parser)
    if action is None:
        return {}
    helps = {a.dest: a.help or "" for a in action._choices_actions}
    return {name: helps.get(name, "") for name in action.choices}


def _options(parser: argparse.ArgumentParser) -> dict[str, str]:
    found: dict[str, str] = {}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        for option in action.option_strings:
            if option.startswith("--") or len(action.option_strings) == 1:
                found[option] = action.help or ""
    return found


def _walk(parser: argparse.ArgumentParser, words: list[str]) -> tuple[argparse.ArgumentParser, bool]:
    """Follow subcommand words; say whether the next word is an option's value."""
    expects_value = False
    for word in words:
        if expects_value:
            expects_value = False
            continue
        if word.startswith("-"):
            action = next((a for a in parser._actions if word.split("=", 1)[0] in a.option_strings), None)
            expects_value = action is not None and "=" not in word and action.nargs != 0
            continue
        sub = _subparsers(parser)
        if sub is not None and word in sub.choices:
            parser = sub.choices[word]
    return parser, expects_value
