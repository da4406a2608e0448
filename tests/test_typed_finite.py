"""Typed numbers are finite: NaN, Infinity and absurd Decimal exponents are refused.

JSON has no NaN nor Infinity, yet both engines read them when asked nicely: a
lax ``float`` takes the strings ``"nan"`` and ``"inf"``, a ``Decimal`` takes
``"NaN"``, ``"sNaN"``, ``"Infinity"`` and ``"1E+999999999"``, and pydantic's
``float`` takes all of that plus the literals ``NaN`` and ``Infinity``.
"""

from __future__ import annotations

import decimal
from typing import Annotated, Any

import msgspec
import pydantic
import pytest

from microroute import App, Router
from microroute.testing import TestClient

NOT_FINITE = "Input should be a finite number"
OUT_OF_RANGE = "Number out of range"


class Reading(msgspec.Struct):
    sensor: str
    value: float
    price: decimal.Decimal = decimal.Decimal(0)
    history: list[float] = []
    by_unit: dict[str, decimal.Decimal] = {}
    raw: Annotated[float, msgspec.Meta(extra={"allow_inf_nan": True})] = 0.0


class FlatReading(msgspec.Struct):
    """Flat: a multipart form may fill it."""

    sensor: str
    value: float


class Series(msgspec.Struct):
    """Recursive: a bad number deep inside is found and located."""

    value: float
    parts: list[Series] = []


class PReading(pydantic.BaseModel):
    value: float
    price: decimal.Decimal = decimal.Decimal(0)
    raw: float = pydantic.Field(default=0.0, allow_inf_nan=True)


class PLoose(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(allow_inf_nan=True)
    value: float


def make_client() -> TestClient:
    router = Router()

    @router.get("/points/[x]")
    def point(x: float) -> dict[str, Any]:
        return {"x": x}

    @router.get("/prices/[amount]")
    def price(amount: decimal.Decimal) -> dict[str, Any]:
        return {"amount": str(amount)}

    @router.get("/search")
    def search(
        near: float = 0.0, budget: decimal.Decimal | None = None, at: tuple[float, ...] = ()
    ) -> dict[str, Any]:
        return {"near": near, "budget": str(budget), "at": list(at)}

    @router.post("/readings")
    def reading(body: Reading) -> dict[str, Any]:
        return {"value": body.value, "price": str(body.price), "raw": repr(body.raw)}

    @router.post("/flat-readings")
    def flat_reading(body: FlatReading) -> dict[str, Any]:
        return {"value": body.value}

    @router.post("/series")
    def series(body: Series) -> dict[str, Any]:
        return {"value": body.value}

    @router.post("/p-readings")
    def p_reading(body: PReading) -> dict[str, Any]:
        return {"value": body.value, "price": str(body.price), "raw": repr(body.raw)}

    @router.post("/p-loose")
    def p_loose(body: PLoose) -> dict[str, Any]:
        return {"value": repr(body.value)}

    return TestClient(App(router))


@pytest.fixture(scope="module")
def client() -> TestClient:
    return make_client()


def refused(response: Any) -> tuple[list[Any], str]:
    """The one problem of a 422, in the shape every 422 has."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "Invalid request"
    [problem] = body["detail"]
    assert sorted(problem) == ["loc", "msg", "type"]
    assert problem["type"] == "finite_number"  # pydantic's name for it
    return problem["loc"], problem["msg"]


NON_FINITE_FLOATS = ["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity"]
NON_FINITE_DECIMALS = ["NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "inf"]
HUGE_DECIMALS = ["1E+999999999", "-1E+999999999", "1E-999999999", "1E+309", "1E-309"]


@pytest.mark.parametrize("text", NON_FINITE_FLOATS)
def test_a_query_float_is_finite(client: TestClient, text: str) -> None:
    """README: "A typed number must be finite: `NaN` and `Infinity` (also the strings
    `"nan"`, `"inf"`) in a `float` or a `Decimal` are a 422 (a 404 in a path, as any
    value that does not convert), and so is a `Decimal` whose exponent is beyond
    ±308 (`1E+999999999`), which a handler's arithmetic could not finish with."
    """
    assert refused(client.get("/search", params={"near": text})) == (
        ["query", "near"],
        NOT_FINITE,
    )
    loc, msg = refused(client.get("/search", params=[("at", "1.5"), ("at", text)]))
    assert (loc, msg) == (["query", "at", 1], NOT_FINITE)


@pytest.mark.parametrize(
    ("text", "msg"),
    [(t, NOT_FINITE) for t in NON_FINITE_DECIMALS] + [(t, OUT_OF_RANGE) for t in HUGE_DECIMALS],
)
def test_a_query_decimal_is_finite_and_in_range(client: TestClient, text: str, msg: str) -> None:
    assert refused(client.get("/search", params={"budget": text})) == (
        ["query", "budget"],
        msg,
    )


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity"])
def test_a_non_finite_path_float_is_a_404_as_any_value_that_does_not_convert(
    client: TestClient, text: str
) -> None:
    assert client.get(f"/points/{text}").status_code == 404
    assert client.get("/points/abc").status_code == 404
    assert client.get("/points/2.5").json() == {"x": 2.5}


@pytest.mark.parametrize("text", [*NON_FINITE_DECIMALS, *HUGE_DECIMALS])
def test_a_non_finite_or_huge_path_decimal_is_a_404(client: TestClient, text: str) -> None:
    assert client.get(f"/prices/{text}").status_code == 404


def test_finite_numbers_at_the_edges_are_welcome(client: TestClient) -> None:
    query = {"near": "1.7976931348623157e308", "budget": "-9.99E+308", "at": "-0.0"}
    assert client.get("/search", params=query).json() == {
        "near": 1.7976931348623157e308,
        "budget": "-9.99E+308",
        "at": [-0.0],
    }
    assert client.get("/prices/1E-308").json() == {"amount": "1E-308"}
    assert client.get("/prices/0.000").json() == {"amount": "0.000"}


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        ({"sensor": "a", "value": "nan"}, ["body", "value"], NOT_FINITE),
        ({"sensor": "a", "value": "-inf"}, ["body", "value"], NOT_FINITE),
        ({"sensor": "a", "value": 1, "price": "sNaN"}, ["body", "price"], NOT_FINITE),
        ({"sensor": "a", "value": 1, "price": "Infinity"}, ["body", "price"], NOT_FINITE),
        ({"sensor": "a", "value": 1, "price": "1E+999999999"}, ["body", "price"], OUT_OF_RANGE),
        ({"sensor": "a", "value": 1, "history": [1, "inf"]}, ["body", "history", 1], NOT_FINITE),
        (
            {"sensor": "a", "value": 1, "by_unit": {"kg": "NaN"}},
            ["body", "by_unit", "kg"],
            NOT_FINITE,
        ),
    ],
)
def test_a_msgspec_body_is_finite(
    client: TestClient, body: dict[str, Any], loc: list[Any], msg: str
) -> None:
    assert refused(client.post("/readings", json=body)) == (loc, msg)


def test_a_json_number_too_large_for_a_decimal_range_is_refused(client: TestClient) -> None:
    """1e999 is a valid JSON number: a float refuses it, and a Decimal too, by its exponent."""
    body = b'{"sensor": "a", "value": 1, "price": 1e999}'
    response = client.post("/readings", data=body, headers={"Content-Type": "application/json"})
    assert refused(response) == (["body", "price"], OUT_OF_RANGE)
    body = b'{"sensor": "a", "value": 1e999}'
    response = client.post("/readings", data=body, headers={"Content-Type": "application/json"})
    assert refused(response) == (["body", "value"], OUT_OF_RANGE)  # msgspec's own words


@pytest.mark.parametrize("path", ["/flat-readings", "/p-readings"])
def test_a_form_body_is_finite(client: TestClient, path: str) -> None:
    response = client.post(path, files={"sensor": (None, "a"), "value": (None, "nan")})
    assert refused(response) == (["body", "value"], NOT_FINITE)


def test_a_bad_number_deep_in_a_recursive_body_is_located(client: TestClient) -> None:
    body = {"value": 1, "parts": [{"value": 2}, {"value": 3, "parts": [{"value": "inf"}]}]}
    assert refused(client.post("/series", json=body)) == (
        ["body", "parts", 1, "parts", 0, "value"],
        NOT_FINITE,
    )
    assert client.post("/series", json={"value": 1, "parts": [{"value": 2}]}).status_code == 200


@pytest.mark.parametrize(
    ("raw", "loc", "msg"),
    [
        (b'{"value": NaN}', ["body", "value"], NOT_FINITE),
        (b'{"value": Infinity}', ["body", "value"], NOT_FINITE),
        (b'{"value": "-inf"}', ["body", "value"], NOT_FINITE),
        (b'{"value": 1e999}', ["body", "value"], NOT_FINITE),
        (b'{"value": 1, "price": "NaN"}', ["body", "price"], NOT_FINITE),  # pydantic's own
        (b'{"value": 1, "price": "1E+999999999"}', ["body", "price"], OUT_OF_RANGE),
    ],
)
def test_a_pydantic_body_is_finite(
    client: TestClient, raw: bytes, loc: list[Any], msg: str
) -> None:
    response = client.post("/p-readings", data=raw, headers={"Content-Type": "application/json"})
    assert refused(response) == (loc, msg)


def test_a_field_or_model_that_allows_inf_nan_gets_them(client: TestClient) -> None:
    """Opting out: msgspec.Meta(extra={"allow_inf_nan": True}), pydantic's
    Field(allow_inf_nan=True) or model_config allow_inf_nan=True."""
    response = client.post("/readings", json={"sensor": "a", "value": 1, "raw": "nan"})
    assert response.status_code == 200 and response.json()["raw"] == "nan"
    response = client.post("/p-readings", json={"value": 1, "raw": "inf"})
    assert response.status_code == 200 and response.json()["raw"] == "inf"
    response = client.post("/p-loose", json={"value": "-inf"})
    assert response.status_code == 200 and response.json() == {"value": "-inf"}
