"""Providers at start-up: names nothing fills, cycles, and names that cannot be provided."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pytest

from microroute import App, StartupError
from microroute.testing import TestClient


@dataclass
class Post:
    title: str


# -- start-up errors ----------------------------------------------------------------------------


def test_a_name_nothing_provides_stops_the_app_at_its_start(router, caplog):
    @router.get("/me")
    def me(usr):
        return usr

    app = App(router)  # app.provide() may still come
    with pytest.raises(StartupError) as caught:
        app.check()
    message = str(caught.value)
    assert "test_provider_startup.py" in message and "me()" in message and "'usr'" in message
    assert "app.provide('usr')" in message
    with pytest.raises(StartupError):
        TestClient(app)
    # A server that never calls check(): the route answers 500, naming it in the log.
    with caplog.at_level(logging.ERROR, "microroute"):
        status: list[str] = []
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/me",
            "SERVER_NAME": "x",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
        }
        body = app(environ, lambda line, headers: status.append(line))
        b"".join(body)
    assert status == ["500 Internal Server Error"]
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "unknown parameter 'usr'" in str(record.exc_info[1])


def test_a_provider_added_after_app_resolves_the_name(router):
    @router.get("/me")
    def me(user):
        return user

    app = App(router)
    with pytest.raises(StartupError):
        app.check()
    app.provide("user")(lambda: "ann")
    assert app.check() is app
    assert TestClient(app).get("/me").text == "ann"


def test_a_providers_unknown_parameter_names_the_provider(router):
    @router.get("/me")
    def me(user):
        return user

    app = App(router)

    @app.provide("user")
    def current_user(tokn):
        return tokn

    with pytest.raises(StartupError) as caught:
        app.check()
    message = str(caught.value)
    assert "current_user()" in message and "'tokn'" in message and "'user'" in message
    assert "me()" in message  # the route that needs it


def test_a_cycle_names_every_provider_in_it(router):
    @router.get("/x")
    def handler(a):
        return a

    app = App(router)
    app.provide("b")(lambda a: a)

    def provide_a(b):
        return b

    with pytest.raises(StartupError) as caught:
        app.provide("a")(provide_a)
    message = str(caught.value)
    assert "cycle" in message and "a -> b -> a" in message
    assert "provide_a()" in message and "test_provider_startup.py" in message


def test_a_path_parameter_wins_over_a_provider_of_the_same_name(router):
    @router.get("/users/[user]")
    def show(user):
        return user

    @router.get("/me")
    def me(user):
        return user

    app = App(router)
    app.provide("user")(lambda: "ann")
    client = TestClient(app)
    assert client.get("/users/bob").text == "bob"
    assert client.get("/me").text == "ann"


def test_a_name_read_from_the_query_becomes_provided(router):
    """``user: int`` is a query parameter, until the app provides ``user``."""

    @router.get("/x")
    def handler(user: int):
        return {"user": user}

    app = App(router)
    assert TestClient(app).get("/x?user=3").json() == {"user": 3}
    app.provide("user")(lambda: 7)
    assert TestClient(app).get("/x?user=3").json() == {"user": 7}


def test_names_that_cannot_be_provided(router):
    app = App(router)
    for name in ("request", "params", "context"):
        with pytest.raises(ValueError, match=repr(name)):
            app.provide(name)(lambda: 1)
    with pytest.raises(ValueError, match="parameter name"):
        app.provide("not-a-name")(lambda: 1)
    app.provide("user")(lambda: 1)
    with pytest.raises(ValueError, match="already provides 'user'"):
        app.provide("user")(lambda: 2)


def test_an_async_provider_stops_start_up(router):
    @router.get("/x")
    def handler(user):
        return user

    app = App(router)

    async def user():
        return "ann"

    with pytest.raises(StartupError, match="async"):
        app.provide("user")(user)


def test_an_annotation_only_a_provider_explains_waits_for_it(router):
    """``user: Account`` (no type microroute reads) is fine once ``user`` is provided."""

    class Account:
        def __init__(self, name: str) -> None:
            self.name = name

    @router.post("/notes")
    def create(body: Post, user: Account):
        return {"title": body.title, "by": user.name}

    app = App(router)
    with pytest.raises(StartupError) as caught:
        app.check()
    assert "app.provide('user')" in str(caught.value)
    app.provide("user")(lambda: Account("ann"))
    response = TestClient(app).post("/notes", json={"title": "t"})
    assert response.json() == {"title": "t", "by": "ann"}


def test_a_mistake_no_provider_could_mend_stops_app_at_once(router):
    @router.get("/items/[id]")
    def item(id: dict):  # a path parameter is never provided
        return id

    with pytest.raises(StartupError, match="parameter 'id'"):
        App(router)
