"""JSON encoding: the optional orjson path says exactly what the stdlib path says."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid

import pytest

from microroute.responses import _encode_stdlib, encode_json


@dataclasses.dataclass
class Point:
    x: int
    tags: list[str]


class Level(enum.IntEnum):
    HIGH = 3


VALUES = [
    {"message": "Hello, World!"},
    [1, "é", None, True, False, 0.1, -0.0, 1e16],
    {"when": datetime.datetime(2024, 1, 2, 3, 4, 5, 678)},
    {"when": datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)},
    {"day": datetime.date(2024, 1, 1), "at": datetime.time(1, 2, 3)},
    {"id": uuid.UUID(int=5), "price": decimal.Decimal("1.10")},
    Point(1, ["a"]),
    {"set": {1}, "tuple": (1, 2)},
    {2: "int key", None: "null key", True: "bool key"},
    {"level": Level.HIGH},
    {"big": 2**70},
    "just a string",
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_encoders_agree(value: object) -> None:
    fast, stdlib = encode_json(value), _encode_stdlib(value)
    assert json.loads(fast) == json.loads(stdlib)


def test_separators_are_compact() -> None:
    assert _encode_stdlib({"a": [1, 2]}) == encode_json({"a": [1, 2]}) == b'{"a":[1,2]}'


def test_non_ascii_is_sent_as_utf8() -> None:
    assert encode_json({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()
    assert _encode_stdlib({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()


def test_unknown_types_fail_in_both() -> None:
    for encode in (encode_json, _encode_stdlib):
        with pytest.raises(TypeError, match="object"):
            encode({"x": object()})
