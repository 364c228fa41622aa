"""Search on `kontex dev`, offline: a snapshot made over OTLP (and one over REST) becomes
findable through /v1/search once the embed worker has embedded it; another account finds
nothing of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev
from tests.e2e.test_otlp_exporter import export
from tests.otlp import spans as fixtures

pytestmark = pytest.mark.e2e
OFFLINE = {"VOYAGE_API_KEY": "", "QDRANT_URL": "", "KONTEX_VOYAGE_API_KEY_SECRET_ARN": ""}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("search") / "data"
    create_key(data, "bootstrap", OFFLINE)
    running = start_dev(data, OFFLINE)
    yield running
    out = stop_dev(running)
    assert "search embeddings by minilm-l6-int8" in out, out


def poll(check: Any, timeout: float = 60) -> Any:
    """Until ``check()`` is truthy (the embed worker has run): the model loads on first use."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for snapshot.embedded")


def test_an_otlp_snapshot_becomes_findable(stack: DevStack) -> None:
    key = create_key(stack.data_dir, "otel", OFFLINE)
    api = Http(stack.base, key)
    export(stack, key, fixtures.openllmetry_agent)

    def found() -> list[dict[str, Any]]:
        status, body = api("GET", "/v1/search?q=get_cart&limit=5")
        assert status == 200, body
        return body["results"]  # type: ignore[no-any-return]

    results = poll(found)
    sessions = api("GET", "/v1/sessions")[1]["data"]
    snaps = api("GET", f"/v1/sessions/{sessions[0]['id']}/snapshots")[1]["data"]
    assert {r["snapshot_id"] for r in results} <= {s["id"] for s in snaps}
    assert results[0]["session_id"] == sessions[0]["id"]
    assert "get_cart" in results[0]["snippet"]["text"]

    stranger = Http(stack.base, create_key(stack.data_dir, "stranger", OFFLINE))
    assert stranger("GET", "/v1/search?q=get_cart")[1] == {"results": []}


def test_a_rest_snapshot_becomes_findable_by_an_identifier(stack: DevStack) -> None:
    api = Http(stack.base, create_key(stack.data_dir, "rest", OFFLINE))
    session = api("POST", "/v1/sessions", {"name": "db work"})[1]
    task = api("POST", f"/v1/sessions/{session['id']}/tasks", {"name": "t"})[1]
    bundle = {"messages": [{"role": "user", "content": "insert failed: E11000 duplicate key"}]}
    snap = api("POST", f"/v1/tasks/{task['id']}/snapshots", {"label": "seed", "bundle": bundle})[1]
    results = poll(lambda: api("GET", "/v1/search?q=E11000")[1]["results"])
    assert [r["snapshot_id"] for r in results] == [snap["id"]]
    assert results[0]["snippet"] == {
        "text": "insert failed: E11000 duplicate key",
        "role": "user",
        "position": 0,
        "source": "message",
    }


def test_purging_a_session_removes_its_points(stack: DevStack) -> None:
    """DELETE ?purge=true announces session.purged in its transaction; the embed worker,
    reached through the event fan-out, deletes the session's points."""
    api = Http(stack.base, create_key(stack.data_dir, "purge", OFFLINE))
    ids = {}
    for name in ("to purge", "to keep"):
        session = api("POST", "/v1/sessions", {"name": name})[1]
        task = api("POST", f"/v1/sessions/{session['id']}/tasks", {"name": "t"})[1]
        bundle = {"messages": [{"role": "user", "content": "rotate_signing_keys nightly"}]}
        api("POST", f"/v1/tasks/{task['id']}/snapshots", {"label": name, "bundle": bundle})
        ids[name] = session["id"]

    def sessions_found() -> set[str]:
        status, body = api("GET", "/v1/search?q=rotate_signing_keys")
        assert status == 200, body
        return {r["session_id"] for r in body["results"]}

    assert poll(lambda: sessions_found() == set(ids.values()))
    status, _ = api("DELETE", f"/v1/sessions/{ids['to purge']}?purge=true")
    assert status == 204
    assert poll(lambda: sessions_found() == {ids["to keep"]})
