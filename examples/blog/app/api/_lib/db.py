"""The blog's storage: posts in one sqlite3 file.

The file is ``$BLOG_DB``, or ``blog.sqlite3`` next to the example. It is read on
every call, so tests can point each run at a fresh file.

Every call opens its own connection. A connection shared between greenlets
would interleave their transactions; opening one costs microseconds. The
database is in WAL mode with a busy timeout, so several server processes
(``gunicorn -w 4``) can write while others read.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "blog.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL DEFAULT '',
    published  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
)
"""

COLUMNS = ("title", "body", "published")

# Files whose schema exists already: creating it on every call would take a
# write lock each time.
_ready: set[str] = set()


def db_path() -> str:
    return os.environ.get("BLOG_DB") or str(DEFAULT_PATH)


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """A connection that commits on success, rolls back on error, and closes."""
    path = db_path()
    conn = sqlite3.connect(path, timeout=10)  # wait up to 10 s for another writer
    conn.row_factory = sqlite3.Row
    try:
        if path not in _ready:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(SCHEMA)
            conn.commit()
            _ready.add(path)
        with conn:  # one transaction
            yield conn
    finally:
        conn.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _post(row: sqlite3.Row) -> dict[str, Any]:
    post = dict(row)
    post["published"] = bool(post["published"])
    return post


def list_posts(published: bool | None = None) -> list[dict[str, Any]]:
    with connect() as conn:
        if published is None:
            rows = conn.execute("SELECT * FROM posts ORDER BY id").fetchall()
        else:
            rows = conn.execute(
                "SELECT * FROM posts WHERE published = ? ORDER BY id", (int(published),)
            ).fetchall()
    return [_post(row) for row in rows]


def get_post(post_id: int) -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute("SELECT * FROM posts WHERE id = ?", (post_id,)).fetchone()
    return _post(row) if row else None


def create_post(title: str, body: str = "", published: bool = False) -> dict[str, Any]:
    now = _now()
    with connect() as conn:
        cursor = conn.execute(
            "INSERT INTO posts (title, body, published, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING *",
            (title, body, int(published), now, now),
        )
        row = cursor.fetchone()
    return _post(row)


def update_post(post_id: int, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Set *fields* (a subset of :data:`COLUMNS`); ``None`` if there is no such post."""
    changes = {name: fields[name] for name in COLUMNS if name in fields}
    if "published" in changes:
        changes["published"] = int(changes["published"])
    assignments = ", ".join(f"{name} = ?" for name in changes)  # names from COLUMNS only
    with connect() as conn:
        row = conn.execute(
            f"UPDATE posts SET {assignments}{', ' if assignments else ''}updated_at = ?"
            " WHERE id = ? RETURNING *",
            (*changes.values(), _now(), post_id),
        ).fetchone()
    return _post(row) if row else None


def delete_post(post_id: int) -> bool:
    with connect() as conn:
        cursor = conn.execute("DELETE FROM posts WHERE id = ?", (post_id,))
    return cursor.rowcount > 0


def ping() -> bool:
    with connect() as conn:
        return bool(conn.execute("SELECT 1").fetchone()[0])
