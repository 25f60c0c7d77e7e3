"""runtime/records.py: a NamedTuple record behaves as typing.NamedTuple's, annotations left as written."""

from __future__ import annotations

import pickle
import typing
from typing import Generic, TypeVar

import pytest

from jcsh.runtime.records import NamedTuple

T = TypeVar("T")


class Point(NamedTuple):
    """A record with a default, a method and a property."""

    x: int
    label: str = "origin"

    def twice(self) -> int:
        return self.x * 2

    @property
    def shout(self) -> str:
        return self.label.upper()


class TypedPoint(typing.NamedTuple):
    """The same record by typing, to compare against."""

    x: int
    label: str = "origin"

    def twice(self) -> int:
        return self.x * 2

    @property
    def shout(self) -> str:
        return self.label.upper()


class Boxed(NamedTuple, Generic[T]):
    value: T
    origin: str = "default"


def test_a_record_is_what_typing_makes_of_the_same_class_body() -> None:
    ours, theirs = Point(3), TypedPoint(3)
    assert repr(ours) == "Point(x=3, label='origin')" and repr(theirs) == "TypedPoint(x=3, label='origin')"
    assert ours == theirs == (3, "origin") and hash(ours) == hash(theirs)
    assert Point._fields == TypedPoint._fields == ("x", "label")
    assert Point._field_defaults == TypedPoint._field_defaults == {"label": "origin"}
    assert ours.twice() == 6 and ours.shout == "ORIGIN"
    assert ours._replace(x=4) == (4, "origin") and ours._asdict() == {"x": 3, "label": "origin"}
    assert Point.__mro__ == (Point, tuple, object) and Point.__module__ == __name__
    assert Point.__doc__ == "A record with a default, a method and a property."
    assert pickle.loads(pickle.dumps(ours)) == ours
    # The annotations stay the strings `from __future__ import annotations` wrote (typing compiles them).
    assert Point.__annotations__ == {"x": "int", "label": "str"}
    assert typing.get_type_hints(Point) == typing.get_type_hints(TypedPoint) == {"x": int, "label": str}


def test_a_generic_record_subscripts_as_typing_s_does() -> None:
    assert Boxed(1) == (1, "default") and Boxed.__parameters__ == (T,)  # type: ignore[attr-defined]
    assert Boxed[int](2).value == 2 and Boxed.__mro__ == (Boxed, tuple, Generic, object)


def test_a_record_refuses_what_typing_refuses() -> None:
    with pytest.raises(TypeError, match="Non-default namedtuple field b"):

        class Late(NamedTuple):
            a: int = 1
            b: int  # type: ignore[misc]

    with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _fields"):

        class Clash(NamedTuple):
            a: int
            _fields = ()  # type: ignore[misc]

    with pytest.raises(TypeError, match="only inherit from a NamedTuple type and Generic"):

        class Mixed(NamedTuple, int):  # type: ignore[misc]
            a: int

    with pytest.raises(TypeError, match="class form only"):
        NamedTuple("Functional", [("a", int)])
