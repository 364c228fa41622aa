"""Two accounts against a real `kontex dev` over HTTP: nothing of A is visible to B."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("tenancy") / "data"
    create_key(data, "bootstrap")  # migrates and makes the secret before the server starts
    running = start_dev(data)
    yield running
    stop_dev(running)


def test_every_resource_of_a_is_404_to_b(stack: DevStack) -> None:
    a = Http(stack.base, create_key(stack.data_dir, "a"))
    b = Http(stack.base, create_key(stack.data_dir, "b"))

    status, session = a("POST", "/v1/sessions", {"name": "secret project"})
    assert status == 201
    sid = session["id"]
    _, task = a("POST", f"/v1/sessions/{sid}/tasks", {"name": "plan"})
    tid = task["id"]
    bundle = {"messages": [{"role": "user", "content": "the launch codes"}]}
    _, s1 = a("POST", f"/v1/tasks/{tid}/snapshots", {"label": "one", "bundle": bundle})
    _, s2 = a("POST", f"/v1/tasks/{tid}/snapshots", {"label": "two", "bundle": bundle})
    _, key = a("POST", "/v1/keys", {"label": "a-ci"})
    thread = "thrd_" + "z" * 30
    assert a("PUT", f"/v1/threads/{thread}/state", {"user_data": "a's"})[0] == 200

    reads = [
        f"/v1/sessions/{sid}",
        f"/v1/sessions/{sid}/tasks",
        f"/v1/sessions/{sid}/snapshots",
        f"/v1/sessions/{sid}/snapshots/timeline",
        f"/v1/sessions/{sid}/graph",
        f"/v1/sessions/{sid}/stats",
        f"/v1/sessions/{sid}/diff?from={s1['id']}&to={s2['id']}",
        f"/v1/tasks/{tid}",
        f"/v1/snapshots/{s1['id']}",
        f"/v1/snapshots/{s1['id']}/bundle",
        f"/v1/snapshots/{s1['id']}/revisions",
        f"/v1/messages?session_id={sid}",
        f"/v1/tool-calls?session_id={sid}",
        f"/v1/threads/{thread}/state",
    ]
    writes = [
        ("PATCH", f"/v1/sessions/{sid}", {"name": "mine now"}),
        ("POST", f"/v1/sessions/{sid}/tasks", {"name": "intruder"}),
        ("POST", f"/v1/sessions/{sid}/link-trace", {"trace_id": "ab" * 16}),
        ("PATCH", f"/v1/tasks/{tid}", {"status": "failed"}),
        ("POST", f"/v1/tasks/{tid}/snapshots", {"label": "x", "bundle": bundle}),
        ("POST", f"/v1/snapshots/{s1['id']}/rollback", None),
        ("POST", f"/v1/snapshots/{s1['id']}/enrich", {"reasoning": "b was here"}),
        ("DELETE", f"/v1/keys/{key['id']}", None),
        ("DELETE", f"/v1/threads/{thread}/state", None),
        ("DELETE", f"/v1/sessions/{sid}?purge=true", None),
    ]
    for path in reads:
        status, body = b("GET", path)
        assert status == 404 and body["error"] == "not_found", (path, status, body)
    for method, path, body in writes:
        status, answer = b(method, path, body)
        assert status == 404 and answer["error"] == "not_found", (method, path, status, answer)

    # B's own lists are empty, and A's things are all unchanged
    assert b("GET", "/v1/sessions")[1]["data"] == []
    assert b("GET", "/v1/usage")[1]["total_snapshots"] == 0
    assert b("GET", "/v1/keys")[1]["data"][0]["label"] == "b"
    assert a("GET", f"/v1/sessions/{sid}")[1]["name"] == "secret project"
    assert a("GET", f"/v1/tasks/{tid}")[1]["status"] == "pending"
    assert len(a("GET", f"/v1/sessions/{sid}/snapshots")[1]["data"]) == 2
    assert a("GET", f"/v1/snapshots/{s1['id']}")[1]["enriched"] is False
    assert a("GET", f"/v1/threads/{thread}/state")[1]["user_data"] == "a's"
    assert a("GET", f"/v1/sessions/{sid}/tasks")[1]["data"][0]["children"] == []
    assert Http(stack.base, key["key"])("GET", "/v1/sessions")[0] == 200


def test_concurrent_requests_are_served(stack: DevStack) -> None:
    a = Http(stack.base, create_key(stack.data_dir, "busy"))

    def one(i: int) -> int:
        status, session = a("POST", "/v1/sessions", {"name": f"parallel {i}"})
        assert status == 201, session
        return a("GET", f"/v1/sessions/{session['id']}")[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(one, range(24))) == [200] * 24
    assert len(a("GET", "/v1/sessions?limit=100")[1]["data"]) == 24
