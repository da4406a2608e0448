"""The OpenAPI 3.1 document, ``microroute openapi``, and the ``App(docs=...)`` page.

The example's document is compared with a golden file; after an intended
change, regenerate it with
``python -m microroute openapi examples/typed_api.py > tests/golden/typed_api.openapi.json``.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import pydantic
import pytest
from openapi_spec_validator import validate

from microroute import App, Router
from microroute.cli import main
from microroute.openapi import operation_tag
from microroute.testing import TestClient

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "typed_api.py"
GOLDEN = REPO / "tests" / "golden" / "typed_api.openapi.json"


class Item(msgspec.Struct):
    name: str
    price: float


class Order(pydantic.BaseModel):
    item: str
    quantity: int


def test_the_example_document_matches_the_golden_file_and_is_valid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README: "`microroute openapi [TARGET]` prints it"."""
    assert main(["openapi", str(EXAMPLE)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(GOLDEN.read_text())
    validate(printed)  # openapi-spec-validator: a valid OpenAPI 3.1 document


def test_openapi_of_a_target_that_cannot_start_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken_openapi_app.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert main(["openapi", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "broken_openapi_app.py" in err


def test_the_document_describes_paths_params_bodies_and_responses() -> None:
    router = Router()

    @router.get("/shops/[shop]/items/[item_id]")
    def get_item(shop, item_id: int, currency: Literal["EUR", "USD"] = "EUR") -> Item:  # type: ignore[no-untyped-def]
        """Read one item.

        The price is in the currency asked for.
        """
        return Item(name=shop, price=item_id)

    @router.post("/orders")
    def order(body: Order) -> tuple[Order, Literal[201]]:
        return body, 201

    @router.get("/docs/[[...slug]]")
    def docs(slug):  # type: ignore[no-untyped-def]
        return {"slug": slug}

    doc = App(router).openapi(title="Shop", version="2.0")
    validate(doc)
    assert doc["info"] == {"title": "Shop", "version": "2.0"}
    assert sorted(doc["paths"]) == [
        "/docs",
        "/docs/{slug}",
        "/orders",
        "/shops/{shop}/items/{item_id}",
    ]
    get = doc["paths"]["/shops/{shop}/items/{item_id}"]["get"]
    assert get["summary"] == "Read one item."
    assert get["description"] == "The price is in the currency asked for."
    assert get["parameters"] == [
        {"name": "shop", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {
            "name": "currency",
            "in": "query",
            "required": False,
            "schema": {"default": "EUR", "enum": ["EUR", "USD"], "type": "string"},
        },
    ]
    assert sorted(get["responses"]) == ["200", "404", "422"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Item"
    }
    post = doc["paths"]["/orders"]["post"]
    assert post["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}},
    }
    assert sorted(post["responses"]) == ["201", "415", "422"]
    schemas = doc["components"]["schemas"]
    assert schemas["Item"]["required"] == ["name", "price"]  # msgspec's schema
    assert schemas["Order"]["properties"]["quantity"]["type"] == "integer"  # pydantic's
    assert "parameters" not in doc["paths"]["/docs"]["get"]
    assert doc["paths"]["/docs"]["get"]["responses"] == {
        "default": {"description": "The handler's response (no return annotation)"}
    }


def test_every_operation_has_its_own_operation_id() -> None:
    """README: "Every operation has its own `operationId` (`GET /users/[id]` is
    `get_users_by_id`, `GET /users/id` is `get_users_id`)"."""
    router = Router()
    for path in ("/users/[id]", "/users/id", "/a-b", "/a_b", "/a/b/2", "/docs/[[...slug]]"):
        router.add(path, lambda: {}, methods=["GET", "DELETE"])
    doc = App(router).openapi()
    validate(doc)  # openapi-spec-validator refuses an operationId used twice
    ids = {
        (method, path): operation["operationId"]
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    }
    assert len(set(ids.values())) == len(ids)
    assert ids["get", "/users/{id}"] == "get_users_by_id"
    assert ids["delete", "/users/{id}"] == "delete_users_by_id"
    assert ids["get", "/users/id"] == "get_users_id"
    assert ids["get", "/docs/{slug}"] == "get_docs_by_slug"
    assert ids["get", "/docs"] == "get_docs"
    assert ids["delete", "/docs"] == "delete_docs"
    # Spellings a name cannot tell apart: the first path in sorted order keeps it.
    assert ids["get", "/a-b"] == "get_a_b"
    assert ids["get", "/a/b/2"] == "get_a_b_2"
    assert ids["get", "/a_b"] == "get_a_b_3"


class Profile(pydantic.BaseModel):
    user_name: str = pydantic.Field(alias="userName")
    joined: int = pydantic.Field(validation_alias="joinedAt", serialization_alias="joined_at")


def test_a_pydantic_model_is_sent_by_alias_as_documented() -> None:
    """README: "A pydantic model is sent by its aliases (as FastAPI does), the
    names the document gives it"."""
    router = Router()

    @router.post("/profiles")
    def create(body: Profile) -> tuple[Profile, Literal[201]]:
        return body, 201

    @router.get("/profiles")
    def everyone() -> list[Profile]:
        return [Profile(userName="ada", joinedAt=1843)]

    app = App(router)
    doc = app.openapi()
    validate(doc)

    def schema(ref: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]
        return found

    post = doc["paths"]["/profiles"]["post"]
    sent = schema(post["requestBody"]["content"]["application/json"]["schema"])
    answered = schema(post["responses"]["201"]["content"]["application/json"]["schema"])
    assert sent["required"] == ["userName", "joinedAt"]  # what validation reads
    assert answered["required"] == ["userName", "joined_at"]  # what is sent back

    client = TestClient(app)
    created = client.post("/profiles", json={"userName": "ada", "joinedAt": 1843})
    assert created.status_code == 201
    assert created.json() == {"userName": "ada", "joined_at": 1843}
    assert sorted(created.json()) == sorted(answered["properties"])
    # Encoded by the return annotation (list[Profile]): by alias too.
    assert client.get("/profiles").json() == [{"userName": "ada", "joined_at": 1843}]


def test_discovered_route_files_are_documented(tmp_path: Path) -> None:
    """Works the same for decorator routes and discovered route.py files."""
    folder = tmp_path / "app" / "api" / "notes" / "[note_id]"
    folder.mkdir(parents=True)
    (folder / "route.py").write_text(
        "def GET(note_id: int, full: bool = False) -> dict:\n"
        '    """One note."""\n'
        "    return {'id': note_id, 'full': full}\n"
    )
    app = App(app_dir=tmp_path / "app")
    operation = app.openapi()["paths"]["/api/notes/{note_id}"]["get"]
    assert operation["summary"] == "One note."
    assert [p["name"] for p in operation["parameters"]] == ["note_id", "full"]
    client = TestClient(app)
    assert client.get("/api/notes/3?full=true").json() == {"id": 3, "full": True}
    assert client.get("/api/notes/three").status_code == 404


def test_title_version_and_description_come_from_the_app() -> None:
    """README: '`App(title=..., version=..., description=...)` fill the `info` of the
    document'."""
    router = Router()
    router.add("/a", lambda: {}, methods=["GET"])
    app = App(router, title="Shop", version="2.1.0", description="Buy <things>.")
    assert app.openapi()["info"] == {
        "title": "Shop",
        "version": "2.1.0",
        "description": "Buy <things>.",
    }
    assert app.openapi(title="Other", version="3")["info"]["title"] == "Other"
    assert App(router).openapi()["info"] == {"title": "microroute app", "version": "0.1.0"}


@pytest.mark.parametrize(
    ("path", "tag"),
    [
        ("/books", "books"),
        ("/books/{book_id}", "books"),
        ("/api/users/{id}/posts", "users"),
        ("/api/v1/users", "users"),
        ("/v2.1/orders", "orders"),
        ("/{lang}/posts", "posts"),
        ("/api", "api"),
        ("/", "default"),
        ("/{slug}", "default"),
    ],
)
def test_operations_are_tagged_by_their_first_path_segment(path: str, tag: str) -> None:
    """README: 'is tagged by the first segment of its path (past `api` and a version such
    as `v1`: `/api/v1/users/{id}` is in `users`)'."""
    assert operation_tag(path) == tag


def test_the_document_lists_its_tags_and_each_operation_has_one() -> None:
    router = Router()
    for path in ("/api/users", "/api/users/[id]", "/api/posts", "/health"):
        router.add(path, lambda: {}, methods=["GET"])
    doc = App(router).openapi()
    assert doc["tags"] == [{"name": "health"}, {"name": "posts"}, {"name": "users"}]
    assert {path: item["get"]["tags"] for path, item in doc["paths"].items()} == {
        "/api/posts": ["posts"],
        "/api/users": ["users"],
        "/api/users/{id}": ["users"],
        "/health": ["health"],
    }
    validate(doc)


def test_a_query_parameters_default_and_limits_are_in_its_schema() -> None:
    """README: 'parameters (the default and limits of a query parameter in its schema)'."""
    router = Router()

    @router.get("/items")
    def items(  # type: ignore[no-untyped-def]
        limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10,
        sort: Literal["name", "price"] = "name",
        tag: list[str] = [],  # noqa: B006
        since: datetime.date | None = None,
    ):
        return []

    doc = App(router).openapi()
    schemas = {p["name"]: p["schema"] for p in doc["paths"]["/items"]["get"]["parameters"]}
    assert schemas["limit"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    assert schemas["sort"] == {"enum": ["name", "price"], "default": "name", "type": "string"}
    assert schemas["tag"]["default"] == []
    assert "default" not in schemas["since"]
    validate(doc)
