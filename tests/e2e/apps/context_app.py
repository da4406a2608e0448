"""An app whose every response must carry only its own request's values."""

from __future__ import annotations

import time

from microroute import App, Router, cookies, headers, session

api = Router()
in_flight = 0


@api.get("/whoami")
def whoami():
    global in_flight
    in_flight += 1
    try:
        who = cookies().get("who")
        time.sleep(0.05)  # monkey-patched: other requests run meanwhile
        session()["who"] = who
        cookies().set("echo", str(who))
        together = in_flight
    finally:
        in_flight -= 1
    return {
        "who": who,
        "header": headers().get("X-Who"),
        "session": session()["who"],
        "together": together,
    }


@api.get("/")
def index():
    return {"ok": True}


app = App(api, secret_key="concurrency-test")
