"""The archive routes through the handler on both databases (docs/export-format.md): export,
import with new ids (201, the id map), ``keep_ids`` refused where the ids exist (409), a
tampered or malformed archive refused in the error shape (400) with nothing written, another
account's session not found, an archive too big for one answer a 413."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kontex.api import session_archive as session_routes
from tests.api.conftest import Client


def a_session(c: Client) -> str:
    session = c.post("/v1/sessions", {"name": "export me", "metadata": {"team": "x"}}).body
    task = c.post(f"/v1/sessions/{session['id']}/tasks", {"name": "plan"}).body
    first = None
    for i in range(3):
        bundle = {
            "messages": [{"role": "user", "content": f"question {i}"}],
            "files": [{"path": "big.txt", "content": "x" * 70_000}],
        }
        made = c.post(f"/v1/tasks/{task['id']}/snapshots", {"label": f"turn {i}", "bundle": bundle})
        assert made.status == 201
        first = first or made.body
    assert first is not None
    assert c.post(f"/v1/snapshots/{first['id']}/rollback").status == 201
    assert c.post(f"/v1/snapshots/{first['id']}/fork", {"name": "branch"}).status == 201
    return str(session["id"])


def test_export_then_import_with_new_ids_and_kept_ones(alice: Client, bob: Client) -> None:
    session_id = a_session(alice)
    exported = alice.get(f"/v1/sessions/{session_id}/export")
    assert exported.status == 200 and exported.body["version"] == 2
    assert [s["source"] for s in exported.body["snapshots"]] == ["api"] * 3 + ["rollback", "api"]
    made = bob.post("/v1/sessions/import", exported.body)
    assert made.status == 201, made.body
    new_id = made.body["ids"][session_id]
    assert made.body["session_id"] == new_id != session_id
    assert made.body["snapshots"] == 5 and made.body["tasks"] == 2
    again = bob.get(f"/v1/sessions/{new_id}/export").body
    text = json.dumps(again)
    for old, new in made.body["ids"].items():
        text = text.replace(new, old)
    assert json.loads(text) == exported.body
    timeline = bob.get(f"/v1/sessions/{new_id}/snapshots/timeline").body["data"]
    assert [e["rollback_of"] is not None for e in timeline] == [False] * 3 + [True, False]
    assert timeline[-1]["forked_from"] == made.body["ids"][exported.body["snapshots"][0]["id"]]

    # kept ids exist here: a conflict, nothing written
    kept = bob.post("/v1/sessions/import?keep_ids=true", exported.body)
    assert kept.status == 409 and kept.body["error"] == "conflict"
    assert session_id in kept.body["details"]["existing"]
    assert len(bob.get("/v1/sessions").body["data"]) == 1


def corrupt(doc: dict[str, Any]) -> None:
    item = doc["items"][0]
    item["body"] = base64.b64encode(base64.b64decode(item["body"]) + b" ").decode()


@pytest.mark.parametrize(
    "change",
    [
        corrupt,
        lambda d: d.update(version=1),
        lambda d: d["snapshots"][0].update(manifest="not base64!"),
        lambda d: d["snapshots"][0].update(source="carrier pigeon"),
        lambda d: d["items"][0].update(extra=1),
    ],
    ids=["hash", "version", "base64", "source", "extra field"],
)
def test_a_bad_archive_is_a_400_with_nothing_written(
    alice: Client, bob: Client, change: Any
) -> None:
    doc = alice.get(f"/v1/sessions/{a_session(alice)}/export").body
    change(doc)
    refused = bob.post("/v1/sessions/import", doc)
    assert refused.status == 400 and refused.body["error"] == "validation_error"
    assert set(refused.body) == {"error", "message", "details"}
    assert bob.get("/v1/sessions").body["data"] == []


def test_another_accounts_session_is_not_found(alice: Client, bob: Client) -> None:
    session_id = a_session(alice)
    assert bob.get(f"/v1/sessions/{session_id}/export").status == 404


def test_an_archive_too_big_for_one_answer_is_a_413(
    alice: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = a_session(alice)
    monkeypatch.setattr(session_routes, "EXPORT_MAX_BYTES", 1000)
    refused = alice.get(f"/v1/sessions/{session_id}/export")
    assert refused.status == 413 and refused.body["error"] == "payload_too_large"
    assert refused.body["details"]["limit"] == 1000
