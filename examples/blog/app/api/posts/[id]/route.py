"""/api/posts/[id] — read, replace (PUT), update (PATCH) or delete one post."""

from __future__ import annotations

from typing import Any

from app.api._lib import db
from app.api._lib.validate import post_fields

from microroute import Request, not_found


def _post_id(id: str) -> int:
    # "/api/posts/abc" names no post: 404, like any other missing one.
    if not id.isdigit():
        not_found(f"No post {id!r}")
    return int(id)


def GET(id: str) -> dict[str, Any]:
    return db.get_post(_post_id(id)) or not_found(f"No post {id}")


def PUT(id: str, request: Request) -> dict[str, Any]:
    fields = post_fields(request.json, partial=False)
    return db.update_post(_post_id(id), fields) or not_found(f"No post {id}")


def PATCH(id: str, request: Request) -> dict[str, Any]:
    fields = post_fields(request.json, partial=True)
    return db.update_post(_post_id(id), fields) or not_found(f"No post {id}")


def DELETE(id: str) -> None:
    if not db.delete_post(_post_id(id)):
        not_found(f"No post {id}")
