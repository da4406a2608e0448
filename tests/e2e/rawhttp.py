"""Raw HTTP/1.1 against a served app: send bytes, check every byte that comes back.

Shared by the socket fuzzer and the smuggling corpus. :func:`check_case` sends
one hostile request on a connection of its own, half-closes it, reads until
the server closes, and asserts that:

* every byte the server sent is a well-formed HTTP/1.1 response, none of them
  a 5xx (but 501 for a transfer coding the server does not implement, which
  RFC 9112 §6.1 advises and gunicorn answers) and none holding a traceback;
* there are at most as many final responses as requests sent;
* the server still answers a normal request on a new connection.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from servers import Server

READ_TIMEOUT = 10.0  # a server that neither answers nor closes by then has hung

# -- what a well-formed response is (RFC 9112) ---------------------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2}) [\t\x20-\x7e\x80-\xff]*\r\n")
_FIELD_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*)\r\n")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)(;[^\r\n]*)?\r\n")


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    ignored: bytes = b""  # sent after a HEAD response that closed (see parse_responses)


class Malformed(AssertionError):
    """The server sent bytes that are not a well-formed HTTP/1.1 response."""


def parse_responses(data: bytes, method: bytes, cut: bool, lax_head: bool = False) -> list[Answer]:
    """Every response in *data*; *cut*: the connection was reset, the last may be partial.

    *lax_head*: a response to HEAD that closes the connection may be followed
    by a body (gunicorn sends one with its own 400s); it is then ignored.
    """
    answers: list[Answer] = []
    pos = 0
    while pos < len(data):
        if lax_head and answers and answers[-1].headers.get(b"connection") == b"close":
            answers[-1].ignored = data[pos:]
            break
        # Only the first final answer is to *method*; later ones answer the bytes after it.
        first = not any(a.status >= 200 for a in answers)
        try:
            answer, pos = _parse_one(data, pos, method if first else b"")
        except Malformed:
            if cut and answers is not None and _plausible_prefix(data[pos:]):
                break  # a response cut short by the reset, as far as it went well-formed
            raise
        answers.append(answer)
    return answers


def _plausible_prefix(rest: bytes) -> bool:
    line = rest.split(b"\r\n", 1)[0]
    return b"HTTP/1.1 "[: len(line)] == line[:9] or bool(_STATUS_LINE.match(rest))


def _parse_one(data: bytes, pos: int, method: bytes) -> tuple[Answer, int]:
    line = _STATUS_LINE.match(data, pos)
    if line is None:
        raise Malformed(f"not a status line: {data[pos : pos + 80]!r}")
    status = int(line.group(1))
    pos = line.end()
    headers: dict[bytes, bytes] = {}
    while not data.startswith(b"\r\n", pos):
        field = _FIELD_LINE.match(data, pos)
        if field is None:
            raise Malformed(f"not a header line: {data[pos : pos + 80]!r}")
        name = field.group(1).lower()
        if name in headers and name in (b"content-length", b"transfer-encoding"):
            raise Malformed(f"{name!r} twice")
        headers[name] = field.group(2).rstrip(b" \t")
        pos = field.end()
    pos += 2
    if status < 200 or status in (204, 304) or method == b"HEAD":
        return Answer(status, headers, b""), pos
    if b"transfer-encoding" in headers:
        if headers[b"transfer-encoding"].lower() != b"chunked" or b"content-length" in headers:
            raise Malformed(f"response framing: {headers}")
        body = b""
        while True:
            size = _CHUNK_SIZE.match(data, pos)
            if size is None:
                raise Malformed(f"not a chunk size: {data[pos : pos + 40]!r}")
            length = int(size.group(1), 16)
            pos = size.end()
            if length == 0:
                if not data.startswith(b"\r\n", pos):
                    raise Malformed("no CRLF after the last chunk")
                return Answer(status, headers, body), pos + 2
            if len(data) < pos + length + 2 or data[pos + length : pos + length + 2] != b"\r\n":
                raise Malformed("a chunk shorter than its size")
            body += data[pos : pos + length]
            pos += length + 2
    if b"content-length" in headers:
        if not headers[b"content-length"].isdigit():
            raise Malformed(f"Content-Length {headers[b'content-length']!r}")
        length = int(headers[b"content-length"])
        if len(data) < pos + length:
            raise Malformed(f"a body shorter than its Content-Length {length}")
        return Answer(status, headers, data[pos : pos + length]), pos + length
    return Answer(status, headers, data[pos:]), len(data)  # delimited by the close


# -- talking to the server -------------------------------------------------------------


def exchange(address: tuple[str, int], raw: bytes) -> tuple[bytes, bool]:
    """Send *raw*, half-close, read until the server closes: (bytes, whether it reset)."""
    with socket.create_connection(address, timeout=READ_TIMEOUT) as sock:
        # The server may answer and close before it has read it all.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        received = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return b"".join(received), True
            except TimeoutError:
                pytest.fail(f"no answer and no close {READ_TIMEOUT}s after the request {raw!r}")
            if not chunk:
                return b"".join(received), False
            received.append(chunk)


def _names_a_transfer_coding(raw: bytes) -> bool:
    """Whether a header line of *raw* names a Transfer-Encoding other than plain chunked."""
    lines = raw.partition(b"\r\n\r\n")[0].lower().split(b"\n")
    return any(
        b"transfer-encoding" in line and line != b"transfer-encoding: chunked\r" for line in lines
    )


NORMAL = b"GET /static/page HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"


def check_case(server: Server, raw: bytes, requests: int, counts: Counter[str]) -> None:
    """One hostile case: well-formed answers, no 5xx, at most *requests*, then a normal one."""
    url = urlsplit(server.url)
    address = (url.hostname or "127.0.0.1", url.port or 80)
    method = raw.split(b" ", 1)[0]
    data, cut = exchange(address, raw)
    # gunicorn's own error pages go out with a body even for HEAD: not our
    # code, so counted (and reported) rather than failed; microroute run may not.
    answers = parse_responses(data, method, cut, lax_head=server.kind == "gunicorn")
    counts["gunicorn: body after a HEAD response"] += any(a.ignored for a in answers)
    final = [a for a in answers if a.status >= 200]
    counts["cases"] += 1
    counts["reset"] += cut
    counts["no answer"] += not final
    for answer in answers:
        if answer.status == 501 and _names_a_transfer_coding(raw):
            # RFC 9112 §6.1: a transfer coding the server does not implement
            # SHOULD get 501. gunicorn does that; microroute run answers 400.
            counts["501 unknown transfer coding"] += 1
            continue
        counts[f"{answer.status // 100}xx"] += 1
        assert answer.status < 500, (raw, data[:600])
        assert b"Traceback" not in answer.body, (raw, data[:600])
    counts["desync"] += len(final) > requests  # a request smuggled in and answered
    assert len(final) <= requests, (f"{len(final)} answers to {requests} request(s)", raw, data)
    normal, _ = exchange(address, NORMAL)
    assert normal.startswith(b"HTTP/1.1 200 "), ("no longer serving after", raw, normal[:300])


def no_traceback(server: Server) -> None:
    log = server.output()
    assert "Traceback" not in log, log[-3000:]


# -- one response at a time, on a connection kept open ----------------------------------


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, dict[str, str], bytes]:
    """One response off *sock* (Content-Length or chunked), leaving the rest in *buffer*."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {bytes(buffer)!r}"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status[9:10] == b"1" or status[9:12] in (b"204", b"304"):
        return status, headers, b""  # an interim answer (100 Continue) or one with no body
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(buffer) < size:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-body"
            buffer += chunk
        body = bytes(buffer[:size])
        del buffer[:size]
        return status, headers, body
    assert headers.get("transfer-encoding") == "chunked", headers
    body = bytearray()
    while True:
        while b"\r\n" not in buffer:
            buffer += sock.recv(65536)
        size_line, _, rest = bytes(buffer).partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        body += rest[:size]
        buffer[:] = rest[size + 2 :]
        if size == 0:
            return status, headers, bytes(body)


def closed_by_server(sock: socket.socket, wait: float = READ_TIMEOUT) -> bool:
    """Whether the server closes *sock* (EOF or reset) within *wait* seconds, reading nothing."""
    sock.settimeout(wait)
    try:
        extra = sock.recv(65536)
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    assert not extra, f"bytes after the response: {extra[:200]!r}"
    return True
