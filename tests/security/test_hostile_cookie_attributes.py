"""``cookies().set()`` refuses names and attributes a browser would misread.

A name is an RFC 6265 token, ``domain`` a host name (so it cannot add
attributes of its own), and ``samesite="none"`` comes with ``Secure``, which
browsers require (they drop the cookie silently otherwise). These are
programmer errors: a 500 whose log names the cookie, and no ``Set-Cookie``.
"""

from __future__ import annotations

import logging

import pytest


def logged_errors(caplog) -> str:
    return " ".join(
        f"{r.getMessage()} {r.exc_info[1] if r.exc_info else ''}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    )


BAD = {
    "nul-in-name": {"name": "a\x00b"},
    "tab-in-name": {"name": "a\tb"},
    "non-ascii-name": {"name": "caf\u00e9"},
    "slash-in-name": {"name": "a/b"},
    "colon-in-name": {"name": "a:b"},
    "domain-injecting-an-attribute": {"domain": "example.com; SameSite=None"},
    "domain-with-a-port": {"domain": "example.com:8000"},
    "domain-with-a-space": {"domain": "example .com"},
    "domain-with-a-slash": {"domain": "example.com/x"},
    "domain-crlf": {"domain": "example.com\r\nX-Injected: 1"},
    "samesite-none-not-secure": {"samesite": "none", "secure": "false"},
}


@pytest.mark.parametrize("params", BAD.values(), ids=BAD.keys())
def test_a_bad_cookie_name_or_attribute_is_an_error_naming_the_cookie(client, caplog, params):
    """README: 'A cookie name is an RFC 6265 token and domain a host name ... Each mistake is
    an error naming the cookie'."""
    caplog.set_level(logging.ERROR, logger="microroute")
    params = {"name": "prefs", **params}
    resp = client.post("/cookie-attributes", params=params)
    assert resp.status_code == 500
    assert "Set-Cookie" not in resp.headers
    assert "X-Injected" not in resp.headers
    assert repr(params["name"]) in logged_errors(caplog)


def test_samesite_none_forces_secure(client):
    """README: 'samesite="none" forces Secure'."""
    resp = client.post("/cookie-attributes", params={"name": "prefs", "samesite": "none"})
    assert resp.status_code == 200
    attributes = [a.strip() for a in resp.headers["Set-Cookie"].split(";")]
    assert "SameSite=None" in attributes
    assert "Secure" in attributes


GOOD = {
    "host": ("example.com", "Domain=example.com"),
    "leading-dot": (".example.com", "Domain=example.com"),
    "localhost": ("localhost", "Domain=localhost"),
    "ip": ("127.0.0.1", "Domain=127.0.0.1"),
}


@pytest.mark.parametrize(("domain", "attribute"), GOOD.values(), ids=GOOD.keys())
def test_a_host_name_domain_is_set(client, domain, attribute):
    resp = client.post("/cookie-attributes", params={"name": "prefs", "domain": domain})
    assert resp.status_code == 200
    assert attribute in [a.strip() for a in resp.headers["Set-Cookie"].split(";")]


def test_token_characters_are_a_valid_name(client):
    name = "!#$%&'*+-.^_`|~Az09"
    resp = client.post("/cookie-attributes", params={"name": name})
    assert resp.status_code == 200
    assert resp.headers["Set-Cookie"].startswith(f"{name}=v;")
