"""Typed handlers: annotations read at registration, through the public API.

Each annotation kind (path conversion, query scalars and lists, the body as a
msgspec.Struct, dataclass, TypedDict or pydantic model), the 422 shape both
engines share, returned models, and the start-up errors.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microroute import App, Router, StartupError
from microroute.testing import TestClient


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class User(msgspec.Struct):
    name: str
    age: int
    tags: list[str] = []


@dataclasses.dataclass
class Pet:
    name: str
    legs: int = 4


class Point(TypedDict):
    x: int
    y: int


class PUser(pydantic.BaseModel):
    name: str
    age: int


class Address(pydantic.BaseModel):
    city: str


class PPerson(pydantic.BaseModel):
    name: str
    address: Address


def client_for(*handlers: tuple[str, str, Any], **app_options: Any) -> TestClient:
    router = Router()
    for method, path, fn in handlers:
        router.add(path, fn, methods=[method])
    return TestClient(App(router, **app_options))


def invalid(response: Any) -> list[dict[str, Any]]:
    """The problems of a 422, after checking the shape every engine shares."""
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/json"
    data = response.json()
    assert data["error"] == "Invalid request"
    assert set(data) == {"error", "detail"}
    for problem in data["detail"]:
        assert set(problem) == {"loc", "msg", "type"}
        assert isinstance(problem["msg"], str) and problem["msg"]
        assert isinstance(problem["type"], str) and problem["type"]
    detail: list[dict[str, Any]] = data["detail"]
    return detail


# -- path parameters -----------------------------------------------------------


def test_path_params_are_converted_by_annotation() -> None:
    def handler(
        n: int, f: float, u: uuid.UUID, d: datetime.date, c: Color, lit: Literal["a", "b"]
    ) -> dict[str, Any]:
        return {"types": [type(v).__name__ for v in (n, f, u, d, c, lit)], "n": n + 1}

    client = client_for(("GET", "/x/[n]/[f]/[u]/[d]/[c]/[lit]", handler))
    uid = "12345678-1234-5678-1234-567812345678"
    response = client.get(f"/x/41/1.5/{uid}/2024-02-29/red/b")
    assert response.status_code == 200, response.text
    assert response.json() == {"types": ["int", "float", "UUID", "date", "Color", "str"], "n": 42}


@pytest.mark.parametrize(
    "path",
    [
        "/x/abc/1.5/12345678-1234-5678-1234-567812345678/2024-02-29/red/a",
        "/x/1_0/1.5/12345678-1234-5678-1234-567812345678/2024-02-29/red/a",
        "/x/1/nope/12345678-1234-5678-1234-567812345678/2024-02-29/red/a",
        "/x/1/1.5/not-a-uuid/2024-02-29/red/a",
        "/x/1/1.5/12345678-1234-5678-1234-567812345678/2023-02-29/red/a",
        "/x/1/1.5/12345678-1234-5678-1234-567812345678/2024-02-29/green/a",
        "/x/1/1.5/12345678-1234-5678-1234-567812345678/2024-02-29/red/c",
    ],
)
def test_a_path_value_that_does_not_convert_is_a_404(path: str) -> None:
    """README: "converted; a value that does not convert is a 404, as a route converter's is"."""

    def handler(
        n: int, f: float, u: uuid.UUID, d: datetime.date, c: Color, lit: Literal["a", "b"]
    ) -> dict[str, Any]:
        raise AssertionError("never called")

    client = client_for(("GET", "/x/[n]/[f]/[u]/[d]/[c]/[lit]", handler))
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_str_and_unannotated_path_params_stay_strings() -> None:
    def handler(a: str, b, slug: list[str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        return {"a": a, "b": b, "slug": slug}

    client = client_for(("GET", "/[a]/[b]/[...slug]", handler))
    assert client.get("/1/2/3/4").json() == {"a": "1", "b": "2", "slug": ["3", "4"]}


def test_a_converted_static_get_is_still_cached_per_path() -> None:
    calls: list[int] = []

    def handler(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n}

    client = client_for(("GET", "/n/[n]", handler))
    assert client.get("/n/7").headers["X-Microroute-Cache"] == "MISS"
    assert client.get("/n/7").headers["X-Microroute-Cache"] == "HIT"
    assert client.get("/n/x").status_code == 404
    assert calls == [7]


# -- query parameters -------------------------------------------------------------


def test_query_scalars_and_lists_with_defaults() -> None:
    def handler(
        limit: int = 10,
        tag: list[str] = [],  # noqa: B006 - the idiom typed handlers document
        ids: list[int] = [],  # noqa: B006
        flag: bool = False,
    ) -> dict[str, Any]:
        return {"limit": limit, "tag": tag, "ids": ids, "flag": flag}

    client = client_for(("GET", "/q", handler))
    assert client.get("/q").json() == {"limit": 10, "tag": [], "ids": [], "flag": False}
    assert client.get("/q?limit=3&tag=a&tag=b&ids=1&ids=2&flag=true").json() == {
        "limit": 3,
        "tag": ["a", "b"],
        "ids": [1, 2],
        "flag": True,
    }


def test_a_required_query_param_missing_or_wrong_is_a_422_naming_it() -> None:
    def handler(page: int, size: Annotated[int, msgspec.Meta(le=50)] = 10) -> dict[str, int]:
        return {"page": page, "size": size}

    client = client_for(("GET", "/q", handler))
    assert invalid(client.get("/q")) == [
        {"loc": ["query", "page"], "msg": "Field required", "type": "missing"}
    ]
    assert invalid(client.get("/q?page=x&size=99")) == [
        {"loc": ["query", "page"], "msg": "Expected int, got str", "type": "int_parsing"},
        {"loc": ["query", "size"], "msg": "Expected int <= 50", "type": "less_than_equal"},
    ]
    assert client.get("/q?page=2").json() == {"page": 2, "size": 10}


def test_a_list_query_item_that_fails_is_located_by_index() -> None:
    def handler(ids: list[int] = []) -> dict[str, Any]:  # noqa: B006
        return {"ids": ids}

    client = client_for(("GET", "/q", handler))
    assert invalid(client.get("/q?ids=1&ids=x")) == [
        {"loc": ["query", "ids", 1], "msg": "Expected int, got str", "type": "int_parsing"}
    ]


def test_a_query_reading_get_is_dynamic() -> None:
    def handler(limit: int = 1) -> dict[str, int]:
        return {"limit": limit}

    client = client_for(("GET", "/q", handler))
    assert client.get("/q?limit=2").json() == {"limit": 2}
    response = client.get("/q?limit=3")
    assert response.json() == {"limit": 3}
    assert "X-Microroute-Cache" not in response.headers


# -- bodies: msgspec -----------------------------------------------------------------


def test_a_struct_body_is_decoded_and_validated() -> None:
    def create(body: User) -> tuple[User, Literal[201]]:
        return body, 201

    client = client_for(("POST", "/users", create))
    response = client.post("/users", json={"name": "Ada", "age": 36})
    assert response.status_code == 201
    assert response.json() == {"name": "Ada", "age": 36, "tags": []}
    assert invalid(client.post("/users", json={"name": "Ada", "age": "old"})) == [
        {"loc": ["body", "age"], "msg": "Expected int, got str", "type": "int_parsing"}
    ]
    assert invalid(client.post("/users", json={"name": "Ada"})) == [
        {"loc": ["body", "age"], "msg": "Field required", "type": "missing"}
    ]
    assert invalid(client.post("/users", json={"name": "A", "age": 1, "tags": ["x", 2]})) == [
        {"loc": ["body", "tags", 1], "msg": "Expected str, got int", "type": "string_type"}
    ]


def test_malformed_empty_and_wrongly_shaped_bodies_are_422s() -> None:
    def create(body: User) -> dict[str, str]:
        return {"name": body.name}

    client = client_for(("POST", "/users", create))
    (problem,) = invalid(client.post("/users", data=b"{nope"))
    assert problem["loc"] == ["body"] and problem["msg"].startswith("Invalid JSON")
    assert problem["type"] == "json_invalid"
    assert invalid(client.post("/users")) == [
        {"loc": ["body"], "msg": "Field required", "type": "missing"}
    ]
    assert invalid(client.post("/users", json=[1])) == [
        {"loc": ["body"], "msg": "Expected object, got array", "type": "model_type"}
    ]


def test_dataclass_and_typeddict_bodies_by_annotation_not_name() -> None:
    def pet(animal: Pet) -> dict[str, Any]:
        return {"name": animal.name, "legs": animal.legs}

    def point(p: Point) -> dict[str, int]:
        return {"sum": p["x"] + p["y"]}

    client = client_for(("POST", "/pet", pet), ("POST", "/point", point))
    assert client.post("/pet", json={"name": "Rex"}).json() == {"name": "Rex", "legs": 4}
    assert client.post("/point", json={"x": 1, "y": 2}).json() == {"sum": 3}
    assert invalid(client.post("/point", json={"x": 1})) == [
        {"loc": ["body", "y"], "msg": "Field required", "type": "missing"}
    ]


def test_an_optional_body_may_be_absent() -> None:
    def update(body: User | None = None) -> dict[str, Any]:
        return {"given": body is not None}

    client = client_for(("POST", "/u", update))
    assert client.post("/u").json() == {"given": False}
    assert client.post("/u", json={"name": "a", "age": 1}).json() == {"given": True}


def test_query_and_body_problems_are_listed_together() -> None:
    def create(body: User, dry_run: bool = False) -> dict[str, bool]:
        return {"dry_run": dry_run}

    client = client_for(("POST", "/users", create))
    assert invalid(client.post("/users?dry_run=maybe", json={"name": "a"})) == [
        {"loc": ["query", "dry_run"], "msg": "Expected bool, got str", "type": "bool_parsing"},
        {"loc": ["body", "age"], "msg": "Field required", "type": "missing"},
    ]


# -- bodies: pydantic ------------------------------------------------------------------


def test_a_pydantic_body_gives_the_same_422_shape() -> None:
    """README: "Bad input is a 422 listing every problem with its location, the same shape
    whichever library validated"."""

    def create(person: PPerson) -> PPerson:
        return person

    client = client_for(("POST", "/people", create))
    ok = client.post("/people", json={"name": "Ada", "address": {"city": "London"}})
    assert ok.status_code == 200
    assert ok.json() == {"name": "Ada", "address": {"city": "London"}}
    detail = invalid(client.post("/people", json={"name": 3, "address": {}}))
    assert [p["loc"] for p in detail] == [["body", "name"], ["body", "address", "city"]]
    (problem,) = invalid(client.post("/people", data=b"{nope"))
    assert problem["loc"] == ["body"]


# -- return values ------------------------------------------------------------------------


def test_returned_models_are_json_without_an_annotation() -> None:
    """README: "A returned `msgspec.Struct`, dataclass or pydantic model is sent as JSON,
    annotated or not"."""

    def struct():  # type: ignore[no-untyped-def]
        return User(name="a", age=1)

    def dataclass():  # type: ignore[no-untyped-def]
        return Pet(name="Rex"), 201, {"X-Kind": "pet"}

    def model():  # type: ignore[no-untyped-def]
        return PUser(name="b", age=2)

    client = client_for(("GET", "/s", struct), ("GET", "/d", dataclass), ("GET", "/m", model))
    assert client.get("/s").json() == {"name": "a", "age": 1, "tags": []}
    response = client.get("/d")
    assert (response.status_code, response.headers["X-Kind"]) == (201, "pet")
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"name": "Rex", "legs": 4}
    assert client.get("/m").json() == {"name": "b", "age": 2}


def test_a_list_of_models_is_encoded_by_its_return_annotation() -> None:
    def users() -> list[User]:
        return [User(name="a", age=1), User(name="b", age=2)]

    def people() -> list[PUser]:
        return [PUser(name="c", age=3)]

    client = client_for(("GET", "/u", users), ("GET", "/p", people))
    assert [u["name"] for u in client.get("/u").json()] == ["a", "b"]
    assert client.get("/p").json() == [{"name": "c", "age": 3}]


# -- registration ------------------------------------------------------------------------------


def test_unannotated_parameters_keep_their_meaning() -> None:
    """README: "a handler with no annotations is called exactly as before"."""

    def handler(request, params, context, id):  # type: ignore[no-untyped-def]
        return {"q": request.args.get("q"), "params": params, "ctx": context.params, "id": id}

    client = client_for(("GET", "/i/[id]", handler))
    assert client.get("/i/5?q=z").json() == {
        "q": "z",
        "params": {"id": "5"},
        "ctx": {"id": "5"},
        "id": "5",
    }


def test_an_annotated_non_query_type_with_a_default_keeps_its_default() -> None:
    """README: "An annotated parameter of another type with a default keeps its default, as
    before"."""

    def handler(limit: int = 1, extra: dict[str, str] = {"a": "b"}) -> dict[str, Any]:  # noqa: B006
        return {"limit": limit, "extra": extra}

    client = client_for(("GET", "/x", handler))
    assert client.get("/x?extra=1&limit=2").json() == {"limit": 2, "extra": {"a": "b"}}


@pytest.mark.parametrize(
    ("path", "source", "message"),
    [
        ("/x", "def h(q: dict): ...", "parameter 'q' is annotated dict"),
        ("/x/[n]", "def h(n: User): ...", "path parameter annotated User"),
        ("/x", "def h(a: User, b: Pet): ...", "the body is already parameter 'a'"),
        ("/x", "def h(body: 'Missing'): ...", "parameter 'body': cannot resolve its annotation"),
    ],
)
def test_bad_annotations_are_start_up_errors_naming_the_function(
    path: str, source: str, message: str
) -> None:
    namespace: dict[str, Any] = {"User": User, "Pet": Pet}
    exec(source, namespace)
    router = Router()
    router.add(path, namespace["h"], methods=["POST"])
    with pytest.raises(StartupError) as raised:
        App(router).check()  # a provider added after App() could still fill some of them
    assert message in str(raised.value)
    assert "h()" in str(raised.value) or "h" in str(raised.value).split(":")[0]


def test_the_readme_example_runs_as_written() -> None:
    """The README's "Typed handlers" example, verbatim."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Typed handlers", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "readme_typed"}
    exec(code, namespace)
    client = TestClient(namespace["app"])
    assert client.get("/books/7").json() == {"id": 7}
    assert client.get("/books/abc").status_code == 404
    assert client.get("/books?limit=5&tag=a&tag=b").json() == {"limit": 5, "tags": ["a", "b"]}
    created = client.post("/books", json={"title": "Dune", "year": 1965})
    assert (created.status_code, created.json()["tags"]) == (201, [])
    assert invalid(client.post("/books", json={"title": "Dune", "year": "soon"})) == [
        {"loc": ["body", "year"], "msg": "Expected int, got str", "type": "int_parsing"}
    ]
    assert "/docs" not in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("model", [User, PUser])
def test_both_engines_read_json_numbers_alike(model: type) -> None:
    """README: "Both are lax in the same way: JSON has one number type, so `974.0` is a valid
    `int` (as JSON Schema, and so the OpenAPI document, says), and a numeric string such as
    `"36"` is accepted too"."""

    def create(body: Any) -> dict[str, Any]:
        return {"age": body.age, "type": type(body.age).__name__}

    create.__annotations__["body"] = model  # a local name: not resolvable from a string

    client = client_for(("POST", "/u", create))
    assert client.post("/u", json={"name": "a", "age": 974.0}).json() == {
        "age": 974,
        "type": "int",
    }
    assert client.post("/u", json={"name": "a", "age": "36"}).json()["age"] == 36
    (problem,) = invalid(client.post("/u", json={"name": "a", "age": 974.5}))
    assert problem["loc"] == ["body", "age"]


@pytest.mark.parametrize("model", [User, PUser])
@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nested past any recursion limit
        b'{"name": "\xff", "age": 1}',  # not UTF-8
        b'{"name": "a", "age": 1e999}',  # out of range
        b'{"name": "a", "age": NaN}',
        b'{"name": "a", "age": 1} trailing',
        b"\x00",
    ],
)
def test_hostile_json_bodies_are_422s_never_500s(model: type, data: bytes) -> None:
    """Bad input always gets a clear error, never a 500, whichever engine validates."""

    def create(body: Any) -> dict[str, bool]:
        return {"ok": True}

    create.__annotations__["body"] = model
    client = client_for(("POST", "/u", create))
    (problem,) = invalid(client.post("/u", data=data))[:1]
    assert problem["loc"][0] == "body"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=5), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    query=st.text(max_size=30),
)
def test_any_body_or_query_is_a_201_or_a_422(body: bytes, query: str) -> None:
    def create(body: User, dry_run: bool = False, ids: list[int] = []) -> Any:  # noqa: B006
        return body, 201

    client = _FUZZ_CLIENT.setdefault("client", client_for(("POST", "/u", create)))
    response = client.post("/u", params={"dry_run": query, "ids": query}, data=body)
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        invalid(response)


_FUZZ_CLIENT: dict[str, TestClient] = {}
