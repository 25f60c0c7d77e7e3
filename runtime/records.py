"""`NamedTuple` for class bodies, as typing's, without compiling each field's annotation at import."""

from __future__ import annotations

# typing.NamedTuple turns every annotation string into a ForwardRef, which compiles it: with ~30
# record classes on the `tls probe` path that was ~11 M instructions (~4%) of each probe. This one
# keeps the strings, as `from __future__ import annotations` wrote them (typing.get_type_hints
# reads both), and is typing.NamedTuple to type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    from collections import namedtuple as _namedtuple

    from jcsh.runtime.annotations import Generic as _Generic

    # What typing refuses to let a class body overwrite, and what it does not copy onto the class.
    _PROHIBITED = frozenset(
        {"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults", "_make", "_replace"}
        | {"_asdict", "_source"}
    )
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__", "__qualname__"})

    class _RecordMeta(type):
        def __new__(cls, typename: str, bases: tuple[type, ...], ns: dict[str, object]) -> type:
            generic = None
            if bases == (_Record, _Generic):  # `class Setting(NamedTuple, Generic[T])`, Generic of annotations.py
                bases = (_Record,)
                ns = {**ns, "__class_getitem__": _Generic.__dict__["__class_getitem__"]}
            elif bases != (_Record,):  # the same with typing's Generic
                import typing

                generic = typing.Generic
                if bases != (_Record, generic):
                    raise TypeError("can only inherit from a NamedTuple type and Generic")
            fields: dict[str, object] = dict(ns.get("__annotations__", {}))
            defaults = []
            for name in fields:
                if name in ns:
                    defaults.append(ns[name])
                elif defaults:
                    raise TypeError(f"Non-default namedtuple field {name} cannot follow default field")
            record = _namedtuple(typename, fields, defaults=defaults, module=ns["__module__"])
            record.__annotations__ = record.__new__.__annotations__ = fields
            if generic is not None:
                record.__bases__ = (tuple, generic)
                # typing's own: a module function from 3.12 on (Generic is in C there), a classmethod's before
                getitem = getattr(typing, "_generic_class_getitem", None) or generic.__class_getitem__.__func__
                record.__class_getitem__ = classmethod(getitem)
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in record._fields:
                    setattr(record, key, value)
            if generic is not None:
                record.__init_subclass__()
            return record

    _Record = type.__new__(_RecordMeta, "NamedTuple", (), {})

    def NamedTuple(*args: object, **kwargs: object) -> type:
        """Only the class form: `class Name(NamedTuple): field: type = default`."""
        raise TypeError("jcsh.runtime.records.NamedTuple takes the class form only")

    NamedTuple.__mro_entries__ = lambda bases: (_Record,)

__all__ = ["NamedTuple"]
