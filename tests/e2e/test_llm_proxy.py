"""examples/llm_proxy/ on every server: the browser leaves, the upstream stops at once.

The fake upstream (``microroute run``) streams a long answer slowly and records
when each of its streams stopped; the proxy runs on each server kind. A client
reads the first token and closes the connection: the proxy's ``on_disconnect``
closes its upstream request, the upstream's own server notices that in turn,
and the upstream stops generating — within about a second, not at the end of
the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

TIMEOUT = 10


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from servers import EXAMPLES, Launcher, Target

    launcher = Launcher("microroute", tmp_path_factory.mktemp("upstream"))
    target = Target(
        "fake-llm", run="examples/llm_proxy/fake_upstream.py", wsgi="fake_upstream:app",
        chdir=EXAMPLES / "llm_proxy", env={"FAKE_LLM_DELAY": "0.3"},
    )  # fmt: skip
    yield launcher.start(target)
    launcher.stop_all()


@pytest.fixture
def proxy(launch: Launcher, upstream: Server) -> Server:
    from servers import EXAMPLES, Target

    target = Target(
        "llm-proxy", run="examples/llm_proxy/proxy.py", wsgi="proxy:app",
        chdir=EXAMPLES / "llm_proxy",
        env={"LLM_UPSTREAM": f"{upstream.url}/v1/chat/completions"},
    )  # fmt: skip
    return launch.start(target)


def test_the_upstream_stops_when_the_browser_leaves(proxy: Server, upstream: Server) -> None:
    before = len(requests.get(f"{upstream.url}/v1/streams", timeout=TIMEOUT).json())
    with requests.get(f"{proxy.url}/api/chat?prompt=hi", stream=True, timeout=TIMEOUT) as chat:
        lines = chat.iter_lines()
        assert next(lines) == b"event: token"
        left = time.time()
    deadline = time.monotonic() + 5
    while True:
        record = requests.get(f"{upstream.url}/v1/streams", timeout=TIMEOUT).json()[before]
        if record["stopped"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert record["stopped"] is not None, record
    assert record["stopped"] - left < 1.5, record["stopped"] - left
    assert record["sent"] < record["of"] / 2, record  # nobody paid for the rest
    # after() recorded the usage once the response was over: a few tokens, unfinished.
    deadline = time.monotonic() + 5
    while not (usage := requests.get(f"{proxy.url}/api/usage", timeout=TIMEOUT).json()):
        assert time.monotonic() < deadline, "after() never ran"
        time.sleep(0.05)
    assert usage[-1]["prompt"] == "hi"
    assert usage[-1]["finished"] is False
    assert 1 <= usage[-1]["tokens"] < record["of"] / 2
