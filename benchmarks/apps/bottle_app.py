"""Bottle, as its tutorial writes an API: routes returning dicts (its JSON plugin).

The plugin is given compact separators so its bytes match the other apps'.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import bottle

app = bottle.Bottle()
app.uninstall("json")
app.install(
    bottle.JSONPlugin(json_dumps=partial(json.dumps, ensure_ascii=False, separators=(",", ":")))
)


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/users/<id>")
def user(id: str) -> dict[str, str]:
    return {"id": id}


@app.post("/echo")
def echo() -> Any:
    return bottle.request.json
