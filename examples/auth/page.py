"""The page that calls examples/auth/api.py from another origin, with cookies.

    API_URL=http://127.0.0.1:8000 microroute run examples/auth/page.py --port 8001
"""

from __future__ import annotations

import json
import os

from microroute import App, Response, Router

API_URL = os.environ.get("API_URL", "http://127.0.0.1:8000")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>microroute auth demo</title>
<h1>Signed-session login across origins</h1>
<input id="name" value="ann"> <button id="login">Log in</button>
<button id="me">Who am I?</button> <button id="logout">Log out</button>
<pre id="out"></pre>
<script>
const API = %(api)s;
// credentials: "include" sends and stores the API's cookies from this origin.
async function call(path, options = {}) {
  try {
    const response = await fetch(API + path, {credentials: "include", ...options});
    const text = await response.text();
    return {status: response.status, body: text ? JSON.parse(text) : null};
  } catch (error) {
    return {error: String(error)};  // a CORS refusal lands here
  }
}
window.demo = {
  login: (name) => call("/api/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({name}),
  }),
  me: () => call("/api/me"),
  logout: () => call("/api/logout", {method: "POST"}),
};
const show = async (promise) => {
  document.getElementById("out").textContent = JSON.stringify(await promise, null, 2);
};
document.getElementById("login").onclick =
  () => show(demo.login(document.getElementById("name").value));
document.getElementById("me").onclick = () => show(demo.me());
document.getElementById("logout").onclick = () => show(demo.logout());
</script>
"""

pages = Router()


@pages.get("/")
def index():
    html = PAGE % {"api": json.dumps(API_URL)}
    return Response(html, mimetype="text/html")


app = App(pages)
