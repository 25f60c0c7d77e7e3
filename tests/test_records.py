"""runtime/records.py: a NamedTuple record behaves as typing.NamedTuple's, annotations left as written."""

from __future__ import annotations

import pickle
import subprocess
import sys
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


_NO_TYPING = """
import sys
import jcsh.runtime.annotations, jcsh.runtime.records
import jcsh.shell.cli, jcsh.shell.commands.testmail, jcsh.shell.commands.tls
import jcsh.runtime.mail.send, jcsh.runtime.mail.settings, jcsh.runtime.credentials, jcsh.runtime.tls.probe
import jcsh.runtime.mail.mx_probe
print('typing' in sys.modules)
"""


def test_the_stand_ins_for_typing_do_at_run_time_what_typing_s_names_do() -> None:
    from jcsh.runtime import annotations

    U = annotations.TypeVar("U")

    class Box(annotations.Generic[U]):
        pass

    class Shape(annotations.Protocol):
        def area(self) -> float: ...

    class Held(NamedTuple, annotations.Generic[U]):
        value: U

    assert Box[int] is Box and isinstance(Box(), Box) and repr(U) == "~U"
    assert Shape.__mro__[1:] == (annotations.Protocol, object)
    assert Held[int] is Held and Held(3) == (3,) and Held.__mro__ == (Held, tuple, object)
    marker = object()
    assert annotations.cast("Shape", marker) is marker
    # Neither these nor the modules of `testmail` and `tls probe` import typing (~14 M instructions
    # a process), checked in a fresh interpreter: the test process has it.
    ran = subprocess.run(
        [sys.executable, "-c", _NO_TYPING],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.stdout == "False\n", ran.stderr
