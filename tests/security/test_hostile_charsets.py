"""``request.text`` with a charset the client chose: text encodings only.

Python's codec registry also holds codecs that are not text encodings
(``base64``, ``zlib``, ``rot13``) and text encodings that refuse to replace
what they cannot decode (``idna``, ``punycode``). A client naming one of them,
or a charset that does not exist, gets a JSON 400 naming the charset.
"""

from __future__ import annotations

import pytest

NOT_TEXT = [
    "base64", "zlib", "hex", "rot13", "uu", "bz2", "quopri", "punycode", "idna",
    "undefined", "no-such-charset", "x" * 300,
]  # fmt: skip


@pytest.mark.parametrize("charset", NOT_TEXT, ids=lambda c: c[:20].replace("\x00", "NUL"))
def test_a_charset_that_cannot_decode_text_is_a_json_400_naming_it(client, refused, charset):
    """README: 'A charset that is not a text encoding ... is a 400 naming it'."""
    resp = client.post(
        "/text",
        data=b"\xff\xfe hello \x80",
        headers={"Content-Type": f"text/plain; charset={charset}"},
    )
    message = refused(resp, 400)["error"]
    assert "charset" in message
    assert repr(charset[:40]) in message


TEXT = {
    "utf-8": ("utf-8", "h\u00e9".encode(), "h\u00e9"),
    "latin-1": ("latin-1", b"h\xe9", "h\u00e9"),
    "utf-16": ("utf-16", "hi".encode("utf-16"), "hi"),
    "invalid-utf8-replaced": ("utf-8", b"a\xffb", "a\ufffdb"),
    "no-charset": (None, "h\u00e9".encode(), "h\u00e9"),
}


@pytest.mark.parametrize(("charset", "body", "text"), TEXT.values(), ids=TEXT.keys())
def test_a_text_encoding_decodes_with_replacement(client, charset, body, text):
    content_type = "text/plain" + (f"; charset={charset}" if charset else "")
    resp = client.post("/text", data=body, headers={"Content-Type": content_type})
    assert resp.status_code == 200
    assert resp.json() == {"text": text}
