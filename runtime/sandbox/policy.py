"""What restricted code may do at run time: the guards, the builtins, and the script namespace.

RestrictedPython rewrites `a.b` into `_getattr_(a, "b")`, `a[i]` into `_getitem_(a, i)`,
`for x in y` into `_getiter_(y)`, `a.b = c` into `_write_(a).b = c` and `print` into a
`_print_` collector, and refuses at compile time every name and attribute starting with `_`
(see compiler.py). This module supplies those guards. `_getitem_` and `_getiter_` are the
builtins themselves: item and iteration access are allowed on everything a script can reach,
so sequence unpacking needs no wrapper either.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # CPython's str.format parser; no stubs
import builtins
import operator
import string
from collections.abc import Callable
from typing import Any

from RestrictedPython import safe_builtins
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from jcsh.runtime.sandbox.compiler import DISPLAY_HOOK, RUNTIME_CHECKED
from jcsh.runtime.sandbox.imports import RefusedImport

__all__ = [
    "RefusedAttribute",
    "RefusedCall",
    "RefusedImport",
    "REFUSALS",
    "EXTRA_BUILTINS",
    "REFUSED_BUILTINS",
    "guarded_getattr",
    "guarded_hasattr",
    "guarded_write",
    "make_globals",
]


class RefusedAttribute(AttributeError):
    """An attribute the sandbox does not let scripts read or write."""


class RefusedCall(PermissionError):
    """A builtin scripts do not get (open, eval, ...)."""


REFUSALS = (RefusedImport, RefusedAttribute, RefusedCall)

# Builtins beyond RestrictedPython's safe_builtins, each safe because it only computes on what the
# script already holds. (`getattr`, `hasattr`, `setattr`, `delattr`, `dir`, `__import__` are guarded
# versions, added in make_globals.) Left out: see REFUSED_BUILTINS.
EXTRA_BUILTINS = (
    "all",
    "any",
    "ascii",
    "bin",
    "bytearray",
    "bytes",
    "dict",
    "enumerate",
    "filter",
    "format",
    "frozenset",
    "iter",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "property",
    "reversed",
    "set",
    "sorted",
    "staticmethod",
    "classmethod",
    "sum",
    "tuple",
    "type",
    "zip",
    "NotImplemented",
    "LookupError",
    "StopIteration",
    "ConnectionError",
    "TimeoutError",
    "PermissionError",
    "FileNotFoundError",
    "RecursionError",
)
REFUSED_BUILTINS: dict[str, str] = {
    "open": "scripts cannot read or write files",
    "input": "scripts cannot read the terminal; pass values with jcsArgs",
    "eval": "scripts cannot compile code",
    "exec": "scripts cannot compile code",
    "compile": "scripts cannot compile code",
    "globals": "the namespace is not a dict scripts may change",
    "locals": "the namespace is not a dict scripts may change",
    "vars": "it reaches an object's __dict__",
    "breakpoint": "there is no debugger in the sandbox",
    "help": "pydoc reads files; see %help",
    "memoryview": "not needed by scripts",
    "super": "call the base class method by name instead",
}


# -- run-time guards ---------------------------------------------------------------------------


class _GuardedFormatter(string.Formatter):
    """str.format with every attribute step of a field ("{0.name}") through the guard."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = guarded_getattr(obj, key) if is_attr else obj[key]
        return obj, first


_FORMATTER = _GuardedFormatter()


def _format_of(text: str) -> Callable[..., str]:
    def format(*args: Any, **kwargs: Any) -> str:
        return _FORMATTER.vformat(text, args, kwargs)

    return format


def _format_map_of(text: str) -> Callable[[Any], str]:
    def format_map(mapping: Any) -> str:
        return _FORMATTER.vformat(text, (), mapping)

    return format_map


def _unbound_format(self: Any, *args: Any, **kwargs: Any) -> str:
    if not isinstance(self, str):
        raise TypeError("format() needs a str")
    return _FORMATTER.vformat(str(self), args, kwargs)


def _unbound_format_map(self: Any, mapping: Any) -> str:
    if not isinstance(self, str):
        raise TypeError("format_map() needs a str")
    return _FORMATTER.vformat(str(self), (), mapping)


_MISSING = object()


def _check_name(name: Any) -> str:
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if name.startswith("_"):
        raise RefusedAttribute(f'"{name}" is an invalid attribute name because it starts with "_"', name=name)
    if name in INSPECT_ATTRIBUTES or name.endswith("__roles__"):
        raise RefusedAttribute(f'"{name}" is a restricted name that scripts may not access', name=name)
    return name


def guarded_getattr(obj: Any, name: Any, default: Any = _MISSING) -> Any:
    """getattr for scripts: no private or frame attributes, str.format through the guard."""
    _check_name(name)
    if name in RUNTIME_CHECKED:
        kind = type(obj)
        if name in ("format", "format_map"):
            if issubclass(kind, str):
                return _format_of(obj) if name == "format" else _format_map_of(obj)
            if isinstance(obj, type) and issubclass(obj, str):
                return _unbound_format if name == "format" else _unbound_format_map
        elif name == "obj" and issubclass(kind, BaseException):
            raise RefusedAttribute('"obj" of an exception is not available to scripts', name=name)
        elif name in ("get_field", "get_value", "vformat") and (
            issubclass(kind, string.Formatter) or (isinstance(obj, type) and issubclass(obj, string.Formatter))
        ):
            raise RefusedAttribute("string.Formatter methods are not available to scripts", name=name)
    if default is _MISSING:
        return getattr(obj, name)
    return getattr(obj, name, default)


def guarded_hasattr(obj: Any, name: Any) -> bool:
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


# Classes made by script code carry this marker (an object scripts cannot reach, under a name they
# cannot spell): their instances, and they themselves, take attribute writes.
_MARK = "_jcsh_script_made"
_MADE = object()


def _note_user_class(cls: type) -> None:
    type.__setattr__(cls, _MARK, _MADE)  # past any __setattr__ of the class's metaclass (Enum has one)


class _ItemsOnly:
    """What `_write_` returns for objects scripts did not make: items yes, attributes no."""

    __slots__ = ("_ob",)
    _ob: Any

    def __init__(self, ob: Any) -> None:
        object.__setattr__(self, "_ob", ob)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ob[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._ob[key]

    def __setattr__(self, name: str, value: Any) -> None:
        raise RefusedAttribute(f"cannot set attributes of {type(self._ob).__name__} objects", name=name)

    def __delattr__(self, name: str) -> None:
        raise RefusedAttribute(f"cannot delete attributes of {type(self._ob).__name__} objects", name=name)


def guarded_write(ob: Any) -> Any:
    """`_write_`: attribute writes only on objects and classes the script made."""
    kind = type(ob)
    if kind is dict or kind is list:
        return ob
    try:
        if kind._jcsh_script_made is _MADE:  # a plain attribute read: the fastest check there is
            return ob
    except AttributeError:
        pass
    if isinstance(ob, type) and getattr(ob, _MARK, None) is _MADE:
        return ob  # a class the script made
    return _ItemsOnly(ob)


def _guarded_setattr(obj: Any, name: Any, value: Any) -> None:
    setattr(guarded_write(obj), _check_name(name), value)


def _guarded_delattr(obj: Any, name: Any) -> None:
    delattr(guarded_write(obj), _check_name(name))


class _ClassMaker:
    """`__metaclass__` of every class statement: the bases' own metaclass makes it, we note it."""

    @staticmethod
    def _winner(bases: tuple[Any, ...]) -> Any:
        winner: Any = type
        for base in bases:
            meta = type(base)
            if issubclass(winner, meta):
                continue
            if issubclass(meta, winner):
                winner = meta
                continue
            raise TypeError("metaclass conflict: the bases have unrelated metaclasses")
        return winner

    def __prepare__(self, name: str, bases: tuple[Any, ...], **kwargs: Any) -> Any:
        return self._winner(bases).__prepare__(name, bases, **kwargs)

    def __call__(self, name: str, bases: tuple[Any, ...], namespace: Any, **kwargs: Any) -> Any:
        cls = self._winner(bases)(name, bases, namespace, **kwargs)
        _note_user_class(cls)
        return cls


_INPLACE = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _passthrough_unpack(it: Any, spec: Any, getiter: Any) -> Any:
    return it


def _apply(f: Any, *args: Any, **kwargs: Any) -> Any:
    return f(*args, **kwargs)


def _refused(name: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise RefusedCall(f"{name}() is not available in jcsh scripts: {REFUSED_BUILTINS[name]}")

    refused.__name__ = refused.__qualname__ = name
    return refused


def _exit(code: Any = 0) -> Any:
    raise SystemExit(code)


def _print_factory(write: Callable[[str], None]) -> Callable[..., Any]:
    """`_print_`: a print that streams to jcsOut as it runs (and still answers `printed`)."""

    class StreamingPrint:
        def __init__(self, _getattr_: Any = None) -> None:
            self.txt: list[str] = []

        def write(self, text: str) -> None:
            write(text)
            self.txt.append(text)

        def __call__(self) -> str:
            return "".join(self.txt)

        def _call_print(
            self, *objects: Any, sep: Any = " ", end: Any = "\n", file: Any = None, flush: bool = False
        ) -> None:
            sep = " " if sep is None else sep
            end = "\n" if end is None else end
            if type(sep) is not str or type(end) is not str:
                raise TypeError("sep and end must be strings")
            text = sep.join([str(o) for o in objects]) + end
            if file is None:
                self.write(text)
            else:
                guarded_getattr(file, "write")(text)

    return StreamingPrint


def make_globals(
    preloaded: dict[str, Any],
    *,
    restricted: bool,
    write_out: Callable[[str], None],
    importer: Callable[..., Any],
    display: Callable[[Any], None],
) -> dict[str, Any]:
    """A fresh script namespace: guards, builtins, and the preloaded names."""
    if not restricted:
        namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": "__main__", DISPLAY_HOOK: display}
        namespace.update(preloaded)
        return namespace
    names: dict[str, Any] = {k: v for k, v in safe_builtins.items() if not k.startswith("_getattr")}
    for name in EXTRA_BUILTINS:
        names[name] = getattr(builtins, name)
    for name in REFUSED_BUILTINS:
        names[name] = _refused(name)
    namespace = {}

    def script_dir(*obj: Any) -> list[str]:
        """dir(x): x's public names; dir(): the script's names."""
        if len(obj) > 1:
            raise TypeError("dir expected at most 1 argument")
        found = dir(obj[0]) if obj else namespace
        return sorted(n for n in found if not n.startswith("_"))

    names.update(
        {
            "__import__": importer,
            "getattr": guarded_getattr,
            "hasattr": guarded_hasattr,
            "setattr": _guarded_setattr,
            "delattr": _guarded_delattr,
            "dir": script_dir,
            "exit": _exit,
            "quit": _exit,
        }
    )
    namespace.update(
        {
            "__builtins__": names,
            "__name__": "__main__",
            "__metaclass__": _ClassMaker(),
            "_getattr_": guarded_getattr,
            "_getitem_": operator.getitem,
            "_getiter_": iter,
            "_write_": guarded_write,
            "_print_": _print_factory(write_out),
            "_inplacevar_": _inplacevar,
            "_iter_unpack_sequence_": _passthrough_unpack,
            "_unpack_sequence_": _passthrough_unpack,
            "_apply_": _apply,
            DISPLAY_HOOK: display,
        }
    )
    namespace.update(preloaded)
    return namespace
