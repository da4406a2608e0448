"""What kind of type an annotation names, and the fields of a body model.

Typed handlers (:mod:`microroute.typed`), the body reader
(:mod:`microroute.bodies`), the 422's problem list (:mod:`microroute.validation`)
and the finite-number checks (:mod:`microroute.finite`) all ask the same
questions of a type: is it a scalar, a list of scalars, a body model (a
dataclass, ``TypedDict``, ``msgspec.Struct`` or pydantic model)? What are a
model's fields, under which name does the JSON carry each, which are required?
They are answered here once, so the four agree.

pydantic is never imported here: a program that annotates with a pydantic
model has imported it already.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import sys
import types
import typing
import uuid
from typing import Any

import msgspec

__all__ = [
    "SCALARS",
    "Field",
    "bare",
    "fields",
    "is_flat",
    "is_scalar",
    "is_scalar_list",
    "is_structured",
    "optional_inner",
    "pydantic_model",
    "structured_by_name",
    "type_name",
]

#: The scalar types a path or query parameter may be annotated with (an Enum
#: or a Literal too).
SCALARS: tuple[type, ...] = (
    int,
    float,
    bool,
    str,
    uuid.UUID,
    datetime.date,
    datetime.datetime,
    datetime.time,
    decimal.Decimal,
)


def pydantic_model(tp: Any) -> bool:
    """Whether *tp* is a pydantic ``BaseModel`` class."""
    # Only a program that imported pydantic can annotate with one of its models.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def is_structured(tp: Any) -> bool:
    """Whether *tp* is a body type: a dataclass, TypedDict, msgspec.Struct or pydantic model."""
    if not isinstance(tp, type):
        return False
    if dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
        return True
    if issubclass(tp, msgspec.Struct):
        return True
    return pydantic_model(tp)


def structured_by_name(tp: Any) -> bool:
    """A class deriving from something named ``msgspec.Struct`` (another msgspec's)."""
    return isinstance(tp, type) and any(
        f"{base.__module__}.{base.__qualname__}" == "msgspec.Struct" for base in tp.__mro__
    )


def bare(tp: Any) -> Any:
    """``Annotated[X, Meta(...)]`` -> ``X``: constraints don't change a type's kind."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def optional_inner(tp: Any) -> Any:
    """``X | None`` -> ``X`` (and ``Annotated`` unwrapped); anything else as is."""
    tp = bare(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return bare(args[0])
    return tp


def is_scalar(tp: Any) -> bool:
    """A scalar (``int``, ``UUID``, an Enum, a Literal...), optional or not."""
    tp = optional_inner(tp)
    if typing.get_origin(tp) is typing.Literal:
        return True
    return isinstance(tp, type) and (issubclass(tp, SCALARS) or issubclass(tp, enum.Enum))


def is_scalar_list(tp: Any) -> bool:
    """``list[int]``, ``tuple[str, ...]``, ``set[UUID]``..., optional or not."""
    tp = optional_inner(tp)
    if typing.get_origin(tp) not in (list, tuple, set, frozenset):
        return False
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:  # tuple[int, ...]
        args = args[:1]
    return len(args) == 1 and is_scalar(bare(args[0]))


def type_name(tp: Any) -> str:
    """How an error message names *tp*."""
    return getattr(tp, "__qualname__", None) or repr(tp)


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a body model."""

    #: The attribute (or TypedDict key) that holds the value.
    attr: str
    #: Where the JSON carries it: its (renamed, aliased) key, or its index in an array-like Struct.
    key: str | int
    #: Its annotation, ``Annotated`` constraints included.
    type: Any
    required: bool


def fields(cls: Any) -> list[Field]:
    """The fields of a body model (a Struct, pydantic model, dataclass, TypedDict or
    NamedTuple), as its engine reads them from JSON; ``[]`` for anything else."""
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        array_like = cls.__struct_config__.array_like
        return [
            Field(f.name, index if array_like else f.encode_name, f.type, f.required)
            for index, f in enumerate(msgspec.structs.fields(cls))
        ]
    if pydantic_model(cls):
        found = []
        for name, info in cls.model_fields.items():
            # Located as pydantic locates its own errors: by the name it reads.
            alias = info.validation_alias
            key = alias if isinstance(alias, str) else info.alias or name
            found.append(Field(name, key, info.annotation, info.is_required()))
        return found
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        hints = typing.get_type_hints(cls, include_extras=True)
        return [
            Field(
                f.name,
                f.name,
                hints[f.name],
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
            if f.init
        ]
    if isinstance(cls, type) and typing.is_typeddict(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        required = getattr(cls, "__required_keys__", frozenset(hints))
        return [Field(name, name, tp, name in required) for name, tp in hints.items()]
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        hints = typing.get_type_hints(cls, include_extras=True)
        defaults = getattr(cls, "_field_defaults", {})
        return [
            Field(name, index, hints.get(name, Any), name not in defaults)
            for index, name in enumerate(cls._fields)
        ]
    return []


def is_flat(tp: Any) -> bool:
    """Whether a form can fill a body of type *tp*: a model whose every field is a
    scalar or a list of scalars (a form has no nesting)."""
    inner = optional_inner(tp)
    if not is_structured(inner):
        return False
    struct = isinstance(inner, type) and issubclass(inner, msgspec.Struct)
    if struct and inner.__struct_config__.array_like:  # a JSON array: no form spells one
        return False
    found = fields(inner)
    return bool(found) and all(is_scalar(f.type) or is_scalar_list(f.type) for f in found)
