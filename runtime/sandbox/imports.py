"""The import allowlist, the reason each module is in or out, and the module copies scripts get.

A script never holds a real module: `import json` gives a fresh module object holding only
json's public, audited names, so that `from json import decoder` (an unguarded attribute read
in the interpreter) finds nothing it should not. Everything here is imported in the worker
before the system-call filter goes on, since the worker cannot open a file afterwards.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["ALLOWED", "LAZY", "REFUSED", "ModuleTable", "RefusedImport", "refusal_reason"]


class RefusedImport(ImportError):
    """An import the sandbox does not allow."""


# name -> (why it is safe, names to leave out (or None), only these names (or None)).
# Left out everywhere: private names, submodules, and `main`/`test` entry points.
ALLOWED: dict[str, tuple[str, frozenset[str], frozenset[str] | None]] = {
    "math": ("pure computation", frozenset(), None),
    "cmath": ("pure computation", frozenset(), None),
    "decimal": ("pure computation", frozenset(), None),
    "fractions": ("pure computation", frozenset(), None),
    "statistics": ("pure computation", frozenset(), None),
    "random": ("pure computation; SystemRandom reads the kernel's getrandom, not a file", frozenset(), None),
    "re": ("pure computation; a catastrophic pattern is bounded by the timeout", frozenset(), None),
    "json": ("text in, text out; load/dump take objects the script made", frozenset(), None),
    "datetime": ("pure computation; time zone data is loaded before the filter", frozenset(), None),
    "time": ("clocks and sleep; sleep is bounded by the timeout", frozenset({"tzset"}), None),
    "calendar": (
        "pure computation; the locale calendars would read locale files",
        frozenset({"LocaleTextCalendar", "LocaleHTMLCalendar", "different_locale"}),
        None,
    ),
    "itertools": ("pure computation", frozenset(), None),
    "functools": (
        (
            "pure computation; wraps/update_wrapper copy attributes named by the caller (dunders included) "
            "and singledispatch evaluates string annotations, so they are left out"
        ),
        frozenset(),
        frozenset(
            {
                "reduce",
                "partial",
                "partialmethod",
                "lru_cache",
                "cache",
                "cached_property",
                "cmp_to_key",
                "total_ordering",
            }
        ),
    ),
    "collections": (
        (
            "containers; namedtuple builds __new__ with eval, but only from field names it checks to be "
            "identifiers; UserString is left out because its format() is str.format, unguarded"
        ),
        frozenset({"UserString"}),
        None,
    ),
    "string": (
        (
            "constants, capwords and Template (Template looks up names, not attributes); "
            "Formatter walks attributes unguarded and is left out"
        ),
        frozenset({"Formatter"}),
        None,
    ),
    "textwrap": ("pure computation", frozenset(), None),
    "base64": ("pure computation", frozenset(), None),
    "binascii": ("pure computation", frozenset(), None),
    "hashlib": ("pure computation; algorithms are loaded before the filter", frozenset(), None),
    "hmac": ("pure computation", frozenset(), None),
    "uuid": (
        "random and name-based UUIDs; uuid1/getnode would run programs to find a MAC address",
        frozenset(),
        frozenset(
            {
                "UUID",
                "uuid3",
                "uuid4",
                "uuid5",
                "NAMESPACE_DNS",
                "NAMESPACE_URL",
                "NAMESPACE_OID",
                "NAMESPACE_X500",
                "SafeUUID",
                "RESERVED_NCS",
                "RFC_4122",
                "RESERVED_MICROSOFT",
                "RESERVED_FUTURE",
            }
        ),
    ),
    "ipaddress": ("pure computation", frozenset(), None),
    "email.utils": ("address and date helpers, pure computation", frozenset(), None),
    "pprint": ("formats with repr; pprint() writes to jcsOut", frozenset(), None),
    "enum": (
        "classes of constants; global_enum writes into a module's namespace and is left out",
        frozenset(
            {
                "global_enum",
                "global_enum_repr",
                "global_str",
                "global_flag_repr",
                "pickle_by_enum_name",
                "pickle_by_global_name",
            }
        ),
        None,
    ),
    "javax.net.ssl": (
        "the SSLContext shim; its protocol list comes from the parent over the worker's link",
        frozenset(),
        frozenset({"SSLContext", "SSLParameters"}),
    ),
}

# Private modules that allowed modules import on first use from C (time.strptime and
# datetime.strptime import `_strptime` through the running frame's `__import__`, which in a
# script is the guarded one). Scripts cannot name them (the compiler refuses names starting with
# "_"); the importer hands out a copy holding only the entry points the C code calls.
# name -> (why, the entry points; a name this Python lacks is skipped)
LAZY: dict[str, tuple[str, frozenset[str]]] = {
    "_strptime": (
        "time.strptime and datetime.strptime parse with it; pure computation on the script's strings",
        frozenset({"_strptime_time", "_strptime_datetime", "_strptime_datetime_date", "_strptime_datetime_time"}),
    ),
}

# Why the obvious others are refused (a refused import names its reason).
REFUSED: dict[str, str] = {
    "os": "it reaches files, processes and the environment",
    "sys": "it reaches the interpreter's internals (modules, frames)",
    "subprocess": "scripts cannot start programs",
    "socket": "scripts cannot open connections; use mail and tls",
    "ssl": "scripts cannot open connections; use tls.probe or javax.net.ssl",
    "smtplib": "scripts cannot open connections; use mail.send",
    "operator": "attrgetter walks dunder attributes unguarded",
    "typing": "get_type_hints evaluates strings as code",
    "dataclasses": "it builds methods with exec",
    "importlib": "it imports anything",
    "builtins": "it holds the unrestricted builtins",
    "ctypes": "it reads and writes memory",
    "gc": "get_objects and get_referrers reach every object",
    "inspect": "it reaches frames and globals",
    "types": "it builds functions and code objects",
    "traceback": "it reaches frames",
    "pickle": "loading a pickle runs code",
    "marshal": "it builds code objects",
    "io": "it opens files",
    "pathlib": "it reaches files",
    "shutil": "it reaches files",
    "tempfile": "it reaches files",
    "threading": "scripts run on one thread",
    "multiprocessing": "scripts cannot start processes",
    "signal": "the parent owns signals",
    "code": "it compiles and runs code unrestricted",
    "codeop": "it compiles code unrestricted",
    "weakref": "finalizers run at unpredictable times",
    "asyncio": "scripts run synchronously",
    "logging": "its Formatter walks attributes unguarded",
}

_ALWAYS_OUT = frozenset({"main", "test"})


def refusal_reason(name: str) -> str:
    """Why `import name` is refused, in a few words."""
    top = name.split(".")[0]
    reason = REFUSED.get(name) or REFUSED.get(top)
    allowed = ", ".join(sorted(ALLOWED))
    if reason:
        return f"import of {name!r} is not allowed in jcsh scripts: {reason}"
    return f"import of {name!r} is not allowed in jcsh scripts (allowed: {allowed})"


def _module(name: str, doc: str | None = None) -> types.ModuleType:
    # Not the real name: `from json import decoder` falls back to sys.modules["<__name__>.decoder"]
    # when the attribute is missing, which would hand out the real submodule.
    return types.ModuleType(f"{name} (jcsh)", doc)


def _copy(real: types.ModuleType, name: str, out: frozenset[str], only: frozenset[str] | None) -> types.ModuleType:
    proxy = _module(name, getattr(real, "__doc__", None))
    public = getattr(real, "__all__", None) or [n for n in vars(real) if not n.startswith("_")]
    for attr in public:
        if attr.startswith("_") or attr in out or attr in _ALWAYS_OUT or (only is not None and attr not in only):
            continue
        value = getattr(real, attr, None)
        if value is None and not hasattr(real, attr):
            continue
        if isinstance(value, types.ModuleType):
            continue
        setattr(proxy, attr, value)
    return proxy


class ModuleTable:
    """The module copies of one worker, and the `__import__` that hands them out."""

    def __init__(self, aliases: dict[str, str] | None = None, *, load: bool = True) -> None:
        # aliases: importable name -> real module path (javax.net.ssl -> stdlib.javax.net.ssl);
        # load=False: an empty table, for code the parent has seen to contain no import at all.
        self.modules: dict[str, types.ModuleType] = {}
        self.packages: dict[str, types.ModuleType] = {}
        self.loaded = load
        aliases = aliases or {}
        for name, (_why, out, only) in ALLOWED.items() if load else ():
            real_name = aliases.get(name, name)
            try:
                real = importlib.import_module(real_name)
            except ImportError:
                continue
            self.modules[name] = _copy(real, name, out, only)
        self.lazy: dict[str, types.ModuleType] = {}
        for name, (_why, entry_points) in LAZY.items() if load else ():
            real = importlib.import_module(name)
            proxy = _module(name)
            for attr in entry_points:
                if hasattr(real, attr):
                    setattr(proxy, attr, getattr(real, attr))
            self.lazy[name] = proxy
        for name, _proxy in self.modules.items():
            parts = name.split(".")
            for i in range(1, len(parts)):
                package = ".".join(parts[:i])
                self.packages.setdefault(package, _module(package))
            for i in range(len(parts) - 1, 0, -1):
                parent = self.packages[".".join(parts[:i])]
                child = ".".join(parts[: i + 1])
                setattr(parent, parts[i], self.modules.get(child) or self.packages[child])

    def provide(self, name: str, values: dict[str, Any]) -> None:
        """Hand out `values` from module `name` (the namespace module's objects bound to this worker)."""
        module = self.modules.get(name)
        if module is not None:
            for attr, value in values.items():
                setattr(module, attr, value)

    def names(self) -> list[str]:
        return sorted(self.modules)

    def importer(self) -> Any:
        """The `__import__` scripts get."""
        modules, packages, lazy = self.modules, self.packages, self.lazy

        def guarded_import(
            name: Any, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
        ) -> types.ModuleType:
            if type(name) is not str:
                raise TypeError("module name must be a string")
            if level:
                raise RefusedImport("relative imports are not allowed in jcsh scripts", name=name)
            wanted = [f for f in (fromlist or ()) if type(f) is str]
            if wanted and name in packages and all(f"{name}.{f}" in modules for f in wanted):
                return packages[name]  # from email import utils
            if name in lazy:
                return lazy[name]  # time.strptime's own `import _strptime` (C code reads sys.modules after)
            if name not in modules:
                if not self.loaded and name in ALLOWED:
                    raise RefusedImport(f"import of {name!r} was not expected in this script", name=name)
                raise RefusedImport(refusal_reason(name), name=name)
            if wanted:
                return modules[name]  # from json import loads
            top = name.split(".")[0]
            return packages.get(top) or modules[top]  # import email.utils binds email

        return guarded_import
