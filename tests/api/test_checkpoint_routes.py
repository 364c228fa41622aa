"""The checkpoint routes through the handler on both databases: the error shape for bad input,
tenancy, and the limit of their own (docs/design.md, "Checkpoints")."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import Client


def put(c: Client, thread: str, checkpoint_id: str, **extra: Any) -> Any:
    body = {
        "thread_id": thread,
        "checkpoint_id": checkpoint_id,
        "bundle": {"messages": [{"role": "user", "content": f"at {checkpoint_id}"}]},
        **extra,
    }
    return c.post("/v1/checkpoints", body)


def test_put_read_list_and_writes(alice: Client) -> None:
    thread = "thread/with spaces & ünïcode"  # any string: it never travels in a path
    first = put(alice, thread, "01", metadata={"source": "input", "step": -1})
    assert first.status == 201 and first.body["namespace"] == ""
    second = put(
        alice,
        thread,
        "02",
        parent_id="01",
        metadata={"source": "loop", "step": 0},
        base={"snapshot_id": first.body["snapshot_id"]},
    )
    assert second.status == 201
    writes = {
        "thread_id": thread,
        "checkpoint_id": "02",
        "writes": [{"task_id": "t1", "idx": 0, "channel": "c", "value": {"any": ["json"]}}],
    }
    assert alice.post("/v1/checkpoints/writes", writes).status == 204
    got = alice.get(f"/v1/checkpoints/tuple?thread_id={quote(thread)}")
    assert got.status == 200 and got.body["checkpoint_id"] == "02"
    assert [m["content"] for m in got.body["bundle"]["messages"]] == ["at 01", "at 02"]
    assert got.body["writes"][0]["value"] == {"any": ["json"]}
    wanted = quote(json.dumps({"source": "input"}))
    listed = alice.get(f"/v1/checkpoints?thread_id={quote(thread)}&filter={wanted}")
    assert [c["checkpoint_id"] for c in listed.body["data"]] == ["01"]
    # the snapshot is an ordinary one of an ordinary session
    snapshot = alice.get(f"/v1/snapshots/{second.body['snapshot_id']}")
    assert snapshot.status == 200 and snapshot.body["label"] == "checkpoint 02 after 01"


def test_bad_input_is_a_400_and_nothing_is_written(alice: Client) -> None:
    assert put(alice, "", "01").status == 400
    assert put(alice, "t", "x" * 129).status == 400
    assert put(alice, "t", "01", unknown=1).status == 400
    assert alice.get("/v1/checkpoints?filter=%5B1%5D").status == 400  # not an object
    assert alice.get("/v1/checkpoints?cursor=nonsense").status == 400
    bad = alice.post("/v1/checkpoints/prune", {"thread_ids": ["t"], "strategy": "all"})
    assert bad.status == 400 and bad.body["error"] == "validation_error"
    missing = alice.get("/v1/checkpoints/tuple?thread_id=t")
    assert missing.status == 404 and missing.body["error"] == "not_found"
    writes = {"thread_id": "t", "checkpoint_id": "01", "writes": [{"task_id": "x"}]}
    assert alice.post("/v1/checkpoints/writes", writes).status == 400
    assert alice.get("/v1/checkpoints").body["data"] == []


def test_another_accounts_thread_reads_as_missing(alice: Client, bob: Client) -> None:
    assert put(alice, "private", "01").status == 201
    assert bob.get("/v1/checkpoints/tuple?thread_id=private").status == 404
    assert bob.get("/v1/checkpoints?thread_id=private").body["data"] == []
    assert bob.delete("/v1/checkpoints?thread_id=private").status == 204  # nothing of bob's
    copied = bob.post(
        "/v1/checkpoints/copy", {"source_thread_id": "private", "target_thread_id": "mine"}
    )
    assert copied.status == 201 and copied.body == {"copied": 0}
    assert alice.get("/v1/checkpoints/tuple?thread_id=private").status == 200


@pytest.mark.parametrize(
    "env_limits",
    [{"KONTEX_RATE_LIMIT_PER_HOUR": "2", "KONTEX_CHECKPOINT_REQUESTS_PER_HOUR": "4"}],
)
def test_checkpoint_requests_have_a_limit_of_their_own(
    alice: Client, env_limits: dict[str, str]
) -> None:
    # more checkpoint requests than the general limit allows, and snapshot writes too
    for i in range(4):
        assert put(alice, "agent", f"{i:02}").status == 201
    limited = put(alice, "agent", "99")
    assert limited.status == 429 and limited.body["error"] == "rate_limit_exceeded"
    assert limited.body["details"]["limit"] == 4
    # the general budget is untouched by them
    assert alice.get("/v1/sessions").status == 200
    assert alice.get("/v1/sessions").status == 200
    assert alice.get("/v1/sessions").status == 429


def test_a_page_may_carry_each_distinct_message_once(alice: Client) -> None:
    snap = None
    for i in range(4):
        body: dict[str, Any] = {"base": {"snapshot_id": snap}} if snap else {}
        snap = put(alice, "shared", f"{i:02}", **body).body["snapshot_id"]
    full = alice.get("/v1/checkpoints?thread_id=shared").body
    shared = alice.get("/v1/checkpoints?thread_id=shared&shared_messages=true").body
    assert full["messages"] is None and all(c["message_refs"] is None for c in full["data"])
    assert [m["content"] for m in shared["messages"]] == [f"at {i:02}" for i in range(4)]
    for plain, compact in zip(full["data"], shared["data"], strict=True):
        assert compact["bundle"]["messages"] == []
        expanded = [shared["messages"][i] for i in compact["message_refs"]]
        assert expanded == plain["bundle"]["messages"]
