"""An app whose OpenAPI document declares a security scheme, for the docs page's browser test.

The scheme is added to the document by hand here; route-level declarations
(providers) will put it there themselves.
"""

from __future__ import annotations

from typing import Any

from microroute import App, Request, Router
from microroute.docs import docs_router

api = Router()


@api.get("/whoami", dynamic="force-dynamic")
def whoami(request: Request) -> dict[str, Any]:
    """Who the request says it is: its Authorization header."""
    return {"authorization": request.headers.get("Authorization")}


_described = App(api, title="Secured", version="2.0.0")


def document() -> dict[str, Any]:
    doc = _described.openapi()
    doc.setdefault("components", {})["securitySchemes"] = {
        "token": {"type": "http", "scheme": "bearer", "description": "A bearer token"}
    }
    doc["security"] = [{"token": []}]
    return doc


app = App(api, docs_router(document, "/docs"))
