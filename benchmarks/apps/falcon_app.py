"""Falcon, as its tutorial writes an API: resource classes setting ``resp.media``.

The JSON handler is Falcon's own, given compact separators so its bytes match
the other apps' (its default ``dumps`` is ``partial(json.dumps,
ensure_ascii=False)``, which this keeps).
"""

from __future__ import annotations

import json
import time
from functools import partial

import falcon
import falcon.media


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"message": "Hello, World!"}


class User:
    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        resp.media = {"id": id}


class Echo:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = req.get_media()


class Io:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        time.sleep(0.02)
        resp.media = {"slept_ms": 20}


json_handler = falcon.media.JSONHandler(
    dumps=partial(json.dumps, ensure_ascii=False, separators=(",", ":")),
    loads=json.loads,
)

app = falcon.App()
app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
app.add_route("/hello", Hello())
app.add_route("/users/{id}", User())
app.add_route("/echo", Echo())
app.add_route("/io", Io())
