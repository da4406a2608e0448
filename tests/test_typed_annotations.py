"""Annotations that do not resolve at run time: where they stop start-up, and where not.

mypy-strict code imports the types it only annotates with under ``if
TYPE_CHECKING:`` (``Request``, ``Response``). Such a name does not exist when
the app starts; typed handlers must not refuse the app for it unless the
annotation decides how input is read.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from microroute import App, StartupError
from microroute.targets import load_app
from microroute.testing import TestClient

REPO = Path(__file__).resolve().parent.parent

TYPE_CHECKING_APP = """
    from __future__ import annotations

    from typing import TYPE_CHECKING

    import msgspec

    from microroute import App, Router

    if TYPE_CHECKING:
        from microroute import Request, Response


    class Item(msgspec.Struct):
        name: str


    router = Router()


    @router.get("/plain")
    def plain() -> Response:
        '''A return annotation only mypy can read.'''
        return {"plain": True}


    @router.get("/items/[item_id]")
    def item(request: Request, item_id: int, full: bool = False) -> Response:
        '''Typed input, and annotations only mypy can read.'''
        return {"id": item_id, "full": full, "method": request.method}


    @router.post("/items")
    def create(request: Request, body: Item) -> list[Item]:
        '''The return annotation resolves; the request's does not.'''
        return [body]


    app = App(router)
"""


def write_app(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def test_type_checking_only_annotations_do_not_stop_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """README: "An annotation that cannot be resolved anywhere else (the return
    annotation, `request: Request`: names imported under `if TYPE_CHECKING:`) never
    stops start-up: the route is served and documented without it, and the
    `microroute` logger says so at debug level."
    """
    caplog.set_level(logging.DEBUG, logger="microroute")
    app = load_app(str(write_app(tmp_path, "type_checking_app", TYPE_CHECKING_APP)))

    client = TestClient(app)
    assert client.get("/plain").json() == {"plain": True}
    assert client.get("/items/7?full=true").json() == {"id": 7, "full": True, "method": "GET"}
    assert client.get("/items/seven").status_code == 404  # still converted
    assert client.get("/items/7?full=maybe").status_code == 422  # still validated
    assert client.post("/items", json={"name": "pen"}).json() == [{"name": "pen"}]
    assert client.post("/items", json={"name": 3}).status_code == 422

    logged = [r.getMessage() for r in caplog.records if r.name == "microroute"]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "microroute")
    assert any(
        "plain()" in m and "return annotation" in m and "'Response' is not defined" in m
        for m in logged
    ), logged
    assert any("item()" in m and "parameter 'request'" in m for m in logged), logged

    doc = app.openapi()
    validate(doc)
    paths = doc["paths"]
    # Documented without what does not resolve: no response schema...
    assert paths["/plain"]["get"]["responses"] == {
        "default": {"description": "The handler's response (no return annotation)"}
    }
    # ...but with everything that does.
    item_op = paths["/items/{item_id}"]["get"]
    assert [p["name"] for p in item_op["parameters"]] == ["item_id", "full"]
    created = paths["/items"]["post"]["responses"]["200"]["content"]["application/json"]
    assert created["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}


def test_the_openapi_document_logs_nothing_more(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The debug line is said once, at start-up: /openapi.json may be asked for often."""
    app = load_app(str(write_app(tmp_path, "type_checking_app_2", TYPE_CHECKING_APP)))
    assert isinstance(app, App)
    caplog.set_level(logging.DEBUG, logger="microroute")
    app.openapi()
    assert [r for r in caplog.records if r.name == "microroute"] == []


@pytest.mark.parametrize(
    ("path", "signature", "parameter"),
    [
        ("/items/[item_id]", "item_id: Missing", "item_id"),  # a path parameter
        ("/items", "body: Missing", "body"),  # the body
        ("/items", "limit: Missing = 3", "limit"),  # a query parameter, or not?
    ],
)
def test_an_unresolvable_annotation_that_reads_input_still_stops_start_up(
    tmp_path: Path, path: str, signature: str, parameter: str
) -> None:
    """An annotation that decides how input is read must resolve: a guess would read it wrong."""
    source = f"""
        from __future__ import annotations

        from typing import TYPE_CHECKING

        from microroute import App, Router

        if TYPE_CHECKING:
            from somewhere import Missing

        router = Router()


        @router.post({path!r})
        def handler({signature}):
            return {{}}


        app = App(router)
    """
    target = write_app(tmp_path, f"needs_input_{parameter}", source)
    with pytest.raises(StartupError) as raised:
        load_app(str(target))
    message = str(raised.value)
    assert "handler()" in message
    assert f"parameter {parameter!r}: cannot resolve its annotation" in message
    assert "'Missing' is not defined" in message
    assert "TYPE_CHECKING" in message


def test_the_sse_benchmark_app_starts() -> None:
    """benchmarks/sse_streams.py annotates `-> EventStream`, imported where the app is built.

    That stopped its server at start-up, so the SSE memory benchmark could not run.
    """
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import sse_streams\n"
        "for name in ('eventstream_app', 'eventstream_nohb_app'):\n"
        "    print(type(getattr(sse_streams, name)).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["App", "App"]
