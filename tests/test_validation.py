"""microroute.validation: the walk that finds every problem of a value msgspec refused.

The property that matters: the walk finds a problem exactly when msgspec's
one pass fails (so a valid value never gets a 422 and an invalid one never
gets an empty list), and msgspec's own first problem is always in the list.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microroute.finite import finite_check
from microroute.validation import MAX_PROBLEMS, error_type, every_problem, msgspec_problem


class Tag(msgspec.Struct, rename="camel"):
    tag_name: str
    weight: Annotated[float, msgspec.Meta(ge=0)] = 1.0


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=10)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: Annotated[list[Tag], msgspec.Meta(max_length=3)] = []
    extra: dict[str, int] = {}
    when: datetime.date | None = None
    kind: Literal["a", "b"] = "a"
    pair: tuple[int, str] | None = None


@dataclasses.dataclass
class Box:
    items: list[Item]
    owner: uuid.UUID


class Point(TypedDict):
    x: int
    y: int


class Shape(msgspec.Struct, tag="square"):
    side: int


TYPES: list[Any] = [Item, Box, Point, Shape, list[Item], dict[str, Point], list[int], list[float]]

#: JSON-like values, biased towards the keys and shapes the types above use.
KEYS = st.sampled_from(
    [
        *("name", "price", "tags", "tagName", "weight", "extra", "when", "kind", "pair"),
        *("items", "owner", "x", "y", "side", "type", "other"),
    ]
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.sampled_from(["", "a", "b", "2024-02-29", "nan", "square", str(uuid.UUID(int=1))])
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def fails(value: Any, tp: Any) -> bool:
    try:
        converted = msgspec.convert(value, tp, strict=False)
    except msgspec.ValidationError:
        return True
    check = finite_check(tp)
    return check is not None and check(converted) is not None


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(tp=st.sampled_from(TYPES), value=VALUES)
def test_the_walk_finds_a_problem_exactly_when_msgspec_fails(tp: Any, value: Any) -> None:
    problems = every_problem(value, tp, ["body"])
    assert bool(problems) == fails(value, tp), problems
    for problem in problems:
        assert set(problem) == {"loc", "msg", "type"}
        assert problem["loc"][0] == "body"
        assert problem["msg"] and problem["type"]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(tp=st.sampled_from(TYPES), value=VALUES)
def test_msgspecs_own_first_problem_is_always_listed(tp: Any, value: Any) -> None:
    try:
        msgspec.convert(value, tp, strict=False)
    except msgspec.ValidationError as exc:
        first = msgspec_problem(["body"], exc, tp)
        problems = every_problem(value, tp, ["body"], first)
        assert first["loc"] in [p["loc"] for p in problems]


def test_every_problem_in_nested_fields_lists_and_dicts() -> None:
    value = {
        "name": "",
        "price": 0,
        "tags": [{"tagName": 1}, {"weight": -1}, {}, {}],
        "extra": {"a": "x", "b": 2, "c": "y"},
        "kind": "c",
        "pair": [1, 2],
        "surprise": True,
    }
    got = [(p["loc"], p["type"]) for p in every_problem(value, Item, ["body"])]
    assert got == [
        (["body", "name"], "string_too_short"),
        (["body", "price"], "greater_than"),
        (["body", "tags"], "too_long"),
        (["body", "tags", 0, "tagName"], "string_type"),
        (["body", "tags", 1, "tagName"], "missing"),
        (["body", "tags", 1, "weight"], "greater_than_equal"),
        (["body", "tags", 2, "tagName"], "missing"),
        (["body", "tags", 3, "tagName"], "missing"),
        (["body", "extra", "a"], "int_parsing"),
        (["body", "extra", "c"], "int_parsing"),
        (["body", "kind"], "literal_error"),
        (["body", "pair", 1], "string_type"),
        (["body", "surprise"], "extra_forbidden"),
    ]


def test_a_tagged_struct_with_another_tag_is_located_at_the_tag() -> None:
    assert every_problem({"type": "circle", "side": "x"}, Shape, ["body"]) == [
        {"loc": ["body", "type"], "msg": "Invalid value 'circle'", "type": "union_tag_invalid"},
        {"loc": ["body", "side"], "msg": "Expected int, got str", "type": "int_parsing"},
    ]


class Reading(msgspec.Struct):
    value: float
    kind: Literal["a", "b"]


def test_a_non_finite_number_is_a_problem_beside_the_others() -> None:
    problems = every_problem({"value": "nan", "kind": "z"}, Reading, ["body"])
    assert [(p["loc"], p["type"]) for p in problems] == [
        (["body", "value"], "finite_number"),
        (["body", "kind"], "literal_error"),
    ]


def test_a_long_list_is_walked_a_chunk_at_a_time_and_capped() -> None:
    value = [1] * 5000 + ["x"] + [2] * 5000 + ["y"] * 500
    problems = every_problem(value, list[int], ["body"])
    assert len(problems) == MAX_PROBLEMS
    assert problems[0]["loc"] == ["body", 5000]
    assert problems[1]["loc"] == ["body", 10_001]


def test_a_value_that_is_fine_has_no_problem() -> None:
    assert every_problem({"x": 1, "y": "2"}, Point, ["body"]) == []


@pytest.mark.parametrize(
    ("message", "type_"),
    [
        ("Object missing required field `a`", "missing"),
        ("Object contains unknown field `b`", "extra_forbidden"),
        ("Expected `int`, got `str`", "int_parsing"),
        ("Expected `int | null`, got `str`", "int_parsing"),
        ("Expected `int`, got `array`", "int_type"),
        ("Expected `array`, got `object`", "list_type"),
        ("Expected `array` of length 2, got 1", "too_short"),
        ("Expected `array` of length 2, got 3", "too_long"),
        ("Expected `bytes` of length >= 3", "bytes_too_short"),
        ("Expected `object` of length <= 1", "too_long"),
        ("Expected `datetime` with a timezone component", "timezone_aware"),
        ("Invalid UUID", "uuid_parsing"),
        ("Invalid RFC3339 encoded datetime", "datetime_parsing"),
        ("Invalid enum value 'c'", "enum"),
        ("Number out of range", "finite_number"),
        ("Something else entirely", "value_error"),
    ],
)
def test_msgspec_messages_map_to_pydantic_types(message: str, type_: str) -> None:
    assert error_type(message) == type_
