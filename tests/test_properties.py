"""Property tests (Hypothesis): routing, body parsing, signing and return values.

Each property runs a bounded number of examples, so the file stays well
under 30 seconds in CI. Everything goes through the public API: an ``App``
built from a ``Router``, called with the TestClient.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from microroute import App, Request, Router, StartupError, cookies
from microroute.testing import TestClient

FEW = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written under .hypothesis/ by CI runs
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# -- path matching against a reference matcher ---------------------------------

STATIC_NAMES = ("a", "b", "c")
URL_SEGMENTS = ("a", "b", "c", "zz", "")

# A route is a tuple of segments: ("static", name), ("param",), ("catchall",), ("optional",).
segment = st.one_of(st.sampled_from(STATIC_NAMES).map(lambda s: ("static", s)), st.just(("param",)))
tail = st.sampled_from([("catchall",), ("optional",)])
route_shape = st.tuples(st.lists(segment, max_size=3), st.one_of(st.none(), tail)).map(
    lambda t: tuple(t[0]) + ((t[1],) if t[1] else ())
)


def route_path(shape: tuple[tuple[str, ...], ...]) -> str:
    parts = []
    for index, seg in enumerate(shape):
        if seg[0] == "static":
            parts.append(seg[1])
        elif seg[0] == "param":
            parts.append(f"[p{index}]")
        elif seg[0] == "catchall":
            parts.append("[...rest]")
        else:
            parts.append("[[...rest]]")
    return "/" + "/".join(parts)


def reference_match(
    shapes: list[tuple[tuple[str, ...], ...]], segments: list[str]
) -> tuple[str, dict[str, Any]] | None:
    """The documented precedence, written the slow way.

    Every route that matches is ranked by the kind of segment it used at each
    position (static 0 < [x] 1 < catch-all 2), plus, at the end of the URL, an
    exact end (0) before an optional catch-all left empty (1). The lowest
    ranking wins: a static segment beats [x], which beats a catch-all, and a
    dead end falls back to the next choice (backtracking). A URL with an empty
    segment (``a//b``) is a 400 before routing; the test checks that first.
    """
    best: tuple[tuple[int, ...], str, dict[str, Any]] | None = None
    for shape in shapes:
        rank: list[int] = []
        params: dict[str, Any] = {}
        matched = False
        for index, seg in enumerate(shape):
            kind = seg[0]
            if kind in ("catchall", "optional"):
                rest = segments[index:]
                if rest and rest[0]:
                    rank.append(2)
                    params["rest"] = rest
                    matched = True
                elif not rest and kind == "optional":
                    rank.append(1)
                    params["rest"] = []
                    matched = True
                break
            if index >= len(segments):
                break
            if kind == "static":
                if segments[index] != seg[1]:
                    break
                rank.append(0)
            else:
                if not segments[index]:
                    break
                rank.append(1)
                params[f"p{index}"] = segments[index]
        else:
            if len(shape) == len(segments):
                rank.append(0)
                matched = True
        if matched and (best is None or tuple(rank) < best[0]):
            best = (tuple(rank), route_path(shape), params)
    return None if best is None else (best[1], best[2])


def build(shapes: list[tuple[tuple[str, ...], ...]]) -> TestClient:
    router = Router()
    for shape in shapes:
        path = route_path(shape)
        router.add(path, lambda params, _path=path: {"route": _path, "params": params})
    try:
        return TestClient(App(router, cache=False))
    except StartupError:
        reject()  # two routes on the same URLs: not a route set an app can have
        raise


@FEW
@given(
    shapes=st.lists(route_shape, min_size=1, max_size=6, unique_by=route_path),
    urls=st.lists(st.lists(st.sampled_from(URL_SEGMENTS), max_size=4), min_size=1, max_size=8),
)
@example(
    shapes=[(("static", "a"), ("static", "b")), (("param",), ("catchall",))],
    urls=[["a", "c"], ["a", "b"], ["a", "b", "c"]],
)
def test_routing_agrees_with_the_reference_matcher(shapes, urls):
    client = build(shapes)
    with client:
        for segments in urls:
            if segments and not segments[-1]:
                continue  # a trailing slash redirects; covered in test_methods
            url = "http://testserver/" + "/".join(segments)  # "//a" alone is a host
            resp = client.get(url, allow_redirects=False)
            if "" in segments:  # a//b: refused before routing
                assert resp.status_code == 400, (segments, resp.json())
                continue
            expected = reference_match(shapes, segments)
            if expected is None:
                assert resp.status_code == 404, (segments, resp.json())
            else:
                assert resp.status_code == 200, (segments, expected)
                assert resp.json() == {"route": expected[0], "params": expected[1]}, segments


# -- parsing arbitrary bodies ----------------------------------------------------


@pytest.fixture(scope="module")
def parser_client() -> TestClient:
    router = Router()

    @router.post("/json")
    def read_json(request: Request) -> dict[str, Any]:
        return {"type": type(request.json).__name__}

    @router.post("/echo")
    def echo(request: Request) -> Any:
        return {"got": request.json}

    @router.post("/form")
    def read_form(request: Request) -> dict[str, Any]:
        return {"fields": len(request.form), "files": len(request.files)}

    return TestClient(App(router, max_body_size=64 * 1024, max_form_parts=20))


CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=B",
        "multipart/form-data",
        "text/plain; charset=latin-1",
        "text/plain; charset=no-such-charset",
    ]
)


def answered_in_json(resp: Any, statuses: tuple[int, ...]) -> Any:
    assert resp.status_code in statuses, (resp.status_code, resp.text[:200])
    assert resp.headers["Content-Type"] == "application/json"
    return resp.json()


@FEW
@given(body=st.binary(max_size=2048), content_type=CONTENT_TYPES)
def test_json_parsing_never_500s_on_arbitrary_bytes(parser_client, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = parser_client.post("/json", data=body, headers=headers)
    answer = answered_in_json(resp, (200, 400))
    if resp.status_code == 400:
        assert answer["error"].startswith("Invalid JSON body")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@FEW
@given(value=json_values)
def test_json_round_trips(parser_client, value):
    resp = parser_client.post("/echo", data=json.dumps(value))
    assert answered_in_json(resp, (200,)) == {"got": value}


MULTIPART_PIECES = st.sampled_from(
    [b"--B\r\n", b"--B--\r\n", b"\r\n", b'Content-Disposition: form-data; name="a"\r\n',
     b'Content-Disposition: form-data; name="f"; filename="x.txt"\r\n', b"value", b"\xff\x00",
     b"Content-Type: text/plain\r\n", b"--", b"B"]
)  # fmt: skip


@FEW
@given(
    body=st.one_of(st.binary(max_size=2048), st.lists(MULTIPART_PIECES, max_size=30).map(b"".join)),
    content_type=CONTENT_TYPES,
)
def test_form_parsing_never_500s_on_arbitrary_bytes(parser_client, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = parser_client.post("/form", data=body, headers=headers)
    answered_in_json(resp, (200, 400, 413))


# -- signed cookies -----------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_app() -> App:
    router = Router()

    @router.post("/sign")
    def sign(request: Request) -> dict[str, Any]:
        cookies().set("token", request.json["value"], signed=True)
        return {}

    @router.get("/read")
    def read() -> dict[str, Any]:
        return {"value": cookies().get("token", signed=True)}

    return App(router, secret_key=["old-key", "current-key"])


cookie_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"), max_size=40
)


def cookie_pair(resp: Any) -> str:
    """``name=value`` of the one Set-Cookie, verbatim, as a browser sends it back.

    (requests' cookie jar, which the TestClient keeps, drops the backslash of
    an escaped quote in a quoted value; a browser sends the bytes it got.)
    """
    return str(resp.headers["Set-Cookie"]).split("; ")[0]


@FEW
@given(value=cookie_text)
def test_signed_cookie_round_trips(signing_app, value):
    with TestClient(signing_app) as client:
        resp = client.post("/sign", json={"value": value})
        assert resp.status_code == 200
        client.cookies.clear()
        read = client.get("/read", headers={"Cookie": cookie_pair(resp)})
        assert read.json() == {"value": value}


TAMPER_ALPHABET = string.ascii_letters + string.digits + "-_."


def signed_token(client: TestClient, value: str) -> str:
    signed = cookie_pair(client.post("/sign", json={"value": value})).partition("=")[2]
    client.cookies.clear()
    return signed


@FEW
@given(value=st.text(string.ascii_letters + string.digits, max_size=20), data=st.data())
def test_any_changed_byte_in_a_signed_cookie_reads_as_missing(signing_app, value, data):
    with TestClient(signing_app) as client:
        signed = signed_token(client, value)
        # The signature's last character: see the test below.
        index = data.draw(st.integers(0, len(signed) - 2), label="index")
        choices = TAMPER_ALPHABET.replace(signed[index], "")
        replacement = data.draw(st.sampled_from(choices), label="replacement")
        tampered = signed[:index] + replacement + signed[index + 1 :]
        resp = client.get("/read", headers={"Cookie": f"token={tampered}"})
        assert resp.json() == {"value": None}, (signed, tampered)


def test_a_changed_last_signature_character_reads_as_missing(signing_app):
    # The signature is base64 with spare low bits in its last character, so
    # some other characters there decode to the very same bytes; the contract
    # is still that a changed value reads as missing.
    with TestClient(signing_app) as client:
        signed = signed_token(client, "hello")
        accepted = []
        for replacement in TAMPER_ALPHABET.replace(signed[-1], ""):
            tampered = signed[:-1] + replacement
            resp = client.get("/read", headers={"Cookie": f"token={tampered}"})
            if resp.json() != {"value": None}:
                accepted.append(tampered)
        assert accepted == [], (signed, accepted)


# -- return-value coercion ----------------------------------------------------------

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BYTES_TYPE = "application/octet-stream"

bodies = st.one_of(
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(lambda v: ("json", v)),
    st.lists(st.integers(), max_size=3).map(lambda v: ("json", v)),
    st.text(max_size=20).map(lambda v: ("text", v)),
    st.binary(max_size=20).map(lambda v: ("bytes", v)),
    st.just(("none", None)),
)
statuses = st.sampled_from([200, 201, 202, 400, 404, 418, 422, 500, 503])
extra_headers = st.sampled_from([None, {"X-Extra": "1"}, {"Content-Type": "text/csv"}])


@FEW
@given(body=bodies, status=st.one_of(st.none(), statuses), headers=extra_headers)
def test_return_values_give_the_documented_response(body, status, headers):
    kind, value = body
    if status is None:
        returned: Any = value
    elif headers is None:
        returned = (value, status)
    else:
        returned = (value, status, headers)
    router = Router()
    router.add("/r", lambda: returned)
    with TestClient(App(router, cache=False)) as client:
        resp = client.get("/r")

    default_type = {"json": JSON_TYPE, "text": TEXT_TYPE, "bytes": BYTES_TYPE, "none": None}[kind]
    if status is None:
        assert resp.status_code == (204 if kind == "none" else 200)
    else:
        assert resp.status_code == status
    given_headers = headers if status is not None and headers is not None else {}
    expected_type = given_headers.get("Content-Type", default_type)
    assert resp.headers.get("Content-Type") == expected_type
    if "X-Extra" in given_headers:
        assert resp.headers["X-Extra"] == "1"
    if kind == "json":
        assert json.loads(resp.content) == value
    elif kind == "text":
        assert resp.content == value.encode()
    elif kind == "bytes":
        assert resp.content == value
    else:
        assert resp.content == b""
