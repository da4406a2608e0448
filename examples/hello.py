"""A whole JSON API in one file, with microroute's decorators.

Run it with any of (gunicorn comes with the gunicorn extra):

    microroute run examples/hello.py
    python -m microroute run examples/hello.py --port 8000
    pip install "microroute[gunicorn]"
    cd examples && gunicorn -k gevent hello:app

then, in another terminal:

    curl localhost:8000/hello/Ada                       # {"message": "Hello, Ada!"}
    curl --json '{"ping": 1}' localhost:8000/echo       # {"ping": 1}, a 201
    curl localhost:8000/count/5
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from microroute import App, Request, ValidationError, route


@route.get("/")
def index() -> dict[str, Any]:
    return {"routes": ["/hello/[name]", "/echo", "/count/[n]", "/time"]}


@route.get("/hello/[name]")
def hello(name: str) -> dict[str, str]:
    return {"message": f"Hello, {name}!"}


@route.post("/echo")
def echo(request: Request) -> tuple[Any, int]:
    # request.json parses whatever the Content-Type; a bad body is a JSON 400.
    return request.json, 201


@route.get("/count/[n]")
def count(n: str) -> Iterator[str]:
    """Stream one line per 0.1 s: the client sees each as it is sent."""
    # Raised before the first chunk, so it is still a proper JSON 400.
    if not n.isdigit():
        raise ValidationError("n must be a whole number")
    for i in range(1, min(int(n), 100) + 1):
        yield f"{i}\n"
        time.sleep(0.1)


@route.get("/time", dynamic="force-dynamic")
def now() -> dict[str, float]:
    # Without force-dynamic this GET would be cached as a static response.
    return {"time": time.time()}


app = App(route)

if __name__ == "__main__":
    print("Serve this file with:  microroute run examples/hello.py")
    print("              or with:  gunicorn -k gevent --chdir examples hello:app")
