"""Every REST route through the client, against a real `kontex dev`."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import kontex_client
from kontex_client import AsyncKontex, Kontex
from tests.client.conftest import new_account
from tests.e2e.stack import DevStack
from tests.otlp.spans import openllmetry_agent, protobuf, record
from tests.proxy.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.e2e


def conversation(n: int) -> list[dict[str, Any]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(n)
    ]


def test_keys_create_list_revoke(client: Kontex, stack: DevStack) -> None:
    made = client.keys.create("ci")
    assert made.key.startswith("kontex_") and made.label == "ci"
    assert made.id in {k.id for k in client.keys.list()}
    with Kontex(stack.base, made.key) as second:
        assert second.sessions.list().data is not None  # the new key works
        client.keys.revoke(made.id)
        with pytest.raises(kontex_client.AuthenticationError) as refused:
            second.sessions.list()
    assert refused.value.code == "unauthorized" and refused.value.status == 401
    revoked = next(k for k in client.keys.list() if k.id == made.id)
    assert revoked.revoked_at is not None


def test_sessions_crud_and_pagination(stack: DevStack) -> None:
    with Kontex(stack.base, new_account(stack)) as client:
        made = [client.sessions.create(f"run {i}", metadata={"i": i}) for i in range(5)]
        got = client.sessions.get(made[0].id)
        assert got.name == "run 0" and got.metadata == {"i": 0} and got.status == "active"
        page = client.sessions.list(limit=2)
        assert len(page.data) == 2 and page.next_cursor
        # newest first, as documented; order="asc" for oldest first (issue 24)
        assert [s.id for s in client.sessions.iter(page_size=2)] == [s.id for s in made[::-1]]
        assert [s.id for s in page.data] == [made[4].id, made[3].id]
        oldest = client.sessions.list(limit=2, order="asc")
        assert [s.id for s in oldest.data] == [made[0].id, made[1].id]
        assert [s.id for s in client.sessions.iter(page_size=2, order="asc")] == [
            s.id for s in made
        ]
        updated = client.sessions.update(made[1].id, name="renamed", status="paused")
        assert (updated.name, updated.status) == ("renamed", "paused")
        assert [s.id for s in client.sessions.iter(status="paused")] == [made[1].id]
        assert client.sessions.complete(made[2].id).status == "completed"
        client.sessions.purge(made[3].id)
        with pytest.raises(kontex_client.NotFoundError) as missing:
            client.sessions.get(made[3].id)
        assert missing.value.code == "not_found"


def test_tasks_snapshots_and_views(client: Kontex) -> None:
    session = client.sessions.create("views")
    root = client.tasks.create(session.id, "plan")
    child = client.tasks.create(session.id, "step", parent_task_id=root.id)
    assert client.tasks.get(child.id).parent_task_id == root.id
    tree = client.tasks.tree(session.id)
    assert [n.id for n in tree] == [root.id] and [c.id for c in tree[0].children] == [child.id]
    assert client.tasks.update(root.id, status="active", name="planning").status == "active"

    first = client.snapshots.create(
        root.id,
        "first",
        messages=conversation(2),
        files=[{"path": "a.py", "content": "x = 1"}],
        tool_calls=[{"tool": "read", "input": {"path": "a.py"}, "output": "x = 1"}],
        model="claude-sonnet-4-5",
    )
    second = client.snapshots.create(root.id, "second", messages=conversation(3))
    assert second.parent_snapshot_id == first.id

    full = client.snapshots.get(first.id)
    assert full.bundle.files[0]["path"] == "a.py" and full.model == "claude-sonnet-4-5"
    bundle = client.snapshots.bundle(second.id)
    assert bundle.messages == conversation(3)
    # a bundle read back is a valid body for a new snapshot
    again = client.snapshots.create(child.id, "copy", bundle)
    assert client.snapshots.bundle(again.id).messages == conversation(3)

    diff = client.snapshots.diff(first.id, second.id)
    assert diff.from_ == first.id and diff.messages.added == [conversation(3)[2]]
    assert diff.files.removed == ["a.py"]
    assert client.snapshots.diff(first.id, second.id, session_id=session.id).to == second.id

    listed = client.snapshots.list(session.id, limit=2)
    assert [s.id for s in listed.data] == [first.id, second.id] and listed.next_cursor
    assert [s.id for s in client.snapshots.iter(session.id, page_size=1)] == [
        first.id,
        second.id,
        again.id,
    ]
    timeline = client.sessions.timeline(session.id)
    assert [e.task_name for e in timeline] == ["planning", "planning", "step"]
    graph = client.sessions.graph(session.id)
    assert {n["id"] for n in graph.nodes} >= {root.id, child.id}
    stats = client.sessions.stats(session.id)
    assert stats.total_snapshots == 3


def test_rollback_fork_enrich_revisions(client: Kontex) -> None:
    session = client.sessions.create("lineage")
    task = client.tasks.create(session.id, "t")
    first = client.snapshots.create(task.id, "one", messages=conversation(1))
    client.snapshots.create(task.id, "two", messages=conversation(2))
    back = client.snapshots.rollback(first.id)
    assert back.rollback_of == first.id and back.source == "rollback"
    assert client.snapshots.bundle(back.id).messages == conversation(1)

    other = client.sessions.create("elsewhere")
    fork = client.snapshots.fork(first.id, name="branch", session_id=other.id)
    assert fork.task.name == "branch" and fork.snapshot.forked_from == first.id
    assert client.snapshots.bundle(fork.snapshot.id).messages == conversation(1)

    enriched = client.snapshots.enrich(back.id, reasoning="because", model="m")
    assert enriched.enriched
    assert [r.seq for r in client.snapshots.revisions(back.id)] == [0, 1]
    assert client.snapshots.bundle(back.id, revision=0).reasoning is None
    assert client.snapshots.bundle(back.id).reasoning == "because"


def test_threads_state(client: Kontex) -> None:
    thread = "thrd_" + "a1" * 16
    saved = client.threads.save(thread, '{"cursor": 3}')
    assert saved.version >= 1
    assert client.threads.get(thread).user_data == '{"cursor": 3}'
    client.threads.delete(thread)
    with pytest.raises(kontex_client.NotFoundError):
        client.threads.get(thread)


def test_queries_and_usage(stack: DevStack) -> None:
    with Kontex(stack.base, new_account(stack)) as client:
        session = client.sessions.create("q")
        task = client.tasks.create(session.id, "t")
        client.snapshots.create(
            task.id,
            "s",
            messages=conversation(4),
            tool_calls=[
                {"tool": "grep", "input": {"q": "x"}, "output": "none", "status": "error"},
                {"tool": "read", "input": {"p": "y"}, "output": "ok"},
            ],
        )
        page = client.queries.messages(session_id=session.id, role="user", limit=1)
        assert len(page.data) == 1 and page.next_cursor
        users = list(client.queries.iter_messages(session_id=session.id, role="user", limit=1))
        assert len(users) == 2
        since = datetime.now(UTC) - timedelta(hours=1)
        errors = client.queries.tool_calls(
            session_id=session.id, is_error=True, created_after=since
        )
        assert [c.model_dump()["tool"] for c in errors.data] == ["grep"]
        assert len(list(client.queries.iter_tool_calls(session_id=session.id))) == 2
        usage = client.usage.get()
        assert usage.model_dump()["total_snapshots"] == 1


def test_link_trace_and_ingest(client: Kontex) -> None:
    # Given spans of a trace that names no session, sent through the client's ingest method
    spans = record(lambda tracer: openllmetry_agent(tracer, session=None))
    trace_id = format(spans[0].context.trace_id, "032x")
    client.ingest.traces(protobuf(spans))  # 200 with an empty protobuf answer
    session = client.sessions.create("linked")
    # When the trace is linked (its spans may still be on the queue: poll with a deadline)
    deadline = time.monotonic() + 30
    made = 0
    while time.monotonic() < deadline:
        linked = client.sessions.link_trace(session.id, trace_id)
        assert linked.trace_ids == [trace_id]
        made += linked.snapshots_created
        if client.sessions.timeline(session.id):
            break
        time.sleep(0.2)
    # Then its LLM span became a snapshot of the session
    assert client.sessions.timeline(session.id)
    assert client.ingest.endpoint().endswith("/ingest/v1/traces")


def test_ingest_json_with_a_session_header(client: Kontex) -> None:
    session = client.sessions.create("json run")
    body = {"resourceSpans": []}
    assert client.ingest.traces(body, session_id=session.id) == {}
    with pytest.raises(kontex_client.NotFoundError):  # the header names a session id
        client.ingest.traces(body, session_id="sess_absent")


def test_proxy_messages(client: Kontex, upstream: FakeAnthropic) -> None:
    session = client.sessions.create("proxied")
    reply = client.proxy.messages(
        upstream_api_key="sk-ant-test",
        session_id=session.id,
        model="claude-fake",
        max_tokens=50,
        messages=[{"role": "user", "content": "hello"}],
    )
    assert reply["type"] == "message"
    headers = upstream.requests[-1][0]
    assert headers["x-api-key"] == "sk-ant-test"
    assert "kontex_" not in headers.get("authorization", "")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not client.sessions.timeline(session.id):
        time.sleep(0.2)  # capture is queued: poll
    assert client.sessions.timeline(session.id)[0].source == "proxy"
    options = client.proxy.anthropic_options(session_id="named")
    assert options["base_url"].endswith("/proxy")
    assert options["default_headers"]["X-Kontex-Session-Id"] == "named"


def test_errors_carry_the_code(client: Kontex, stack: DevStack) -> None:
    with pytest.raises(kontex_client.BadRequestError) as bad:
        client.sessions.create("")
    assert bad.value.code == "validation_error" and bad.value.status == 400
    # the message names the field and the reason (issue 24); details keep the server's list
    assert bad.value.message == (
        "the request is not valid: name: String should have at least 1 character"
    )
    assert bad.value.details[0]["loc"] == ["body", "name"]
    task = client.tasks.create(client.sessions.create("roles").id, "plan")
    with pytest.raises(kontex_client.BadRequestError) as role:
        client.snapshots.create(task.id, "x", messages=[{"role": "robot", "content": "hi"}])
    assert "bundle.messages.0.role: Input should be 'system', 'user', 'assistant' or 'tool'" in (
        str(role.value)
    )
    with pytest.raises(kontex_client.NotFoundError):
        client.tasks.get("task_nope")
    with (
        Kontex(stack.base, "kontex_wrong") as wrong,
        pytest.raises(kontex_client.AuthenticationError),
    ):
        wrong.sessions.list()
    with (
        Kontex("http://127.0.0.1:9", "k", max_retries=1) as nowhere,
        pytest.raises(kontex_client.ConnectionError) as down,
    ):
        nowhere.sessions.list()
    assert down.value.code == "connection_error"


def test_async_client_covers_the_same_routes(stack: DevStack, key: str) -> None:
    async def run() -> None:
        async with AsyncKontex(stack.base, key) as client:
            session = await client.sessions.create("async")
            task = await client.tasks.create(session.id, "t")
            snap = await client.snapshots.create(task.id, "s", messages=conversation(2))
            assert (await client.snapshots.bundle(snap.id)).messages == conversation(2)
            ids = [s.id async for s in client.snapshots.iter(session.id)]
            assert ids == [snap.id]
            assert session.id in [s.id async for s in client.sessions.iter()]
            with pytest.raises(kontex_client.NotFoundError):
                await client.snapshots.get("snap_missing")
            assert (await client.health())["status"] == "ok"
            assert "paths" in await client.openapi()

    asyncio.run(run())


def test_search_finds_a_snapshot_made_through_the_client(client: Kontex) -> None:
    """``client.search`` per contract 5: a snapshot becomes findable once the embed worker
    has indexed it (the offline model of kontex dev)."""
    session = client.sessions.create("search through the client")
    task = client.tasks.create(session.id, "t")
    made = client.snapshots.create(
        task.id,
        "parse_jwt_claims rejects expired tokens",
        messages=[{"role": "user", "content": "why does parse_jwt_claims fail on old tokens?"}],
    )
    deadline = time.monotonic() + 90
    while True:
        found = client.search("parse_jwt_claims", session_id=session.id, limit=3)
        if found.results or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [hit.snapshot_id for hit in found.results][:1] == [made.id]
    assert found.results[0].session_id == session.id


def test_a_delta_write_and_the_latest_snapshot_of_a_task(client: Kontex) -> None:
    session = client.sessions.create("delta")
    task = client.tasks.create(session.id, "t")
    first = client.snapshots.create(task.id, "one", messages=conversation(3))
    # Only what is new goes over the wire: one message appended to the head
    base = kontex_client.SnapshotBase()
    second = client.snapshots.create(
        task.id, "two", messages=[{"role": "user", "content": "turn 3"}], base=base
    )
    latest = client.snapshots.latest(task.id)
    assert latest.id == second.id and second.parent_snapshot_id == first.id
    assert [m["content"] for m in latest.bundle.messages] == [f"turn {i}" for i in range(4)]
    # A pop that names the head it read, refused once the head has moved
    popped = client.snapshots.create(
        task.id,
        "pop",
        base=kontex_client.SnapshotBase(second.id, messages=(0, -1), if_head=True),
    )
    assert len(client.snapshots.latest(task.id).bundle.messages) == 3
    with pytest.raises(kontex_client.ConflictError) as refused:
        client.snapshots.create(
            task.id, "late", base=kontex_client.SnapshotBase(second.id, if_head=True)
        )
    assert refused.value.status == 409 and refused.value.details == {"head": popped.id}
    empty = client.tasks.create(session.id, "empty")
    with pytest.raises(kontex_client.NotFoundError):
        client.snapshots.latest(empty.id)
