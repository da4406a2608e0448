"""Finite numbers: a typed value holds no NaN, no Infinity, no absurd Decimal.

JSON has no NaN nor Infinity, yet a lax float reads the strings ``"nan"`` and
``"inf"``, a Decimal reads ``"NaN"``, ``"sNaN"``, ``"Infinity"`` and
``"1E+999999999"``, and pydantic's float reads all of these: values a
handler's arithmetic raises on or never finishes with
(``int(Decimal("1E+999999999"))``). Neither engine can be told to refuse them,
so the value it returns is checked where its type can hold a float or a
Decimal, along paths worked out here once, at registration
(:func:`finite_check`).

>>> check = finite_check(list[float])
>>> check([1.0, float("nan")])
([1], 'Input should be a finite number')
"""

from __future__ import annotations

import collections.abc
import decimal
import enum
import logging
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from .typeinfo import fields, pydantic_model

__all__ = ["NOT_FINITE", "OUT_OF_RANGE", "Check", "Problem", "finite_check"]

logger = logging.getLogger("microroute")

#: The message of a NaN or an Infinity (pydantic's own words).
NOT_FINITE = "Input should be a finite number"
#: The message of a Decimal whose exponent is beyond a float's.
OUT_OF_RANGE = "Number out of range"
#: A Decimal's exponent is held to a float's range: within 1E-308..1E+308.
_DECIMAL_EXPONENT = 308

#: Where a value's bad number is, and what is wrong with it; None when it is fine.
Problem = tuple[list[Any], str]
Check = Callable[[Any], "Problem | None"]


def finite_check(tp: Any) -> Check | None:
    """A function finding a non-finite number in a value of type *tp*; None if it cannot hold one.

    ``Annotated[float, msgspec.Meta(extra={"allow_inf_nan": True})]``, pydantic's
    ``Field(allow_inf_nan=True)`` and a pydantic model whose ``model_config``
    sets ``allow_inf_nan`` opt out.
    """
    try:
        return _FiniteChecks().build(tp)
    except Exception:  # a type the engine accepted but this walk does not know
        logger.debug("no finite-number check for %r", tp, exc_info=True)
        return None


def _float_problem(value: Any) -> Problem | None:
    if isinstance(value, float) and not math.isfinite(value):
        return [], NOT_FINITE
    return None


def _decimal_problem(value: Any) -> Problem | None:
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return [], NOT_FINITE
        if abs(value.adjusted()) > _DECIMAL_EXPONENT:
            return [], OUT_OF_RANGE
    return None


def _opts_out(metadata: Any) -> bool:
    """``allow_inf_nan=True`` said by pydantic (``Field``, ``AllowInfNan``) or msgspec.Meta."""
    for item in metadata:
        if getattr(item, "allow_inf_nan", None) is True:
            return True
        extra = getattr(item, "extra", None)
        if isinstance(extra, dict) and extra.get("allow_inf_nan") is True:
            return True
        if _opts_out(getattr(item, "metadata", None) or ()):  # a pydantic FieldInfo
            return True
    return False


class _FiniteChecks:
    """Builds the checks of one type; a recursive class is built once."""

    def __init__(self) -> None:
        self._classes: dict[Any, Check | None] = {}

    def build(self, tp: Any) -> Check | None:
        if not _holds_number(tp, set()):
            return None  # also ends a recursive type with no number in it
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:  # an opt-out is seen by _holds_number
            return self.build(args[0])
        if origin in (typing.Union, types.UnionType):
            return _first_of([self.build(arg) for arg in args])
        if origin is not None:
            return self._container(origin, args)
        if not isinstance(tp, type):
            return None  # Any, a TypeVar, a Literal's values
        if issubclass(tp, float):
            return _float_problem
        if issubclass(tp, decimal.Decimal):
            return _decimal_problem
        if issubclass(tp, (str, bytes, int, enum.Enum)):
            return None
        if tp in self._classes:  # built, or being built (a recursive type)
            return self._classes[tp]
        return self._class(tp)

    def _class(self, cls: Any) -> Check | None:
        # A recursive type refers to itself: the check it finds is a forwarder
        # to the one built below.
        built: list[Check | None] = [None]

        def forward(value: Any) -> Problem | None:
            check = built[0]
            return check(value) if check is not None else None

        self._classes[cls] = forward
        fields = [
            (attr, key, check)
            for attr, key, tp in _fields(cls)
            if (check := self.build(tp)) is not None
        ]
        built[0] = _object_check(cls, fields) if fields else None
        self._classes[cls] = built[0]
        return built[0]

    def _container(self, origin: Any, args: tuple[Any, ...]) -> Check | None:
        if not isinstance(origin, type):
            return None  # Literal, ClassVar...
        if issubclass(origin, tuple) and args and args[-1] is not Ellipsis:
            checks = [self.build(arg) for arg in args]
            if not any(checks):
                return None
            return _tuple_check(tuple(checks))
        if issubclass(origin, collections.abc.Mapping) and len(args) == 2:
            key_check, value_check = self.build(args[0]), self.build(args[1])
            if key_check is None and value_check is None:
                return None
            return _mapping_check(key_check, value_check)
        if issubclass(origin, collections.abc.Iterable) and args:
            item_check = self.build(args[0])
            return _items_check(item_check) if item_check is not None else None
        return None


def _holds_number(tp: Any, seen: set[Any]) -> bool:
    """Whether a value of type *tp* can hold a float or a Decimal somewhere."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return not _opts_out(tp.__metadata__) and _holds_number(typing.get_args(tp)[0], seen)
    if origin is not None:  # a union, a container (a Literal's values are not types)
        return any(_holds_number(arg, seen) for arg in typing.get_args(tp))
    if not isinstance(tp, type):
        return False
    if issubclass(tp, (float, decimal.Decimal)):
        return True
    if issubclass(tp, (str, bytes, int, enum.Enum)) or tp in seen:
        return False
    seen.add(tp)
    return any(_holds_number(field_type, seen) for _, _, field_type in _fields(tp))


def _fields(cls: Any) -> list[tuple[str, str | int, Any]]:
    """(attribute, location, type) of each field of a body type that may hold a number."""
    if pydantic_model(cls):
        if cls.model_config.get("allow_inf_nan") is True:
            return []  # the model says NaN and Infinity are welcome
        opted_out = {
            name for name, info in cls.model_fields.items() if _opts_out(info.metadata)
        }  # Field(allow_inf_nan=True)
        return [(f.attr, f.key, f.type) for f in fields(cls) if f.attr not in opted_out]
    return [(f.attr, f.key, f.type) for f in fields(cls)]


def _first_of(checks: list[Check | None]) -> Check | None:
    found = [check for check in checks if check is not None]
    if len(found) <= 1:
        return found[0] if found else None

    def check(value: Any) -> Problem | None:
        for one in found:
            problem = one(value)
            if problem is not None:
                return problem
        return None

    return check


def _object_check(cls: Any, fields: list[tuple[str, str | int, Check]]) -> Check:
    steps = tuple(fields)
    if all(inner is _float_problem for _, _, inner in steps) and not typing.is_typeddict(cls):
        # The usual body (a few float fields next to strings and ints): no call per field.
        floats = tuple((attr, key) for attr, key, _ in steps)

        def check_floats(value: Any) -> Problem | None:
            if not isinstance(value, cls):
                return None
            for attr, key in floats:
                number = getattr(value, attr)
                # x - x is 0.0 for every finite float, NaN for NaN and ±inf.
                if isinstance(number, float) and number - number != 0.0:
                    return [key], NOT_FINITE
            return None

        return check_floats
    if typing.is_typeddict(cls):

        def check_dict(value: Any) -> Problem | None:
            if not isinstance(value, dict):
                return None
            for attr, key, inner in steps:
                problem = inner(value.get(attr))
                if problem is not None:
                    return [key, *problem[0]], problem[1]
            return None

        return check_dict

    def check(value: Any) -> Problem | None:
        if not isinstance(value, cls):
            return None
        for attr, key, inner in steps:
            problem = inner(getattr(value, attr, None))
            if problem is not None:
                return [key, *problem[0]], problem[1]
        return None

    return check


def _tuple_check(checks: tuple[Check | None, ...]) -> Check:
    def check(value: Any) -> Problem | None:
        if not isinstance(value, tuple):
            return None
        for index, (item, inner) in enumerate(zip(value, checks, strict=False)):
            problem = inner(item) if inner is not None else None
            if problem is not None:
                return [index, *problem[0]], problem[1]
        return None

    return check


def _mapping_check(key_check: Check | None, value_check: Check | None) -> Check:
    def check(value: Any) -> Problem | None:
        if not isinstance(value, collections.abc.Mapping):
            return None
        for key, item in value.items():
            problem = key_check(key) if key_check is not None else None
            if problem is None and value_check is not None:
                problem = value_check(item)
            if problem is not None:
                where = key if isinstance(key, (str, int)) else str(key)
                return [where, *problem[0]], problem[1]
        return None

    return check


def _items_check(item_check: Check) -> Check:
    def check(value: Any) -> Problem | None:
        if not isinstance(value, (list, tuple, set, frozenset)):
            return None
        for index, item in enumerate(value):
            problem = item_check(item)
            if problem is not None:
                return [index, *problem[0]], problem[1]
        return None

    return check
