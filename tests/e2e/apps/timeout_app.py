"""An app with ``handler_timeout`` and a handler that blocks past it in plain ``time.sleep``.

Served by ``tests/e2e/test_granian.py`` under ``microroute run`` (monkey-patched:
the sleep yields to gevent, so the client gets the 504) and under granian
(threads, not patched: the sleep holds its thread, the handler runs to its end,
and the app says at its first timed call that the setting cannot work there).
"""

from __future__ import annotations

import time

from microroute import App, Router

api = Router()


@api.get("/slow")
def slow() -> dict[str, bool]:
    time.sleep(0.5)
    return {"slept": True}


app = App(api, handler_timeout=0.1, cache=False)
