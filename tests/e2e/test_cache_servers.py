"""The route cache over real HTTP, on ``microroute run`` and ``gunicorn -k gevent``.

The app (``apps/cache_app.py``) counts its own handler runs and reports them
on a dynamic route, so "ran exactly once" is measured by the server itself.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest
import requests

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

APPS = Path(__file__).parent / "apps"
CACHE = "X-Microroute-Cache"
HERD = 500
TIMEOUT = 30


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the herd's first request to this answer's end


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


def herd(server: Server, path: str, count: int) -> list[Reply]:
    """*count* simultaneous first requests for *path*, each on its own connection.

    One thread, raw sockets: every connection is opened, then every request is
    sent in one tight loop, then the answers are read as they come. (Hundreds
    of client threads would starve each other of the GIL, and a gunicorn worker
    drops a connection whose request line has not arrived after ``keepalive``
    seconds.)
    """
    host, port = server.url.removeprefix("http://").split(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    sockets = [socket.create_connection((host, int(port)), timeout=TIMEOUT) for _ in range(count)]
    received = {sock: bytearray() for sock in sockets}
    finished: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        started = time.monotonic()
        for sock in sockets:
            sock.sendall(request)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while len(finished) < count:
            assert time.monotonic() - started < TIMEOUT, f"{count - len(finished)} unanswered"
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                if chunk:
                    received[sock] += chunk
                else:  # Connection: close, so the end of the answer
                    finished[sock] = time.monotonic() - started
                    selector.unregister(sock)
                    sock.close()
    return [parse(bytes(received[sock]), finished[sock]) for sock in sockets]


def parse(raw: bytes, seconds: float) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return Reply(int(status_line.split()[1]), headers, body, seconds)


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
