"""What a trace must show, checked the same way in-process and on every server.

Each check takes a ``requests.Session``-like client and the base URL of
``tests/e2e/apps/observed_app.py``; the in-process test passes the TestClient,
the e2e test ``requests`` and a server's URL. Every request carries a
``traceparent`` with a fresh trace id, and the check reads that trace's spans
back from ``/spans/<trace id>``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

TIMEOUT = 10


class Trace:
    """A fresh trace id, the remote parent a client would send, and its spans."""

    def __init__(self) -> None:
        self.trace_id = secrets.token_hex(16)
        self.parent_id = secrets.token_hex(8)
        self.headers = {
            "traceparent": f"00-{self.trace_id}-{self.parent_id}-01",
            "User-Agent": "telemetry-checks/1.0",
        }

    def spans(self, client: Any, base: str, *names: str) -> dict[str, dict[str, Any]]:
        """The trace's spans by name, once every one of *names* has ended."""
        deadline = time.monotonic() + 5
        while True:
            found: list[dict[str, Any]] = client.get(
                f"{base}/spans/{self.trace_id}", timeout=TIMEOUT
            ).json()["spans"]
            by_name = {span["name"]: span for span in found}
            if all(name in by_name for name in names) or time.monotonic() > deadline:
                servers = [span for span in found if span["kind"] == "SERVER"]
                assert len(servers) == 1, f"one SERVER span per request, got {found}"
                assert len(by_name) == len(found), f"a span name twice: {found}"
                assert set(names) <= set(by_name), f"missing {set(names) - set(by_name)}"
                return by_name
            time.sleep(0.02)


def check_a_handler_span(client: Any, base: str) -> None:
    t = Trace()
    response = client.get(f"{base}/items/7", headers=t.headers, timeout=TIMEOUT)
    assert response.status_code == 200
    spans = t.spans(client, base, "GET /items/[id]", "handler work")
    server = spans["GET /items/[id]"]
    assert server["parent_id"] == t.parent_id  # the traceparent's span
    attributes = server["attributes"]
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.route"] == "/items/[id]"
    assert attributes["url.path"] == "/items/7"
    assert attributes["url.scheme"] == "http"
    assert attributes["http.response.status_code"] == 200
    assert attributes["server.address"] in ("127.0.0.1", "testserver")
    assert attributes["user_agent.original"] == "telemetry-checks/1.0"
    assert "client.address" in attributes
    assert server["status"] == "UNSET"
    # The request's span is current in the handler.
    assert spans["handler work"]["parent_id"] == server["span_id"]


def check_a_stream_span_ends_at_its_last_chunk(client: Any, base: str) -> None:
    t = Trace()
    response = client.get(f"{base}/stream", headers=t.headers, timeout=TIMEOUT)
    assert response.text == "first\nsecond\n"
    spans = t.spans(client, base, "GET /stream", "chunk 1", "chunk 2")
    server = spans["GET /stream"]
    for chunk in ("chunk 1", "chunk 2"):
        assert spans[chunk]["parent_id"] == server["span_id"], chunk
    # The span lasts to the stream's end, not to its headers: 0.2 s between chunks.
    assert server["end"] >= spans["chunk 2"]["end"]
    assert server["end"] - server["start"] >= 0.2e9
    assert server["attributes"]["http.response.body.size"] == len(response.content)


def check_after_work_is_in_the_trace(client: Any, base: str) -> None:
    t = Trace()
    assert client.post(f"{base}/jobs", headers=t.headers, timeout=TIMEOUT).status_code == 200
    spans = t.spans(client, base, "POST /jobs", "after work")
    assert spans["after work"]["parent_id"] == spans["POST /jobs"]["span_id"]


def check_a_client_leaving_is_recorded(client: Any, base: str) -> None:
    t = Trace()
    with client.get(f"{base}/endless", headers=t.headers, stream=True, timeout=TIMEOUT) as response:
        assert next(response.iter_lines()) == b"first"
        time.sleep(0.1)
    spans = t.spans(client, base, "GET /endless", "on_disconnect")
    server = spans["GET /endless"]
    assert spans["on_disconnect"]["parent_id"] == server["span_id"]
    assert "microroute.client_disconnected" in server["events"]


def check_a_static_build_is_a_child_span(client: Any, base: str) -> None:
    t = Trace()
    page = f"/pages/{t.trace_id[:8]}"  # a path no earlier check has built
    response = client.get(f"{base}{page}", headers=t.headers, timeout=TIMEOUT)
    assert response.headers["X-Microroute-Cache"] == "MISS"
    spans = t.spans(client, base, "GET /pages/[n]", "build /pages/[n]", "page work")
    server, build = spans["GET /pages/[n]"], spans["build /pages/[n]"]
    assert server["attributes"]["microroute.cache"] == "MISS"
    assert build["kind"] == "INTERNAL"
    assert build["parent_id"] == server["span_id"]
    assert spans["page work"]["parent_id"] == build["span_id"]  # current in the build
    again = Trace()
    response = client.get(f"{base}{page}", headers=again.headers, timeout=TIMEOUT)
    assert response.headers["X-Microroute-Cache"] == "HIT"
    spans = again.spans(client, base, "GET /pages/[n]")
    assert list(spans) == ["GET /pages/[n]"]  # no build, no handler
    assert spans["GET /pages/[n]"]["attributes"]["microroute.cache"] == "HIT"


def check_an_exception_is_recorded(client: Any, base: str) -> None:
    t = Trace()
    assert client.get(f"{base}/boom", headers=t.headers, timeout=TIMEOUT).status_code == 500
    server = t.spans(client, base, "GET /boom")["GET /boom"]
    assert server["status"] == "ERROR"
    assert server["events"] == ["exception"]
    assert server["attributes"]["error.type"] == "LookupError"


def check_an_unmatched_path_is_named_by_its_method(client: Any, base: str) -> None:
    t = Trace()
    assert client.get(f"{base}/nowhere/7", headers=t.headers, timeout=TIMEOUT).status_code == 404
    server = t.spans(client, base, "GET")["GET"]
    assert "http.route" not in server["attributes"]
    assert server["attributes"]["http.response.status_code"] == 404
    assert server["status"] == "UNSET"  # a 4xx is the client's, not the server's, error
