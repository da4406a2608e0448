"""The app the soak (``benchmarks/soak.py``) serves: the blog example plus fault routes.

``microroute run benchmarks/soak_app.py`` serves the blog's discovered
``/api/posts`` CRUD (on ``$BLOG_DB``) beside a few routes made to misbehave:

* ``/soak/stream?n=..&delay=..`` streams chunks from a generator and counts
  generators opened and closed (its ``finally:`` must run, even when the
  client disconnects mid-stream);
* ``/soak/flaky`` raises about one time in four (a 500 the server survives);
* ``/soak/echo`` reads a JSON body; ``/soak/hello`` is a plain GET;
* ``/soak/stats`` reports the counters and this process's RSS.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from microroute import App, Request, Router

BLOG_APP = Path(__file__).resolve().parents[1] / "examples" / "blog" / "app"

soak = Router()

#: Generators started and finished (closed, exhausted or broken) by /soak/stream.
counters = {"opened": 0, "closed": 0, "raised": 0}


class SoakFault(Exception):
    """The failure /soak/flaky raises on purpose."""


def rss_kib() -> int:
    """This process's resident set size now, in KiB (Linux ``/proc``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: the peak


@soak.get("/soak/hello")
def hello() -> dict[str, Any]:
    return {"hello": "soak"}


@soak.post("/soak/echo")
def echo(request: Request) -> dict[str, Any]:
    return {"got": request.json}


@soak.get("/soak/flaky")
def flaky(request: Request) -> dict[str, Any]:
    if random.random() < 0.25:
        counters["raised"] += 1
        raise SoakFault("a handler failing on purpose")
    return {"ok": True}


@soak.get("/soak/stream")
def stream(request: Request) -> Iterator[str]:
    chunks = min(int(request.args.get("n", "20")), 1000)
    delay = min(float(request.args.get("delay", "0.01")), 1.0)

    def generate() -> Iterator[str]:
        counters["opened"] += 1
        try:
            for index in range(chunks):
                yield f"chunk {index} " + "x" * 200 + "\n"
                time.sleep(delay)  # monkey-patched: yields to other greenlets
        finally:
            counters["closed"] += 1

    return generate()


@soak.get("/soak/stats")
def stats() -> dict[str, Any]:
    return {**counters, "rss_kib": rss_kib()}


app = App(soak, app_dir=BLOG_APP, cache=False)
