"""Plain data a stub returns: dictionaries whose keys also read as attributes (`result.status`)."""

from __future__ import annotations

from typing import Any

__all__ = ["Record", "to_records", "check_text", "check_texts", "check_flag", "check_number"]


class Record(dict):
    """A dict whose keys can be read as attributes: `r.status` is `r["status"]`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no field {name!r} (fields: {', '.join(sorted(map(str, self)))})") from None


def to_records(value: Any) -> Any:
    """JSON data from the parent with every object as a Record."""
    if isinstance(value, dict):
        return Record({k: to_records(v) for k, v in value.items()})
    if isinstance(value, list):
        return [to_records(v) for v in value]
    return value


def check_text(value: Any, what: str, *, optional: bool = False) -> str | None:
    """A str (exactly), or None when optional; TypeError naming the argument otherwise."""
    if value is None and optional:
        return None
    if type(value) is not str:
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    return value


def check_texts(value: Any, what: str) -> list[str]:
    """One string or a list/tuple of strings, as a list."""
    if value is None:
        return []
    if type(value) is str:
        return [value]
    if type(value) not in (list, tuple):
        raise TypeError(f"{what} must be a string or a list of strings, not {type(value).__name__}")
    return [check_text(v, what) for v in value]  # type: ignore[misc]


def check_flag(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise TypeError(f"{what} must be True or False, not {type(value).__name__}")
    return value


def check_number(value: Any, what: str, *, optional: bool = False) -> float | int | None:
    if value is None and optional:
        return None
    if type(value) not in (int, float):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}")
    return value
