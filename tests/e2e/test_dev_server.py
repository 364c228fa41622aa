"""`kontex dev` as a user runs it: a real process on a free port, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import DevStack, start_dev, stop_dev

pytestmark = pytest.mark.e2e


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevStack]:
    stack = start_dev(tmp_path / "data")
    yield stack
    if stack.process.poll() is None:
        stop_dev(stack)


def test_health_answers_and_the_stack_stops_cleanly_on_ctrl_c(dev: DevStack) -> None:
    status, body = dev.get("/health")
    assert status == 200 and body["status"] == "ok" and body["version"]
    output = stop_dev(dev)
    assert dev.process.returncode == 0
    assert f"serving {dev.base}" in output
    assert "applied migrations 0001_foundation" in output
    assert "stopping" in output
    assert (dev.data_dir / "kontex.db").exists()


def test_a_second_kontex_dev_on_its_port_exits_2_at_once_naming_it(
    dev: DevStack, tmp_path: Path
) -> None:
    """Issue 24: a second `kontex dev` (or `make dev`) on a busy port: one line saying a Kontex
    server answers there and how to start another (`--port`, `make dev PORT=`), status 2,
    within 2 s, before any set-up; the first one goes on serving."""
    import subprocess
    import sys
    import time

    port = int(dev.base.rsplit(":", 1)[1])
    started = time.monotonic()
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "kontex.cli",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "b"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - started
    assert second.returncode == 2 and seconds < 2.0, (second.stderr, seconds)
    assert second.stdout == "" and len(second.stderr.splitlines()) == 1
    assert second.stderr.startswith(
        f"kontex: port {port} on 127.0.0.1 is already in use: a Kontex server (kontex "
    )
    assert f"answers {dev.base}/health" in second.stderr and "make dev PORT=" in second.stderr
    assert not (tmp_path / "b").exists()
    assert dev.get("/health")[0] == 200


def test_oversized_bodies_and_unknown_paths_answer_in_the_error_shape(dev: DevStack) -> None:
    import http.client
    import json
    from urllib.parse import urlsplit

    url = urlsplit(dev.base)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    conn.putrequest("POST", "/v1/sessions")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(11 * 1024 * 1024))
    conn.endheaders()  # the body is never sent: the answer comes from the headers alone
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read()) == {
        "error": "payload_too_large",
        "message": "the request body is over 10 MB",
        "details": None,
    }
    conn.close()
    status, body = dev.get("/nowhere/at/all.txt")  # extensionless GETs are the dashboard
    assert status == 404 and body["error"] == "not_found"


def raw_exchange(dev: DevStack, request: bytes, timeout: float = 10) -> tuple[int, bytes, float]:
    """Send bytes as they are on a fresh socket; the status, the body and the seconds taken."""
    import socket
    import time
    from urllib.parse import urlsplit

    url = urlsplit(dev.base)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(rest) >= length[0]:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body, time.monotonic() - started


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[DevStack, str]]:
    from tests.e2e.stack import create_key

    data = tmp_path / "data"
    key = create_key(data, "framing")
    stack = start_dev(data, {"KONTEX_DEV_BODY_TIMEOUT_SECONDS": "1"})
    yield stack, key
    if stack.process.poll() is None:
        stop_dev(stack)


def test_http_framing_over_a_real_socket(keyed: tuple[DevStack, str]) -> None:
    import json

    dev, key = keyed
    host = dev.base.removeprefix("http://").encode()
    # a chunked body is read whole
    body = json.dumps({"name": "chunked session"}).encode()
    chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:5], body[5:]))
    status, reply, _ = raw_exchange(
        dev,
        b"POST /v1/sessions HTTP/1.1\r\nHost: "
        + host
        + b"\r\nAuthorization: Bearer "
        + key.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n",
    )
    assert status == 201 and json.loads(reply)["name"] == "chunked session"

    # a body shorter than its Content-Length: a 408 after the body timeout, not a hang
    status, reply, took = raw_exchange(
        dev,
        b"POST /v1/sessions HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json"
        b'\r\nContent-Length: 100\r\n\r\n{"name":',
    )
    assert status == 408 and json.loads(reply)["error"] == "request_timeout"
    assert took < 5

    # a malformed Content-Length is a 400
    status, _, _ = raw_exchange(
        dev,
        b"POST /v1/sessions HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: ten\r\n\r\n",
    )
    assert status == 400

    # TRACE is a 405 in the error shape
    status, reply, _ = raw_exchange(
        dev, b"TRACE /v1/sessions HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    )
    assert status == 405
    assert json.loads(reply) == {
        "error": "method_not_allowed",
        "message": "TRACE is not allowed",
        "details": None,
    }

    output = stop_dev(dev)
    assert "proxy upstream https://api.anthropic.com" in output
    assert "POST /v1/sessions 201" in output and " ms" in output
    assert "TRACE /v1/sessions 405" in output
