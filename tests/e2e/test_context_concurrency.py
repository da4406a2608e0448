"""No context bleed: 200 simultaneous requests on one gevent worker, each its own."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from itsdangerous import URLSafeTimedSerializer

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

APPS = Path(__file__).parent / "apps"
CLIENTS = 200


@pytest.fixture
def context_server(launch: Launcher) -> Server:
    from servers import REPO, Target

    run = str((APPS / "context_app.py").relative_to(REPO))
    return launch.start(Target("context", run=run, wsgi="context_app:app", chdir=APPS))


def test_concurrent_requests_see_only_their_own_cookies(context_server: Server) -> None:
    barrier = threading.Barrier(CLIENTS, timeout=30)
    serializer = URLSafeTimedSerializer("concurrency-test", salt="microroute.session:session")

    def one(i: int) -> tuple[int, requests.Response]:
        with requests.Session() as client:
            barrier.wait()
            response = client.get(
                context_server.url + "/whoami",
                cookies={"who": f"client-{i}"},
                headers={"X-Who": f"client-{i}"},
                timeout=30,
            )
            return i, response

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(one, range(CLIENTS)))

    overlap = 0
    for i, response in results:
        me = f"client-{i}"
        assert response.status_code == 200, response.text
        body = response.json()
        overlap = max(overlap, body.pop("together"))
        assert body == {"who": me, "header": me, "session": me}
        assert response.cookies["echo"] == me
        assert serializer.loads(response.cookies["session"]) == {"who": me}
    # The requests really ran interleaved in one worker, or this proves nothing.
    assert overlap > 10
