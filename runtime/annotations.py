"""typing's run-time names for annotated modules that do not import typing (Generic, Protocol, TypeVar, cast)."""

from __future__ import annotations

# Importing typing (and contextlib with it) was ~14 M instructions of each `tls probe` and test
# mail, for a handful of names that do nothing at run time: a class's `Generic[T]` or `Protocol`
# base, a TypeVar, a cast. Type checkers see typing's own; the running program these stand-ins.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Generic as Generic
    from typing import Protocol as Protocol
    from typing import TypeVar as TypeVar
    from typing import cast as cast
else:

    class Generic:
        """A base for generic classes: `Generic[T]` is this class, and `C[int]` is C."""

        __slots__ = ()

        def __class_getitem__(cls, params: object) -> type:
            return cls

    class Protocol:
        """A base for structural types: nothing at run time (they are never checked with isinstance)."""

        __slots__ = ()

    class TypeVar:
        """A type variable's name, for `Generic[T]` to be written."""

        __slots__ = ("__name__",)

        def __init__(self, name: str, *constraints: object, **options: object) -> None:
            self.__name__ = name

        def __repr__(self) -> str:
            return "~" + self.__name__

    def cast(typ: object, value: object) -> object:
        """`value`, as typing.cast returns it."""
        return value


__all__ = ["Generic", "Protocol", "TypeVar", "cast"]
