"""granian is a supported server, and what it cannot do is said, not silent.

granian runs WSGI handlers in threads of a process gevent has not patched, so
the gevent-only features (README, "Which to use") are not there. The
differential suite checks the bytes granian serves; this module checks that a
setting which needs gevent says so when it cannot work.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from servers import GRANIAN, REPO, Launcher, Server, Target

pytestmark = pytest.mark.e2e

APPS = Path(__file__).parent / "apps"
TIMEOUT_APP = Target(
    "timeout",
    run=str((APPS / "timeout_app.py").relative_to(REPO)),
    wsgi="timeout_app:app",
    chdir=APPS,
)
WARNING = "App(handler_timeout=0.1) cannot interrupt a handler that blocks in this process"


@pytest.fixture(scope="module", params=["microroute", GRANIAN])
def timeout_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    launcher = Launcher(request.param, tmp_path_factory.mktemp(f"timeout-{request.param}"))
    try:
        yield launcher.start(TIMEOUT_APP)
    finally:
        launcher.stop_all()


def test_handler_timeout_is_a_504_on_gevent_and_a_warning_on_granian(
    timeout_server: Server,
) -> None:
    """README: "`handler_timeout` needs a gevent server: under granian the first timed
    request logs a warning naming the setting, and a handler blocked in plain I/O runs
    on past it"."""
    first = requests.get(timeout_server.url + "/slow", timeout=10)
    second = requests.get(timeout_server.url + "/slow", timeout=10)
    log = timeout_server.output()
    if timeout_server.kind == GRANIAN:
        assert (first.status_code, first.json()) == (200, {"slept": True})
        assert second.status_code == 200
        assert log.count(WARNING) == 1, log  # once, at the first timed call
        assert "gevent has not monkey-patched it" in log
    else:
        assert first.status_code == second.status_code == 504
        assert WARNING not in log, log
