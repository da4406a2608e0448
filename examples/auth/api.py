"""A login API with a signed session, called from a page on another origin.

    MICROROUTE_SECRET_KEY=change-me microroute run examples/auth/api.py --port 8000
    microroute run examples/auth/page.py --port 8001

then open http://127.0.0.1:8001 in a browser, or be the page with curl:

    curl -c cookies.txt --json '{"name": "ann"}' 127.0.0.1:8000/api/login  # {"user": "ann"}
    curl -b cookies.txt 127.0.0.1:8000/api/me                  # {"user": "ann"}
    curl 127.0.0.1:8000/api/me                                 # 401 {"error": "Not logged in"}

``AUTH_ALLOWED_ORIGINS`` (comma-separated, default ``http://127.0.0.1:8001``)
lists the origins whose pages may call this API with the user's cookies.
"""

from __future__ import annotations

import os
import secrets

from microroute import App, Router, ValidationError, abort, cors, session

api = Router()


@api.post("/api/login")
def login(request):
    body = request.json
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name is required")
    session()["user"] = name.strip()
    return {"user": name.strip()}


@api.get("/api/me")
def me():
    user = session().get("user")
    if user is None:
        abort(401, "Not logged in")
    return {"user": user}


@api.post("/api/logout")
def logout():
    session().clear()  # an empty session deletes its cookie


@api.get("/")
def index():
    return {"login": "POST /api/login", "me": "GET /api/me", "logout": "POST /api/logout"}


# Without MICROROUTE_SECRET_KEY, a random key: sessions end when the server restarts.
app = App(api, secret_key=os.environ.get("MICROROUTE_SECRET_KEY") or secrets.token_hex(32))
app.use(
    cors(
        allow_origins=os.environ.get("AUTH_ALLOWED_ORIGINS", "http://127.0.0.1:8001").split(","),
        allow_credentials=True,  # the page sends and receives the session cookie
    )
)
