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
    status, body = dev.get("/nowhere/at/all")
    assert status == 404 and body["error"] == "not_found"
