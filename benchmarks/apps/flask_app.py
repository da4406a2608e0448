"""Flask, as its quickstart writes a JSON API: view functions returning dicts.

Two settings make its JSON byte-for-byte the same as the other apps': keep the
keys in the order given (Flask sorts them by default) and send non-ASCII as
UTF-8 rather than ``\\u`` escapes. Flask still ends a JSON body with a newline.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

app = Flask(__name__)
app.json.sort_keys = False  # type: ignore[attr-defined]
app.json.ensure_ascii = False  # type: ignore[attr-defined]


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/users/<id>")
def user(id: str) -> dict[str, str]:
    return {"id": id}


@app.post("/echo")
def echo() -> Any:
    return request.get_json()
