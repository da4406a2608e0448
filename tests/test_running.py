"""The handler stage: ``App(handler_timeout=...)`` says when it cannot interrupt a handler.

The timeout is a ``gevent.Timeout``: it interrupts a handler at a wait that
yields to gevent. In a process gevent has not monkey-patched (granian's
threads, this test run) a ``time.sleep()`` or a plain socket read holds the
thread, so the first timed call logs a warning naming the setting instead of
letting the limit fail silently.
"""

from __future__ import annotations

import logging

import pytest
from gevent import monkey

WARNING = "App(handler_timeout=5) cannot interrupt a handler that blocks in this process"


@pytest.fixture
def quick(router):
    router.get("/quick")(lambda: {"ok": True})
    return router


def test_an_unpatched_process_warns_once_at_the_first_timed_call(quick, make_client, caplog):
    """README: "under granian the first timed request logs a warning naming the setting"."""
    client = make_client(handler_timeout=5, cache=False)
    assert not monkey.is_module_patched("socket")  # pytest runs unpatched
    with caplog.at_level(logging.WARNING, logger="microroute"):
        assert client.get("/quick").json() == {"ok": True}
        assert client.get("/quick").json() == {"ok": True}
    warnings = [r for r in caplog.records if WARNING in r.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert warnings[0].levelno == logging.WARNING
    assert "`microroute run` or a gevent gunicorn worker" in warnings[0].getMessage()


def test_a_patched_process_does_not_warn(quick, make_client, caplog, monkeypatch):
    monkeypatch.setattr(monkey, "is_module_patched", lambda name: True)
    client = make_client(handler_timeout=5, cache=False)
    with caplog.at_level(logging.WARNING, logger="microroute"):
        assert client.get("/quick").status_code == 200
    assert "handler_timeout" not in caplog.text


def test_no_handler_timeout_no_warning(quick, make_client, caplog):
    client = make_client(cache=False)
    with caplog.at_level(logging.WARNING, logger="microroute"):
        assert client.get("/quick").status_code == 200
    assert "handler_timeout" not in caplog.text
