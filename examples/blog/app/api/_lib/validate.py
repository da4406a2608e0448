"""Checks on the JSON a client sends for a post; bad input is a 400 with a message."""

from __future__ import annotations

from typing import Any

from microroute import ValidationError

MAX_TITLE = 200


def post_fields(data: Any, *, partial: bool) -> dict[str, Any]:
    """The post fields in *data*, checked.

    *partial* (PATCH) lets any field be absent; otherwise (POST, PUT) ``title``
    is required and the others default.
    """
    if not isinstance(data, dict):
        raise ValidationError("Expected a JSON object")
    unknown = sorted(set(data) - {"title", "body", "published"})
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(unknown)}")
    fields: dict[str, Any] = {}
    if "title" in data or not partial:
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ValidationError("title is required and must be a non-empty string")
        if len(title) > MAX_TITLE:
            raise ValidationError(f"title must be at most {MAX_TITLE} characters")
        fields["title"] = title.strip()
    if "body" in data or not partial:
        body = data.get("body", "")
        if not isinstance(body, str):
            raise ValidationError("body must be a string")
        fields["body"] = body
    if "published" in data or not partial:
        published = data.get("published", False)
        if not isinstance(published, bool):
            raise ValidationError("published must be true or false")
        fields["published"] = published
    return fields
