"""/api/posts — list posts (GET) and create one (POST)."""

from __future__ import annotations

from typing import Any

from app.api._lib import db
from app.api._lib.validate import post_fields

from microroute import Request, ValidationError


def GET(request: Request) -> list[dict[str, Any]]:
    """All posts; ``?published=true`` or ``false`` filters."""
    flag = request.args.get("published")
    if flag not in (None, "true", "false"):
        raise ValidationError("published must be true or false")
    return db.list_posts(None if flag is None else flag == "true")


def POST(request: Request) -> tuple[dict[str, Any], int, dict[str, str]]:
    post = db.create_post(**post_fields(request.json, partial=False))
    return post, 201, {"Location": f"/api/posts/{post['id']}"}
