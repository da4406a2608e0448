"""Logs through logging: the access record and its fields, the default config, --log-config."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from microroute import App, Router
from microroute.testing import TestClient


def make_app() -> App:
    api = Router()

    @api.get("/posts/[id]")
    def post(id: str):
        return {"id": id}

    @api.get("/stream")
    def stream():
        yield "a"
        yield "b"

    return App(api)


def test_one_access_record_per_request_with_its_fields(caplog):
    """README: "one INFO record per request on `microroute.access`, at the end of its
    body, carrying `method path route status bytes duration_ms request_id client cache
    disconnected` as record attributes"."""
    with TestClient(make_app()) as client, caplog.at_level(logging.INFO, "microroute.access"):
        client.get("/posts/7?x=1", headers={"X-Request-ID": "acc-1"})
        client.get("/posts/7", headers={"X-Request-ID": "acc-2"})
        client.get("/stream")
        client.get("/missing")
    records = [r for r in caplog.records if r.name == "microroute.access"]
    assert len(records) == 4
    miss, hit, stream, missing = records
    assert miss.getMessage() == '127.0.0.1 "GET /posts/7?x=1 HTTP/1.1" 200 10 ' + (
        f"{miss.duration_ms:.1f}ms"
    )
    assert (miss.method, miss.path, miss.route, miss.status) == (
        "GET",
        "/posts/7",
        "/posts/[id]",
        200,
    )
    assert (miss.bytes, miss.request_id, miss.client, miss.cache) == (
        10,
        "acc-1",
        "127.0.0.1",
        "MISS",
    )
    assert miss.disconnected is False and miss.duration_ms >= 0
    assert (hit.cache, hit.request_id, hit.route) == ("HIT", "acc-2", "/posts/[id]")
    assert (stream.route, stream.bytes, stream.cache) == ("/stream", 2, None)
    assert (missing.route, missing.status) == (None, 404)


def test_a_client_that_leaves_is_recorded_as_disconnected(caplog):
    api = Router()

    @api.get("/forever")
    def forever():
        while True:
            yield "x"

    with TestClient(App(api)) as client, caplog.at_level(logging.INFO, "microroute.access"):
        response = client.get("/forever", stream=True)
        next(response.iter_content(1))
        response.close()
    (record,) = [r for r in caplog.records if r.name == "microroute.access"]
    assert record.disconnected is True and record.bytes >= 1


def test_nothing_is_recorded_or_watched_while_nobody_listens():
    """An access log nobody configured costs no body wrapper: the reply stays a list."""
    app = make_app()
    logging.getLogger("microroute.access").setLevel(logging.WARNING)
    try:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/posts/1", "wsgi.url_scheme": "http",
                   "SERVER_NAME": "x", "SERVER_PORT": "80"}  # fmt: skip
        body = app(environ, lambda status, headers: None)
        assert type(body) is list
    finally:
        logging.getLogger("microroute.access").setLevel(logging.NOTSET)


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_logging_json() -> dict:
    """The dictConfig README shows under "Logs", verbatim."""
    text = README.read_text()
    start = text.index("### Logs")
    block = re.search(r"```json\n(.*?)```", text[start:], re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_json_logs_through_the_readme_dictconfig(tmp_path):
    """README: "JSON logs come from python-json-logger ... with this `logging.json`" — the
    file README shows, verbatim: "Each line is then one JSON object, with the access
    record's fields and the request id as keys"."""
    config = tmp_path / "logging.json"
    config.write_text(json.dumps(readme_logging_json()))
    script = textwrap.dedent(
        f"""
        import logging
        from microroute import App, Router
        from microroute.logs import configure
        from microroute.testing import TestClient
        configure({str(config)!r})
        api = Router()
        @api.get("/hi", dynamic="force-dynamic")
        def hi():
            logging.getLogger("myapp").info("said hi")
            return {{"hi": 1}}
        with TestClient(App(api)) as client:
            client.get("/hi", headers={{"X-Request-ID": "json-1"}})
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    mine = [line for line in lines if line["name"] == "myapp"]
    access = [line for line in lines if line["name"] == "microroute.access"]
    assert mine and mine[0]["message"] == "said hi" and mine[0]["request_id"] == "json-1"
    assert access and access[0]["route"] == "/hi" and access[0]["status"] == 200
    assert access[0]["request_id"] == "json-1" and access[0]["levelname"] == "INFO"


@pytest.mark.parametrize("level", [None, "warning"])
def test_the_default_config_and_the_level(level):
    """README: "`microroute run` configures a default when nothing else has: a timestamp,
    the level and logger name; access lines as they always were"."""
    script = textwrap.dedent(
        f"""
        import logging
        from microroute import App, Router
        from microroute.logs import configure
        from microroute.testing import TestClient
        configure(None, {level!r})
        api = Router()
        @api.get("/hi", dynamic="force-dynamic")
        def hi():
            logging.getLogger("myapp").info("said hi")
            return {{"hi": 1}}
        with TestClient(App(api)) as client:
            client.get("/hi", headers={{"X-Request-ID": "dflt-1"}})
        """
    )
    err = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stderr
    if level == "warning":
        assert err == ""
        return
    mine, access = err.splitlines()
    assert mine.endswith(" INFO myapp [dflt-1] said hi")
    assert mine[:4].isdigit() and mine[4] == "-"  # it starts with a timestamp
    # 2024-05-01 12:00:00 127.0.0.1 "GET /hi HTTP/1.1" 200 8 0.4ms
    date, clock, rest = access.split(" ", 2)
    assert time.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    assert rest.startswith('127.0.0.1 "GET /hi HTTP/1.1" 200 8 ') and rest.endswith("ms")


def test_access_log_false_writes_no_record(caplog):
    """App(access_log=False): no microroute.access record, whatever logging says."""
    api = Router()

    @api.get("/quiet", dynamic="force-dynamic")
    def quiet():
        return {"quiet": True}

    with caplog.at_level(logging.INFO, "microroute.access"):
        with TestClient(App(api, access_log=False)) as client:
            assert client.get("/quiet").status_code == 200
    assert not [r for r in caplog.records if r.name == "microroute.access"]
