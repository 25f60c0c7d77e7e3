"""What the preloaded names offer, for completion and `help()`: read statically, nothing is evaluated."""

from __future__ import annotations

import inspect

__all__ = ["describe", "document", "ARGS_DOC"]

ARGS_DOC = "The script's arguments, a list of strings: `jcsh run FILE ARG...` (empty at the prompt)."


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def describe() -> dict[str, dict[str, str]]:
    """Preloaded name -> {member: one-line doc}; jcsArgs (a list of strings) has no members of its own."""
    from jcsh.stdlib.preload import PRELOADED

    found: dict[str, dict[str, str]] = {}
    for name, cls in PRELOADED.items():
        members: dict[str, str] = {}
        for member, value in inspect.getmembers_static(cls):
            if member.startswith("_") or (issubclass(cls, BaseException) and member in _EXCEPTION_NOISE):
                continue
            if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                target = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
                members[member] = _first_line(target)
        if issubclass(cls, BaseException):
            members.update(
                kind="how it failed: not-found, usage, connect, limit, temporary ...",
                message="the message",
                exit_code="the exit code jcsh would give",
            )
        found[name] = dict(sorted(members.items()))
    found["jcsArgs"] = {}
    return found


_EXCEPTION_NOISE = frozenset({"args", "with_traceback", "add_note"})


class _Elided:
    def __repr__(self) -> str:
        return "..."


def _shown_default(default: object) -> object:
    # A sentinel (`default=<object object at 0x...>`) says nothing to a reader: show `...`.
    return default if isinstance(default, (str, int, float, bool, type(None), tuple)) else _Elided()


def _signature(name: str, value: object) -> str:
    """`name(a, b=None)`: the call as a script writes it (no self, no annotations)."""
    target = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    if not callable(target):  # a property or a plain value (JcshError.kind)
        return name
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return f"{name}(...)"
    params = list(signature.parameters.values())
    if params and not isinstance(value, staticmethod) and params[0].name in ("self", "cls"):
        params = params[1:]
    bare = [
        p.replace(annotation=inspect.Parameter.empty, default=_shown_default(p.default))
        if p.default is not inspect.Parameter.empty
        else p.replace(annotation=inspect.Parameter.empty)
        for p in params
    ]
    return name + str(signature.replace(parameters=bare, return_annotation=inspect.Signature.empty))


def document(dotted: str) -> str | None:
    """The documentation of a preloaded name or one of its members (`mail.send`); None when unknown.

    For `help(mail.send)` and `mail.send?` in the REPL: read from the classes, never from the
    objects in the worker.
    """
    from jcsh.stdlib.preload import PRELOADED

    name, _, member = dotted.strip().partition(".")
    if name == "jcsArgs" and not member:
        return f"jcsArgs: {ARGS_DOC}"
    cls = PRELOADED.get(name)
    if cls is None:
        return None
    if not member:
        lines = [f"{name}: {inspect.getdoc(cls) or ''}".rstrip(), ""]
        for key, summary in describe()[name].items():
            value = inspect.getattr_static(cls, key, None)
            lines.append(f"  {_signature(f'{name}.{key}', value) if value is not None else f'{name}.{key}'}")
            lines.append(f"      {summary}")
        return "\n".join(lines).rstrip()
    if member.startswith("_") or member not in describe()[name]:
        return None
    value = inspect.getattr_static(cls, member, None)
    target = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    if not callable(target):  # an attribute (an exception's kind, message ...)
        return f"{name}.{member}: {describe()[name][member]}"
    return f"{_signature(f'{name}.{member}', value)}\n\n{inspect.getdoc(target) or describe()[name][member]}"
