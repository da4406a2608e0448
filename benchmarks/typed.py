"""Typed handlers side by side: a POST with a 6-field body, validated, echoed back.

    python -m benchmarks.typed [--reps 30]

Each framework in its own recommended typed style:

* microroute: a ``msgspec.Struct`` body parameter, ``-> tuple[User, Literal[201]]``;
* Litestar: a ``msgspec.Struct`` as ``data``, ``@post`` (201);
* FastAPI: a pydantic ``BaseModel`` parameter, ``status_code=201``.

All in-process, no socket. microroute is called as a WSGI callable with the
environ a server builds (``benchmarks.calls``). The ASGI apps are called
directly, ``await app(scope, receive, send)``, on one asyncio event loop with
the scope a server builds: no test client in between (Starlette's and
Litestar's test clients add an HTTPX round trip and a thread portal per call,
which would be measuring the harness). Every app answers the same request with
201 and the same JSON, checked before timing. Rounds alternate between the
apps; the figure is the median µs per request. Litestar and FastAPI are peers
for this benchmark only: ``pip install -r benchmarks/requirements-typed.txt``.

``--smoke`` (one round) proves every app still answers; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import msgspec
import pydantic

from .calls import make_environ

BODY = json.dumps(
    {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "age": 36,
        "score": 99.5,
        "active": True,
        "tags": ["math", "engines"],
    }
).encode()
EXPECTED = json.loads(BODY)

Runner = Callable[[int], int]  # runs n requests, returns the last status


class User(msgspec.Struct):
    name: str
    email: str
    age: int
    score: float
    active: bool
    tags: list[str]


def microroute_runner() -> Runner:
    from microroute import App, Router

    router = Router()

    @router.post("/users")
    def create(body: User) -> tuple[User, Literal[201]]:
        return body, 201

    app = App(router)
    template = make_environ("POST", "/users", BODY)
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status.append(line)

    def run(n: int) -> int:
        for _ in range(n):
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO(BODY)
            body = app(environ, start_response)
            data = b"".join(body)
            close = getattr(body, "close", None)
            if close is not None:
                close()
        assert json.loads(data) == EXPECTED, data
        return int(status[-1][:3])

    return run


def litestar_app() -> Any:
    from litestar import Litestar, post

    @post("/users", sync_to_thread=False)
    def create(data: User) -> User:
        return data

    return Litestar([create], openapi_config=None, logging_config=None)


class PUser(pydantic.BaseModel):
    name: str
    email: str
    age: int
    score: float
    active: bool
    tags: list[str]


def fastapi_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/users", status_code=201)
    async def create(user: PUser) -> PUser:
        return user

    return app


def asgi_runner(app: Any) -> Runner:
    scope_template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/users",
        "raw_path": b"/users",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"benchmarks/1.0"),
            (b"accept", b"*/*"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    loop = asyncio.new_event_loop()
    message = {"type": "http.request", "body": BODY, "more_body": False}

    async def batch(n: int) -> tuple[int, bytes]:
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            return message

        async def send(event: dict[str, Any]) -> None:
            nonlocal status
            if event["type"] == "http.response.start":
                status = event["status"]
                chunks.clear()
            elif event["type"] == "http.response.body":
                chunks.append(event.get("body", b""))

        for _ in range(n):
            await app(dict(scope_template), receive, send)
        return status, b"".join(chunks)

    async def lifespan() -> None:
        # Let the app start as a server would start it (lifespan events).
        events = iter([{"type": "lifespan.startup"}])
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            try:
                return next(events)
            except StopIteration:
                await done.wait()
                return {"type": "lifespan.shutdown"}

        async def send(event: dict[str, Any]) -> None:
            if event["type"].startswith("lifespan.startup"):
                done.set()

        task = asyncio.ensure_future(
            app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        )
        await done.wait()
        task.cancel()

    loop.run_until_complete(lifespan())

    def run(n: int) -> int:
        status, data = loop.run_until_complete(batch(n))
        assert json.loads(data) == EXPECTED, data
        return status

    return run


def measure(runners: dict[str, Runner], reps: int) -> dict[str, float]:
    sizes: dict[str, int] = {}
    for name, runner in runners.items():
        assert runner(1) == 201, name  # the same answer from each, before timing
        n = 10
        while True:
            start = time.perf_counter()
            runner(n)
            if time.perf_counter() - start >= 0.02:
                break
            n *= 4
        sizes[name] = n
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            runners[name](sizes[name])
            samples[name].append((time.perf_counter() - start) / sizes[name] * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.typed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="one round (see above)")
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(reps=1)
        args = parser.parse_args(argv)
    runners = {
        "microroute": microroute_runner(),
        "Litestar": asgi_runner(litestar_app()),
        "FastAPI": asgi_runner(fastapi_app()),
    }
    medians = measure(runners, args.reps)
    mine = medians["microroute"]
    print("In-process, POST /users with a 6-field typed body, validated and echoed (201)")
    print(f"{'app':<12} {'µs/req (median)':>16} {'microroute is':>14}")
    for name, value in medians.items():
        print(f"{name:<12} {value:>16.2f} {value / mine:>13.2f}x")
    targets = (("Litestar", 2.0), ("FastAPI", 5.0))
    for name, goal in targets:
        got = medians[name] / mine
        verdict = "pass" if got >= goal else "MISS"
        print(f"target: microroute >= {goal:.0f}x {name}: {got:.2f}x {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
