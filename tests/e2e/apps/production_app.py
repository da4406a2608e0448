"""An app whose logs go to a JSON-lines file, for the request-id and access-record tests.

``PRODUCTION_LOG`` names the file. The app configures logging itself (as a
user's ``--log-config`` or gunicorn's ``--log-config-dict`` would), so the
records are the same whichever server runs it.
"""

from __future__ import annotations

import logging
import logging.config
import os

from microroute import App, Router, after, request_id
from microroute.requestids import install_record_factory

install_record_factory()
logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": os.environ["PRODUCTION_LOG"],
                "formatter": "json",
            }
        },
        "loggers": {
            "microroute": {"handlers": ["file"], "level": "INFO", "propagate": False},
            "myapp": {"handlers": ["file"], "level": "INFO", "propagate": False},
        },
    }
)
log = logging.getLogger("myapp")
api = Router()


@api.get("/static")
def static():
    return {"static": True}


@api.get("/items/[id]", dynamic="force-dynamic")
def item(id: str):
    log.info("in the handler")
    after(log.info, "in after() work")
    return {"id": id, "request_id": request_id()}


@api.get("/stream")
def stream():
    log.info("before the first chunk")
    yield "a\n"
    log.info("in the stream")
    yield "b\n"


@api.get("/boom")
def boom():
    raise RuntimeError("boom")


@api.post("/upload")
def upload():
    return {"never": True}


app = App(api, max_body_size=10)
