"""`registry`: the registry tree, read and written through the parent."""

from __future__ import annotations

import builtins
from typing import Any

from jcsh.stdlib.errors import NotFound, request
from jcsh.stdlib.records import check_flag, check_text, to_records

__all__ = ["RegistryStub"]

_REQUIRED = object()


def _value_text(value: Any) -> str:
    # Registry values are text; booleans are written the way the mail module reads them.
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return str(value)
    return check_text(value, "value")  # type: ignore[return-value]


class RegistryStub:
    """The registry: a tree of text values under paths like /configuration/mail/Server."""

    __slots__ = ("_link",)

    def __init__(self, link: Any) -> None:
        self._link = link

    def get(self, path: str, default: Any = _REQUIRED) -> Any:
        """The value at path; default when given and there is none, else NotFound."""
        check_text(path, "path")
        try:
            return request(self._link, "registry.get", {"path": path})
        except NotFound:
            if default is _REQUIRED:
                raise
            return default

    def get_many(self, paths: Any, default: Any = None) -> dict[str, Any]:
        """The values at many paths in one request, as {path: value}; `default` where there is none.

        `paths` is a list or tuple of at most 1,000 paths; the values are read from the store now.
        """
        if type(paths) not in (builtins.list, tuple):
            raise TypeError(f"paths must be a list of paths, not {type(paths).__name__}")
        wanted = [check_text(p, "each path") for p in paths]
        found = request(self._link, "registry.get_many", {"paths": wanted})
        return {p: default if v is None else v for p, v in found.items()}

    def exists(self, path: str) -> bool:
        """Whether an entry exists at path (with or without a value)."""
        return bool(request(self._link, "registry.exists", {"path": check_text(path, "path")}))

    def set(self, path: str, value: Any) -> None:
        """Set the value at path (text; True/False become "true"/"false"); missing parents are created."""
        request(self._link, "registry.set", {"path": check_text(path, "path"), "value": _value_text(value)})

    def delete(self, path: str, recursive: bool = False) -> int:
        """Remove the entry (with recursive=True, its subtree too); returns how many entries went."""
        return int(
            request(
                self._link,
                "registry.delete",
                {"path": check_text(path, "path"), "recursive": check_flag(recursive, "recursive")},
            )
        )

    def list(self, path: str = "/") -> list[Any]:
        """The children of path: records with name, path, value, has_children."""
        return to_records(request(self._link, "registry.list", {"path": check_text(path, "path")}))

    def walk(self, path: str = "/") -> builtins.list[tuple[str, str | None]]:
        """Every entry of the subtree as (path, value), parents first."""
        rows = request(self._link, "registry.walk", {"path": check_text(path, "path")})
        return [(p, v) for p, v in rows]

    def __repr__(self) -> str:
        return "registry"
