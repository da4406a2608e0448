"""An SSE clock: one Server-Sent Event per second, resumable after a reconnect.

Run it with either of (gunicorn comes with the gunicorn extra):

    microroute run examples/sse_clock.py
    pip install "microroute[gunicorn]"
    cd examples && gunicorn -k gevent sse_clock:app

then open http://127.0.0.1:8000/ in a browser (an EventSource prints the
ticks), or watch the raw stream:

    curl -N 127.0.0.1:8000/clock
    curl -N 127.0.0.1:8000/clock -H 'Last-Event-ID: 41'     # resumes at tick 42

Each tick is an ``Event`` with an ``id``: a browser that loses the connection
reconnects by itself and sends the last id back in ``Last-Event-ID``, which
``EventStream.last_event_id()`` reads, so the count carries on where it stopped.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator

from microroute import App, Event, EventStream, Response, Router

route = Router()  # its own, not microroute.route: other examples may share the process

#: Seconds between ticks; a test may shorten it.
INTERVAL = 1.0

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>microroute SSE clock</title>
<h1 id="now">connecting...</h1>
<ol id="log" reversed></ol>
<script>
  const source = new EventSource("/clock");
  source.addEventListener("tick", (e) => {
    const tick = JSON.parse(e.data);
    document.getElementById("now").textContent = tick.time;
    const item = document.createElement("li");
    item.textContent = `#${e.lastEventId} ${tick.time}`;
    document.getElementById("log").prepend(item);
  });
</script>
"""


@route.get("/")
def page() -> Response:
    return Response(PAGE, mimetype="text/html")


@route.get("/clock")
def clock() -> EventStream:
    """``tick`` events forever, numbered from the client's ``Last-Event-ID`` + 1."""
    last = EventStream.last_event_id()
    start = int(last) + 1 if last is not None and last.isdigit() else 0

    def ticks() -> Iterator[Event]:
        n = start
        while True:
            now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            yield Event({"time": now}, event="tick", id=n)
            n += 1
            time.sleep(INTERVAL)  # gevent's sleep under microroute run: nothing else waits

    return EventStream(ticks())


app = App(route)

if __name__ == "__main__":
    print("Serve this file with:  microroute run examples/sse_clock.py")
