"""The 422's problem list: every problem of a request's input, located and typed.

A problem is ``{"loc": [...], "msg": ..., "type": ...}``, the shape pydantic and
FastAPI give: ``loc`` starts with where the input came from (``"body"``,
``"query"``), ``type`` is pydantic's name for the kind of problem
(``missing``, ``int_parsing``, ``extra_forbidden``, ``string_too_short``...),
whichever engine validated.

msgspec validates in one pass and stops at the first problem, which is what
makes a valid body cheap. So only once a value has failed,
:func:`every_problem` walks it again against its type, field by field and item
by item, with msgspec's own conversion at each step (so each step says exactly
what the engine would), and collects every problem, up to
:data:`MAX_PROBLEMS`. pydantic lists every problem itself.

>>> import msgspec
>>> class User(msgspec.Struct):
...     name: str
...     age: int
>>> every_problem({"age": "old"}, User, ["body"])  # doctest: +NORMALIZE_WHITESPACE
[{'loc': ['body', 'name'], 'msg': 'Field required', 'type': 'missing'},
 {'loc': ['body', 'age'], 'msg': 'Expected int, got str', 'type': 'int_parsing'}]
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import msgspec

from .finite import OUT_OF_RANGE, Check, finite_check
from .typeinfo import fields, is_structured

__all__ = [
    "MAX_PROBLEMS",
    "every_problem",
    "msgspec_problem",
    "problem",
    "pydantic_problems",
]

#: A 422 lists at most this many problems: enough to fix a body in one go,
#: bounded for a hostile one.
MAX_PROBLEMS = 100

#: Items of a list checked at once; only a chunk that fails is walked item by item.
_CHUNK = 512
#: A dict (a ``dict[str, X]`` field) larger than this is not walked key by key.
_MAX_WALKED_KEYS = 1000

# msgspec names the place of an error as a JSONPath: "$.items[0].name", "$['a b']".
_AT = re.compile(r" - at `\$(.*)`$")
# "[...]" is a value under some key of a dict: the location stops at the dict.
_STEP = re.compile(r"\[\.\.\.\]|\.([^.\[]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")
_MISSING = re.compile(r"missing required field `([^`]*)`")
_UNKNOWN = re.compile(r"contains unknown field `([^`]*)`")
_EXPECTED = re.compile(r"Expected `([^`]*)`(.*)")
_LENGTH = re.compile(r" of length (>=|<=|>|<)? ?(\d+)(?:, got (\d+))?")

_FIELD_REQUIRED = "Field required"
_EXTRA_FORBIDDEN = "Extra inputs are not permitted"

#: msgspec's "Expected `X`, got `Y`": pydantic's type, by X (and whether Y is a string).
_TYPE_ERRORS = {
    "int": ("int_parsing", "int_type"),
    "float": ("float_parsing", "float_type"),
    "bool": ("bool_parsing", "bool_type"),
    "str": ("string_type", "string_type"),
    "bytes": ("bytes_type", "bytes_type"),
    "array": ("list_type", "list_type"),
    "object": ("dict_type", "dict_type"),
    "null": ("none_required", "none_required"),
    "decimal": ("decimal_parsing", "decimal_type"),
    "uuid": ("uuid_parsing", "uuid_type"),
    "date": ("date_parsing", "date_type"),
    "datetime": ("datetime_parsing", "datetime_type"),
    "time": ("time_parsing", "time_type"),
}
#: msgspec's "Invalid ..." messages: pydantic's type.
_INVALID = {
    "Invalid UUID": "uuid_parsing",
    "Invalid RFC3339 encoded datetime": "datetime_parsing",  # before "date": a prefix of it
    "Invalid RFC3339 encoded date": "date_parsing",
    "Invalid RFC3339 encoded time": "time_parsing",
    "Invalid decimal string": "decimal_parsing",
    "Invalid base64 encoded string": "base64_decode",
    "Invalid ISO8601 duration": "time_delta_parsing",
    "Invalid enum value": "enum",
    "Invalid value": "union_tag_invalid",
    "Number out of range": "finite_number",
}
#: A bound of a number: pydantic's type.
_BOUNDS = {
    ">=": "greater_than_equal",
    ">": "greater_than",
    "<=": "less_than_equal",
    "<": "less_than",
}


def problem(loc: list[Any], msg: str, type_: str) -> dict[str, Any]:
    """One problem, as the 422 lists it."""
    return {"loc": loc, "msg": msg, "type": type_}


def error_type(message: str, tp: Any = None) -> str:
    """pydantic's name for the problem msgspec describes in *message* (``value_error``
    when there is none). *tp*, the type that failed, refines a few."""
    if _MISSING.search(message):
        return "missing"
    if _UNKNOWN.search(message):
        return "extra_forbidden"
    expected = _EXPECTED.match(message)
    if expected is not None:
        kind, rest = expected.group(1), expected.group(2)
        kind = kind.removesuffix(" | null")
        if rest.startswith(", got "):
            got_string = rest == ", got `str`"
            if kind == "object" and is_structured(_bare_optional(tp)):
                return "model_type"
            if kind == "int" and rest == ", got `float`":
                return "int_from_float"
            pair = _TYPE_ERRORS.get(kind)
            return pair[0 if got_string else 1] if pair else "value_error"
        length = _LENGTH.match(rest)
        if length is not None:
            bound, size, got = length.groups()
            too_short = bound in (">=", ">") or (got is not None and int(got) < int(size))
            prefix = {"str": "string_", "bytes": "bytes_"}.get(kind, "")
            return f"{prefix}too_short" if too_short else f"{prefix}too_long"
        if rest.startswith(" matching regex"):
            return "string_pattern_mismatch"
        if rest.startswith(" that's a multiple of"):
            return "multiple_of"
        if "timezone" in rest:
            return "timezone_naive" if "without" in rest else "timezone_aware"
        bound = rest.split(" ", 2)[1] if rest.startswith(" ") else ""
        if bound in _BOUNDS:
            return _BOUNDS[bound]
        return "value_error"
    for start, type_ in _INVALID.items():
        if message.startswith(start):
            if type_ == "enum" and typing.get_origin(_bare_optional(tp)) is typing.Literal:
                return "literal_error"
            return type_
    if message == OUT_OF_RANGE:
        return "finite_number"
    return "value_error"


def _bare_optional(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _bare_optional(args[0])
    return tp


def _split(exc: Exception) -> tuple[list[str | int], str]:
    """msgspec's error as (where below the value, the message without its path)."""
    message = str(exc)
    steps: list[str | int] = []
    found = _AT.search(message)
    if found is not None:
        message = message[: found.start()]
        for key, index, quoted in _STEP.findall(found.group(1)):
            if index:
                steps.append(int(index))
            elif key or quoted:
                steps.append(key or quoted.replace("\\'", "'"))
    return steps, message


def msgspec_problem(loc: list[Any], exc: Exception, tp: Any = None) -> dict[str, Any]:
    """msgspec's one error about a value at *loc* (of type *tp*, when known) as a problem."""
    steps, message = _split(exc)
    return _located(loc + steps, message, tp if not steps else None)


def _located(loc: list[Any], message: str, tp: Any) -> dict[str, Any]:
    type_ = error_type(message, tp)
    if type_ == "missing":
        name = _MISSING.search(message)
        assert name is not None
        return problem([*loc, name.group(1)], _FIELD_REQUIRED, type_)
    if type_ == "extra_forbidden":
        name = _UNKNOWN.search(message)
        assert name is not None
        return problem([*loc, name.group(1)], _EXTRA_FORBIDDEN, type_)
    return problem(loc, message.replace("`", ""), type_)


def pydantic_problems(where: str, exc: Any) -> list[dict[str, Any]]:
    """pydantic's own list of problems, located under *where*."""
    return [
        problem([where, *error["loc"]], error["msg"], error["type"])
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ][:MAX_PROBLEMS]


def every_problem(
    value: Any, tp: Any, loc: list[Any], first: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every problem of *value* (decoded JSON, or a form's fields) as a *tp*, under *loc*.

    *first* is the problem the engine's one pass reported, when there was one:
    it is always in the list, even where the walk reads the value differently.
    A value with no problem gives ``[]``.
    """
    walk = _Walk()
    walk.value(value, tp, loc)
    problems = walk.problems
    if first is not None and all(p["loc"] != first["loc"] for p in problems):
        problems.insert(0, first)
    return problems[:MAX_PROBLEMS]


class _Walk:
    """Collects the problems of one value, descending only where a conversion failed."""

    def __init__(self) -> None:
        self.problems: list[dict[str, Any]] = []
        self._checks: dict[Any, Check | None] = {}

    def full(self) -> bool:
        return len(self.problems) >= MAX_PROBLEMS

    def _first(self, value: Any, tp: Any) -> dict[str, Any] | None:
        """The first problem of *value* as a *tp*, located below it; None if it is fine."""
        try:
            converted = msgspec.convert(value, tp, strict=False)
        except msgspec.ValidationError as exc:
            return msgspec_problem([], exc, tp)
        except (TypeError, ValueError) as exc:  # a type convert() cannot build from JSON
            return problem([], str(exc), "value_error")
        try:
            check = self._checks[tp]
        except KeyError:
            check = self._checks[tp] = finite_check(tp)
        except TypeError:  # an unhashable annotation
            check = finite_check(tp)
        found = check(converted) if check is not None else None
        if found is not None:
            return problem(found[0], found[1], "finite_number")
        return None

    def value(self, value: Any, tp: Any, loc: list[Any]) -> None:
        if self.full():
            return
        first = self._first(value, tp)
        if first is None:
            return
        before = len(self.problems)
        self._parts(value, tp, loc)
        if len(self.problems) == before:  # nothing below it: the value itself is wrong
            self.problems.append({**first, "loc": loc + first["loc"]})

    def _parts(self, value: Any, tp: Any, loc: list[Any]) -> None:
        """The problems of *value*'s parts (fields, items), where it has parts."""
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            inner = args[0]
            shallow = _shallow(inner)
            if shallow is not None:  # the container's own constraints (its length)
                constrained = typing.Annotated.__class_getitem__((shallow, *tp.__metadata__))
                found = self._first(value, constrained)
                if found is not None:
                    self.problems.append({**found, "loc": loc + found["loc"]})
            self._parts(value, inner, loc)
            return
        if origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if value is not None and len(rest) == 1:
                self._parts(value, rest[0], loc)
            return
        if isinstance(value, dict):
            if is_structured(tp):
                self._fields(value, tp, loc)
            elif _is_dict_type(origin, args) and len(value) <= _MAX_WALKED_KEYS:
                for key, item in value.items():
                    found = self._first(key, args[0])
                    if found is not None:
                        self.problems.append({**found, "loc": [*loc, key]})
                    self.value(item, args[1], [*loc, key])
            return
        if isinstance(value, list) and origin is not None:
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(args) == len(value):
                    for index, (item, item_type) in enumerate(zip(value, args, strict=True)):
                        self.value(item, item_type, [*loc, index])
                return
            if origin in (list, set, frozenset, tuple) and args:
                self._items(value, args[0], loc)

    def _fields(self, value: dict[str, Any], cls: Any, loc: list[Any]) -> None:
        config = getattr(cls, "__struct_config__", None)
        if config is not None and config.array_like:
            return  # an object where an array belongs: the value itself is wrong
        tag_field: str | None = None
        tag: Any = None
        if config is not None and config.tag_field is not None:
            tag_field, tag = config.tag_field, config.tag
        if tag_field is not None and tag_field in value and value[tag_field] != tag:
            self.problems.append(
                problem(
                    [*loc, tag_field], f"Invalid value {value[tag_field]!r}", "union_tag_invalid"
                )
            )
        known = fields(cls)
        for field in known:
            if self.full():
                return
            if field.key in value:
                self.value(value[field.key], field.type, [*loc, field.key])
            elif field.required:
                self.problems.append(problem([*loc, field.key], _FIELD_REQUIRED, "missing"))
        if config is not None and config.forbid_unknown_fields:
            names: set[Any] = {field.key for field in known}
            names.add(tag_field)
            for key in value:
                if key not in names and not self.full():
                    self.problems.append(problem([*loc, key], _EXTRA_FORBIDDEN, "extra_forbidden"))

    def _items(self, items: list[Any], item_type: Any, loc: list[Any]) -> None:
        # A chunk at a time at C speed; item by item only within a chunk that fails.
        chunk_type = list[item_type]
        for start in range(0, len(items), _CHUNK):
            if self.full():
                return
            chunk = items[start : start + _CHUNK]
            if self._first(chunk, chunk_type) is None:
                continue
            for offset, item in enumerate(chunk):
                self.value(item, item_type, [*loc, start + offset])


def _is_dict_type(origin: Any, args: tuple[Any, ...]) -> bool:
    return isinstance(origin, type) and issubclass(origin, dict) and len(args) == 2


def _shallow(tp: Any) -> Any:
    """The container *tp* with any items: its own constraints checked without its items'."""
    origin = typing.get_origin(tp)
    if origin in (list, set, frozenset):
        return list[Any]
    if origin is tuple:
        return tuple[Any, ...]
    if origin is dict:
        return dict[Any, Any]
    return None
