"""Typed bodies: which Content-Types they read, the 415, and the 422 listing every problem.

Issue 23, item 2. Each test goes through the public API (an ``App`` and its
``TestClient``); ``tests/test_validation.py`` holds the unit tests of the walk
that finds every problem.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pydantic
import pytest

from microroute import App, Router
from microroute.targets import load_app
from microroute.testing import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class User(msgspec.Struct):
    name: str
    age: int
    tags: list[str] = []


class Address(msgspec.Struct):
    city: str
    zip: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5}$")]


class Person(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    age: Annotated[int, msgspec.Meta(ge=0)]
    email: str
    address: Address
    scores: list[int] = []


class PUser(pydantic.BaseModel):
    name: str
    age: int


class PPerson(pydantic.BaseModel):
    name: str
    age: int
    email: str


@dataclasses.dataclass
class Pet:
    name: str
    legs: int = 4


class Point(TypedDict):
    x: int
    y: int


def client_for(*handlers: tuple[str, str, Any]) -> TestClient:
    router = Router()
    for method, path, fn in handlers:
        router.add(path, fn, methods=[method])
    return TestClient(App(router))


def create_user(body: User) -> dict[str, Any]:
    return {"name": body.name, "age": body.age, "tags": body.tags}


def create_puser(body: PUser) -> Any:
    return body, 201  # an unannotated return: the model is still sent as JSON


def create_person(body: Person) -> dict[str, str]:
    return {"name": body.name}


def create_pperson(body: PPerson) -> dict[str, str]:
    return {"name": body.name}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return client_for(
        ("POST", "/users", create_user),
        ("PATCH", "/users", create_user),
        ("PUT", "/users", create_user),
        ("POST", "/p-users", create_puser),
        ("POST", "/people", create_person),
        ("POST", "/p-people", create_pperson),
    )


def invalid(response: Any) -> list[dict[str, Any]]:
    """The problems of a 422, after checking the shape every engine shares."""
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["error"] == "Invalid request"
    for problem in data["detail"]:
        assert set(problem) == {"loc", "msg", "type"}
    detail: list[dict[str, Any]] = data["detail"]
    return detail


# -- which Content-Types a JSON-typed body reads -----------------------------------


@pytest.mark.parametrize("path", ["/users", "/p-users"])
def test_a_json_body_sent_with_no_content_type_is_read_as_json(
    client: TestClient, path: str
) -> None:
    """README: 'A typed body is JSON. Sent as `application/json` (or any
    `application/*+json`), or with no Content-Type at all, it is decoded and validated
    in one pass'. (DESIGN: "A JSON body sent with no Content-Type is read as JSON".)"""
    response = client.post(path, data=b'{"name": "Ada", "age": 36}')  # no Content-Type
    assert response.status_code in (200, 201), response.text
    assert response.json()["name"] == "Ada"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
        "application/vnd.api+json",
    ],
)
@pytest.mark.parametrize("path", ["/users", "/p-users"])
def test_json_in_any_spelling_is_json(client: TestClient, path: str, content_type: str) -> None:
    """README: 'Sent as `application/json` (or any `application/*+json`)'."""
    response = client.post(
        path, data=b'{"name": "Ada", "age": 36}', headers={"Content-Type": content_type}
    )
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("path", ["/users", "/p-users", "/people", "/p-people"])
def test_a_curl_d_form_to_a_json_body_is_a_415_saying_what_to_send(
    client: TestClient, path: str
) -> None:
    """README: 'Sent as anything else it is a 415 that says what was sent and what to send.
    `curl -d` sends `application/x-www-form-urlencoded`' -- not a 422 about fields that
    are right there; and 'A URL-encoded form used to fill a flat body; it is now a 415'."""
    body = b'{"name": "Ada", "age": 36, "email": "a@b.c"}'
    response = client.post(
        path, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415, response.text
    message = response.json()["error"]
    assert "application/x-www-form-urlencoded (what curl -d sends)" in message
    assert "Content-Type: application/json" in message
    assert "curl --json" in message
    assert response.headers["Accept-Post"].startswith("application/json")


def test_the_415_names_the_type_and_the_header_fits_the_method(client: TestClient) -> None:
    """README: 'The 415 of a POST or PATCH lists what it accepts in `Accept-Post` /
    `Accept-Patch`' (RFC 9110, 15.5.16)."""
    text = {"Content-Type": "text/plain; charset=utf-8"}
    response = client.patch("/users", data=b'{"name": "Ada", "age": 1}', headers=text)
    assert response.status_code == 415
    assert "sent as text/plain," in response.json()["error"]
    assert response.headers["Accept-Patch"] == "application/json, multipart/form-data"
    response = client.put("/users", data=b"<user/>", headers={"Content-Type": "application/xml"})
    assert response.status_code == 415
    assert "sent as application/xml," in response.json()["error"]
    assert "Accept-Post" not in response.headers and "Accept-Patch" not in response.headers


def test_a_multipart_form_still_fills_a_flat_body(client: TestClient) -> None:
    """README: 'A `multipart/form-data` form ... still fills a body whose fields are all
    scalars or lists of scalars (a repeated field is a list)'."""
    form = {"name": (None, "Ada"), "age": (None, "36"), "tags": (None, "x")}
    response = client.post("/users", files=[*form.items(), ("tags", (None, "y"))])
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "Ada", "age": 36, "tags": ["x", "y"]}
    assert invalid(client.post("/users", files={"name": (None, "Ada"), "age": (None, "x")})) == [
        {"loc": ["body", "age"], "msg": "Expected int, got str", "type": "int_parsing"}
    ]
    response = client.post("/p-users", files={"name": (None, "Ada"), "age": (None, "36")})
    assert (response.status_code, response.json()) == (201, {"name": "Ada", "age": 36})


def test_a_multipart_form_to_a_nested_body_is_a_415(client: TestClient) -> None:
    """README: 'a body with a nested model reads JSON only' (a form has no nesting)."""
    response = client.post("/people", files={"name": (None, "Ada")})
    assert response.status_code == 415
    message = response.json()["error"]
    assert "sent as multipart/form-data" in message
    assert "a form fills only a body whose fields are scalars or lists of them" in message
    assert response.headers["Accept-Post"] == "application/json"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_an_empty_body_of_another_type_is_no_body(client: TestClient, content_type: str) -> None:
    """README: 'A request with no body at all is no body, whatever its Content-Type says: a
    required body is a 422, an optional one `None`'."""
    response = client.post("/users", data=b"", headers={"Content-Type": content_type})
    assert invalid(response) == [{"loc": ["body"], "msg": "Field required", "type": "missing"}]


# -- a 422 lists every problem --------------------------------------------------------


def test_every_problem_of_a_body_is_listed_with_loc_msg_and_type(client: TestClient) -> None:
    """README: 'Bad input is a 422 listing ... every ... problem, each with its location,
    message and kind: the shape pydantic and FastAPI give, whichever library validated'
    -- also within one body, where the one pass of msgspec stops at the first."""
    body = {
        "name": "",
        "age": -1,
        "address": {"city": 3, "zip": "abc"},
        "scores": [1, "two", 3, "four"],
        "nickname": "Ada",
    }
    assert invalid(client.post("/people", json=body)) == [
        {"loc": ["body", "name"], "msg": "Expected str of length >= 1", "type": "string_too_short"},
        {"loc": ["body", "age"], "msg": "Expected int >= 0", "type": "greater_than_equal"},
        {"loc": ["body", "email"], "msg": "Field required", "type": "missing"},
        {"loc": ["body", "address", "city"], "msg": "Expected str, got int", "type": "string_type"},
        {
            "loc": ["body", "address", "zip"],
            "msg": "Expected str matching regex '^[0-9]{5}$'",
            "type": "string_pattern_mismatch",
        },
        {"loc": ["body", "scores", 1], "msg": "Expected int, got str", "type": "int_parsing"},
        {"loc": ["body", "scores", 3], "msg": "Expected int, got str", "type": "int_parsing"},
        {
            "loc": ["body", "nickname"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        },
    ]


def test_a_pydantic_body_lists_pydantics_own_problems(client: TestClient) -> None:
    """README: 'pydantic models are validated by pydantic (when it is installed), which
    lists every problem itself': the three FastAPI lists for the same input."""
    assert invalid(client.post("/p-people", json={"name": 3, "age": "old"})) == [
        {"loc": ["body", "name"], "msg": "Input should be a valid string", "type": "string_type"},
        {
            "loc": ["body", "age"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        },
        {"loc": ["body", "email"], "msg": "Field required", "type": "missing"},
    ]


def test_dataclass_and_typeddict_bodies_list_every_problem() -> None:
    def pet(animal: Pet) -> dict[str, Any]:
        return dataclasses.asdict(animal)

    def point(p: Point) -> Point:
        return p

    client = client_for(("POST", "/pet", pet), ("POST", "/point", point))
    assert invalid(client.post("/pet", json={"legs": "four"})) == [
        {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
        {"loc": ["body", "legs"], "msg": "Expected int, got str", "type": "int_parsing"},
    ]
    assert [p["loc"] for p in invalid(client.post("/point", json={}))] == [
        ["body", "x"],
        ["body", "y"],
    ]


def test_problems_of_query_and_body_come_together_every_one() -> None:
    """README: 'The problems of query parameters come in the same list'."""
    def search(body: User, page: int, ids: list[int] = []) -> None:  # noqa: B006
        raise AssertionError("never called")

    client = client_for(("POST", "/s", search))
    detail = invalid(client.post("/s?ids=1&ids=x&ids=y", json={"age": "old"}))
    assert [(p["loc"], p["type"]) for p in detail] == [
        (["query", "page"], "missing"),
        (["query", "ids", 1], "int_parsing"),
        (["query", "ids", 2], "int_parsing"),
        (["body", "name"], "missing"),
        (["body", "age"], "int_parsing"),
    ]


def test_a_422_lists_at_most_a_hundred_problems() -> None:
    """README: 'Only a body that fails is walked again, field by field and item by item,
    with the conversions msgspec itself makes, to list the others too (at most 100)'."""

    def numbers(body: list[int]) -> None:
        raise AssertionError("never called")

    client = client_for(("POST", "/n", numbers))
    detail = invalid(client.post("/n", json=["x"] * 10_000))
    assert len(detail) == 100
    assert detail[-1]["loc"] == ["body", 99]


@pytest.mark.parametrize(
    ("annotation", "value", "type_"),
    [
        (int, 1.5, "int_from_float"),
        (int, [1], "int_type"),
        (float, "x", "float_parsing"),
        (bool, "maybe", "bool_parsing"),
        (str, 1, "string_type"),
        (Annotated[int, msgspec.Meta(le=5)], 9, "less_than_equal"),
        (Annotated[float, msgspec.Meta(gt=5)], 1, "greater_than"),
        (Annotated[int, msgspec.Meta(multiple_of=3)], 4, "multiple_of"),
        (Annotated[str, msgspec.Meta(max_length=2)], "abc", "string_too_long"),
        (Annotated[list[int], msgspec.Meta(min_length=2)], [1], "too_short"),
        (Literal["a", "b"], "c", "literal_error"),
        (list[int], "x", "list_type"),
        (dict[str, int], [], "dict_type"),
        (Address, 3, "model_type"),
        (float, "nan", "finite_number"),
    ],
)
def test_problem_types_are_pydantics_names(annotation: Any, value: Any, type_: str) -> None:
    """README: '`type` names the problem as pydantic does (`missing`, `int_parsing`,
    `string_too_short`, `greater_than_equal`, `extra_forbidden`, `literal_error`'."""

    def handler(body: Any) -> None:
        raise AssertionError("never called")

    handler.__annotations__["body"] = msgspec.defstruct("Body", [("field", annotation)])
    client = client_for(("POST", "/x", handler))
    (problem,) = invalid(client.post("/x", json={"field": value}))
    assert problem["loc"] == ["body", "field"]
    assert problem["type"] == type_


def test_the_issues_curl_d_trap_is_a_415_not_an_unknown_field() -> None:
    """Issue 23: `curl -d '{...}'` to examples/typed_api.py answered "Object contains unknown
    field {...the whole JSON...}" (the JSON read as one form key)."""
    client = TestClient(load_app(str(EXAMPLES / "typed_api.py")))
    book = b'{"title": "Dune", "author": "Herbert", "year": 1965, "isbn": "9780441013593"}'
    response = client.post(
        "/books", data=book, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert "unknown field" not in response.text


def test_the_readme_bodies_examples_are_what_the_readme_app_answers() -> None:
    """The 415 transcript and the 422 that README shows under "Bodies", verbatim, from
    the app of its "Typed handlers" example."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Typed handlers", 1)[1]
    namespace: dict[str, Any] = {"__name__": "readme_bodies"}
    exec(section.split("```python\n", 1)[1].split("```", 1)[0], namespace)
    client = TestClient(namespace["app"])
    bodies = section.split("### Bodies", 1)[1]

    command, answer = bodies.split("```text\n", 1)[1].split("```", 1)[0].strip().splitlines()
    sent = command.removeprefix("$ curl -d '").removesuffix("' 127.0.0.1:8000/books")
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
    response = client.post("/books", data=sent.encode(), headers=form)
    assert (response.status_code, response.json()) == (415, json.loads(answer))

    shown = json.loads(bodies.split("```json\n", 1)[1].split("```", 1)[0])
    response = client.post("/books", json={"year": "soon", "tags": ["sf", 2]})
    assert (response.status_code, response.json()) == (422, shown)
