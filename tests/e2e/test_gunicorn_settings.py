"""gunicorn's settings under ``-k microroute.gunicorn.Worker``, as ``-k gevent`` honours them.

Issue 21: the worker ignored ``--forwarded-allow-ips``/``secure_scheme_headers``,
the ``--limit-request-*`` settings and the access log, logged its errors past
gunicorn's error log, and under ``--certfile`` took a client's TLS
``close_notify`` for a pipelined request. Each runs on both gunicorn kinds
(``microroute run`` has its own options), or on the worker alone.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from servers import DEPLOY, GUNICORNS, RAW, STREAMING, command, free_port, on, subprocess_env
from support import stop_process

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

TIMEOUT = 10
PROXIED = {"X-Forwarded-Proto": "https"}  # what nginx terminating TLS sends
ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(D)s probe=%({x-probe}i)s type=%({content-type}o)s'


#: Every test here: gunicorn's settings; microroute run has options of its own.
gunicorns = on(*GUNICORNS)


@pytest.fixture
def configured(launch: Launcher) -> Server:
    """The deploy app with small request limits and gunicorn's access log on stdout."""
    args = [
        "--limit-request-line", "200",
        "--limit-request-fields", "8",
        "--limit-request-field_size", "120",
        "--access-logfile", "-",
        "--access-logformat", ACCESS_FORMAT,
    ]  # fmt: skip
    return launch.start(DEPLOY, args=args)


@gunicorns
def test_a_trusted_tls_proxy_makes_the_scheme_https(configured: Server) -> None:
    """Behind nginx terminating TLS on 127.0.0.1 (gunicorn trusts it by default): https,
    ``Secure`` cookies and ``https://`` redirects, as with ``-k gevent``."""
    where = requests.get(configured.url + "/where", headers=PROXIED, timeout=TIMEOUT).json()
    assert where["scheme"] == "https" and where["url"].startswith("https://"), where
    cookie = requests.get(configured.url + "/login", headers=PROXIED, timeout=TIMEOUT)
    assert "secure" in cookie.headers["Set-Cookie"].lower(), cookie.headers
    moved = requests.get(
        configured.url + "/go", headers=PROXIED, allow_redirects=False, timeout=TIMEOUT
    )
    assert moved.headers["Location"].startswith("https://"), moved.headers
    plain = requests.get(configured.url + "/where", timeout=TIMEOUT).json()
    assert plain["scheme"] == "http"


@gunicorns
def test_an_untrusted_peer_cannot_claim_https(launch: Launcher) -> None:
    server = launch.start(DEPLOY, args=["--forwarded-allow-ips", "10.9.9.9"])
    where = requests.get(server.url + "/where", headers=PROXIED, timeout=TIMEOUT).json()
    assert where["scheme"] == "http", where


@gunicorns
def test_the_limit_request_settings_bound_the_head(configured: Server) -> None:
    """414 past --limit-request-line, 431 past --limit-request-fields and -field_size.

    README: 'the same under the gunicorn worker | 8190 B / 100 / 4094 B | gunicorn's
    --limit-request-field_size, -fields, -line | 431 / 431 / 414'.
    """
    url = configured.url
    assert requests.get(url + "/quick?" + "x" * 150, timeout=TIMEOUT).status_code == 200
    assert requests.get(url + "/quick?" + "x" * 250, timeout=TIMEOUT).status_code == 414
    few = {f"X-{i}": "v" for i in range(3)}
    many = {f"X-{i}": "v" for i in range(12)}
    assert requests.get(url + "/quick", headers=few, timeout=TIMEOUT).status_code == 200
    assert requests.get(url + "/quick", headers=many, timeout=TIMEOUT).status_code == 431
    long = {"X-Long": "v" * 200}
    assert requests.get(url + "/quick", headers=long, timeout=TIMEOUT).status_code == 431


@gunicorns
def test_the_access_log_is_gunicorn_s(configured: Server) -> None:
    """``--access-logfile -`` with ``--access-logformat``'s atoms, one line a request."""
    marker = f"m{time.monotonic_ns()}"
    headers = {"X-Probe": marker}
    assert requests.get(configured.url + "/quick", headers=headers, timeout=TIMEOUT).ok
    deadline = time.monotonic() + 5
    while marker not in configured.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in configured.output().splitlines() if marker in line]
    assert len(lines) == 1, configured.output()[-2000:]
    pattern = (
        r'127\.0\.0\.1 "GET /quick HTTP/1\.1" 200 11 (\d+) probe='
        + marker
        + " type=application/json"
    )
    assert re.fullmatch(pattern, lines[0]), lines[0]


@on("gunicorn-microroute")  # the worker's own message
def test_server_errors_go_to_gunicorn_s_error_log(launch: Launcher) -> None:
    """A WSGI app that raises before it answers: a 500, and the traceback in gunicorn's
    error log (its ``[ERROR]`` format), not on a logger gunicorn never set up."""
    server = launch.start(RAW, args=["--error-logfile", "-"])
    assert requests.get(server.url + "/boom", timeout=TIMEOUT).status_code == 500
    deadline = time.monotonic() + 5
    while "boom from raw_app" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    output = server.output()
    assert re.search(r"\[ERROR\] The application failed before it started a response", output)
    assert "RuntimeError: boom from raw_app" in output


# -- TLS -------------------------------------------------------------------------------


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def tls_connect(port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return context.wrap_socket(raw)


@on("gunicorn-microroute")  # gunicorn -k gevent: the app's peek sees TLS records (README)
def test_a_tls_close_notify_is_the_client_leaving(launch: Launcher, tmp_path: Path) -> None:
    """Issue 21: under ``--certfile`` the disconnect watch read the client's close_notify
    as a pipelined request, so ``on_disconnect`` never fired and the handler ran on."""
    cert, key = make_certificate(tmp_path)
    port = free_port()
    argv, cwd = command(
        launch.kind, STREAMING, port, args=["--certfile", str(cert), "--keyfile", str(key)]
    )
    log = tmp_path / "tls.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=subprocess_env(), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                tls_connect(port).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        key_ = f"tls{time.monotonic_ns()}"
        sock = tls_connect(port)
        sock.sendall(f"GET /wait/{key_} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.3)  # the handler runs, polling request.disconnected
        sock.settimeout(2)
        with pytest.raises((ssl.SSLError, OSError, TimeoutError)):
            sock.unwrap()  # sends close_notify; the TCP connection stays open
        state = {}
        deadline = time.monotonic() + 5
        while "callback" not in state and time.monotonic() < deadline:
            probe = tls_connect(port)
            probe.sendall(
                f"GET /seen/{key_} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := probe.recv(65536):
                data += chunk
            probe.close()
            state = json.loads(data.partition(b"\r\n\r\n")[2])
            time.sleep(0.1)
        assert "callback" in state and "disconnected" in state, (state, log.read_text())
        assert state["callback"] - state["opened"] < 2.0
        sock.close()
    finally:
        stop_process(process)


@gunicorns
def test_keep_alive_0_closes_after_every_response(launch: Launcher) -> None:
    """gunicorn's ``--keep-alive 0``: one request a connection, each answer saying so."""
    from rawhttp import closed_by_server, read_response

    server = launch.start(DEPLOY, args=["--keep-alive", "0"])
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock, bytearray())
        assert status.startswith(b"HTTP/1.1 200")
        assert headers.get("connection", "").lower() == "close", headers
        assert closed_by_server(sock)
