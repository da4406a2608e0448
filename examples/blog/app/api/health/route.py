"""/api/health — is the server up and the database reachable?"""

from __future__ import annotations

from app.api._lib import db

# A health check must run every time, never be served from the cache.
dynamic = "force-dynamic"


def GET() -> dict[str, str]:
    db.ping()
    return {"status": "ok"}
