"""pytest plugin: a ``client`` fixture for the app under test.

Installed through the ``pytest11`` entry point, so a project only defines how
to build its app and gets a ``TestClient`` for it::

    # conftest.py
    import pytest
    from microroute import App

    @pytest.fixture
    def app():
        return App(app_dir="app")

    # test_users.py
    def test_list(client):
        assert client.get("/api/users").json() == []

It needs the ``testing`` extra (``pip install "microroute[testing]"``); without
``requests`` the fixture fails with a line saying so. The client is closed after
each test, so a streamed response the test left open still has its generator
closed (and its ``finally:`` run) before the next test starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from microroute.testing import TestClient

__all__ = ["client"]

_MISSING_APP = """\
the `client` fixture builds a TestClient from your `app` fixture, and there is none.
Define one returning your WSGI app, e.g. in conftest.py:

    import pytest
    from microroute import App

    @pytest.fixture
    def app():
        return App(app_dir="app")
"""


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A ``microroute.testing.TestClient`` calling the ``app`` fixture's app."""
    app = _user_app(request)
    if app is None:
        # Outside the except block, so the report shows only this message.
        pytest.fail(_MISSING_APP, pytrace=False)
    # Imported here: the plugin loads in every pytest run where microroute is
    # installed, and must not fail where `requests` (the testing extra) is not.
    missing: str | None = None
    try:
        from microroute.testing import TestClient
    except ImportError as exc:
        missing = str(exc)
    if missing is not None:
        pytest.fail(f"the `client` fixture: {missing}", pytrace=False)

    with TestClient(app) as test_client:
        yield test_client


def _user_app(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("app")
    except pytest.FixtureLookupError as exc:
        # Only a missing `app` gets the hint; a fixture that `app` itself needs
        # and lacks keeps pytest's own message, which names that fixture.
        if exc.argname != "app":
            raise
        return None
