"""The route cache over real HTTP, on ``microroute run`` and ``gunicorn -k gevent``.

The app (``apps/cache_app.py``) counts its own handler runs and reports them
on a dynamic route, so "ran exactly once" is measured by the server itself.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import requests
from servers import APPS, herd

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

CACHE = "X-Microroute-Cache"
HERD = 500
TIMEOUT = 30


@pytest.fixture
def cache_server(launch: Launcher) -> Server:
    from servers import REPO, Target

    run = str((APPS / "cache_app.py").relative_to(REPO))
    return launch.start(Target("cache", run=run, wsgi="cache_app:app", chdir=APPS))


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def runs(http: requests.Session, server: Server) -> dict[str, int]:
    """How many times each handler ran, as the app counted."""
    response = http.get(server.url + "/stats", timeout=TIMEOUT)
    assert CACHE not in response.headers  # force-dynamic: never cached
    return response.json()


def test_hit_then_stale_then_regenerated(cache_server: Server, http: requests.Session) -> None:
    url = cache_server.url + "/clock"
    first = http.get(url, timeout=TIMEOUT)
    assert (first.headers[CACHE], first.json()) == ("MISS", {"edition": 1})
    assert first.headers["Cache-Control"] == "s-maxage=1, stale-while-revalidate=31535999"
    hit = http.get(url, timeout=TIMEOUT)
    assert (hit.headers[CACHE], hit.json()) == ("HIT", {"edition": 1})
    assert hit.headers["ETag"] == first.headers["ETag"]
    assert http.get(url, headers={"If-None-Match": hit.headers["ETag"]}).status_code == 304

    time.sleep(1.1)
    stale = [http.get(url, timeout=TIMEOUT) for _ in range(5)]
    for response in stale:  # served at once: the regeneration takes 0.4 s
        assert (response.headers[CACHE], response.json()) == ("STALE", {"edition": 1})
        assert response.elapsed.total_seconds() < 0.25

    deadline = time.monotonic() + 5
    while (fresh := http.get(url, timeout=TIMEOUT)).headers[CACHE] != "HIT":
        assert time.monotonic() < deadline, "never regenerated"
        time.sleep(0.05)
    assert fresh.json() == {"edition": 2}
    assert fresh.headers["ETag"] != first.headers["ETag"]
    assert runs(http, cache_server)["clock"] == 2  # one regeneration for five stale requests


def test_herd_of_first_requests_runs_the_handler_once(
    cache_server: Server, http: requests.Session
) -> None:
    replies = herd(cache_server, "/slow", HERD)

    assert [r.status for r in replies] == [200] * HERD
    assert {r.body for r in replies} == {b'{"slow":true,"run":1}'}
    assert [r.headers[CACHE] for r in replies].count("MISS") == 1
    assert runs(http, cache_server)["slow"] == 1
    # The herd really arrived while the one run slept (0.5 s), or this proves nothing.
    waited = sum(r.seconds > 0.3 for r in replies)
    assert waited > HERD * 0.8, f"only {waited} requests overlapped the slow handler"


def test_head_first_never_blanks_the_page(cache_server: Server) -> None:
    """One HEAD before any GET: every later GET still gets the whole body."""
    host, port = cache_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(f"HEAD /page HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n"), head
        assert b"content-length: 20\r\n" in head.lower()
    with requests.Session() as http:
        for _ in range(2):
            response = http.get(cache_server.url + "/page", timeout=TIMEOUT)
            assert response.content == b"twenty bytes of body"
        assert response.headers[CACHE] == "HIT"


def test_force_static_never_keeps_the_clients_host(cache_server: Server) -> None:
    with requests.Session() as http:
        evil = http.get(
            cache_server.url + "/where?x=1", headers={"Host": "evil.example"}, timeout=TIMEOUT
        )
        plain = http.get(cache_server.url + "/where", timeout=TIMEOUT)
    expected = {"host": "localhost", "url": "http://localhost/where"}
    assert evil.json() == plain.json() == expected
