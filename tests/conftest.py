"""Shared fixtures: a fresh Router per test and a factory for clients on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from microroute import App, Router
from microroute.testing import TestClient


@pytest.fixture
def router() -> Router:
    """A fresh Router, so no test sees another test's routes."""
    return Router()


@pytest.fixture
def make_client(router: Router) -> Iterator[Callable[..., TestClient]]:
    """Build ``App(router, **options)`` once routes are registered; return its client.

    Every client is closed at teardown, so open streams get their generators closed.
    """
    clients: list[TestClient] = []

    def make(**app_options: Any) -> TestClient:
        client = TestClient(App(router, **app_options))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
