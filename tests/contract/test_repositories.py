"""The unit of work and the repositories the other contract files do not reach, on both
databases: announced events, threads, traces and aliases, spans, rate-limit windows, tasks made
once, the query read model, the outbox's reads and the checkpoint index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kontex.domain.models import Snapshot, Usage
from kontex.ports import Event, ItemRow, ObjectFilter
from tests.conftest import new_store
from tests.contract.test_store_contract import T0, account, session, snapshot, task


def _event(event_id: str, session_id: str = "sess_1") -> Event:
    return Event(event_id, "session.updated", "acct_a", session_id, {"id": session_id}, T0)


def _unpublished(store: Any) -> list[str]:
    with store.unit(write=False) as uow:
        return [e.id for e in uow.outbox.unpublished(T0 + timedelta(days=1), 100)]


def test_announced_events_are_published_after_the_commit_only(store: Any) -> None:
    published: list[list[str]] = []
    seen_in_outbox: list[list[str]] = []

    def publish(events: Sequence[Event]) -> None:
        # Then the publisher runs once the rows are committed: it can read them back
        seen_in_outbox.append(_unpublished(store))
        published.append([e.id for e in events])

    store.publish_with(publish)
    account(store)
    # When a unit writes a session and announces two events
    with store.unit() as uow:
        uow.sessions.add(session_row := _session())
        uow.announce(_event("evt_1"))
        uow.announce(_event("evt_2"))
        assert published == []  # nothing goes out before the commit
    assert published == [["evt_1", "evt_2"]]
    assert seen_in_outbox == [["evt_1", "evt_2"]]
    with store.unit(write=False) as uow:
        assert uow.sessions.get("acct_a", session_row.id) == session_row


def test_a_unit_that_raises_announces_nothing_and_writes_nothing(store: Any) -> None:
    published: list[Event] = []
    store.publish_with(published.extend)
    account(store)
    with pytest.raises(RuntimeError), store.unit() as uow:
        uow.sessions.add(_session())
        uow.announce(_event("evt_1"))
        raise RuntimeError("the use case failed")
    assert published == []
    assert _unpublished(store) == []
    with store.unit(write=False) as uow:
        assert uow.sessions.get("acct_a", "sess_1") is None


def _session() -> Any:
    from kontex.domain.models import Session

    return Session(id="sess_1", account_id="acct_a", name="run", created_at=T0, updated_at=T0)


def test_outbox_reads_and_deletes_by_id(store: Any) -> None:
    account(store)
    with store.unit() as uow:
        for n in range(3):
            uow.announce(_event(f"evt_{n}"))
    with store.unit(write=False) as uow:
        assert [e.id for e in uow.outbox.get(["evt_2", "evt_0", "evt_x"])] == ["evt_0", "evt_2"]
        assert uow.outbox.get(["evt_1"])[0].data == {"id": "sess_1"}
    with store.unit() as uow:
        uow.outbox.delete(["evt_0", "evt_2"])
    assert _unpublished(store) == ["evt_1"]


def test_thread_state_versions_and_scope(store: Any) -> None:
    account(store)
    with store.unit() as uow:
        first = uow.threads.put("acct_a", "thrd_1", "one", T0)
        second = uow.threads.put("acct_a", "thrd_1", "two", T0 + timedelta(seconds=1))
    assert (first.version, second.version, second.user_data) == (1, 2, "two")
    with store.unit(write=False) as uow:
        assert uow.threads.get("acct_a", "thrd_1") == second
        assert uow.threads.get("acct_b", "thrd_1") is None
    with store.unit() as uow:
        assert uow.threads.delete("acct_b", "thrd_1") is False
        assert uow.threads.delete("acct_a", "thrd_1") is True
        assert uow.threads.get("acct_a", "thrd_1") is None


def test_traces_link_once_and_aliases_name_sessions(store: Any) -> None:
    account(store)
    s1, s2 = session(store, "acct_a", "sess_1"), session(store, "acct_a", "sess_2")
    trace = "ab" * 16
    with store.unit() as uow:
        assert uow.traces.link("acct_a", s1.id, trace, T0) == s1.id
        assert uow.traces.link("acct_a", s2.id, trace, T0) == s1.id  # linked already
        assert uow.traces.add_alias("acct_a", "agent-7", s2.id) == s2.id
        assert uow.traces.add_alias("acct_a", "agent-7", s1.id) == s2.id  # taken
    with store.unit(write=False) as uow:
        assert uow.traces.of_session("acct_a", s1.id) == [trace]
        assert uow.traces.of_session("acct_a", s2.id) == []
        assert uow.traces.sessions_of([("acct_a", trace), ("acct_b", trace)]) == {
            ("acct_a", trace): s1.id
        }
        assert uow.traces.alias("acct_a", "agent-7") == s2.id
        assert uow.traces.alias("acct_b", "agent-7") is None
        named = uow.traces.sessions_named(
            [("acct_a", "agent-7"), ("acct_a", s1.id), ("acct_a", "nobody"), ("acct_b", s1.id)]
        )
    assert named == {("acct_a", "agent-7"): s2.id, ("acct_a", s1.id): s1.id}


def _span(trace_id: str, span_id: str, start: int) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "kind": "llm",
        "name": f"call {span_id}",
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + 10,
        "attributes": {"gen_ai.system": "anthropic"},
    }


def test_spans_are_kept_once_read_by_trace_and_marked_done(store: Any) -> None:
    account(store)
    account(store, "acct_b")
    t1, t2 = "01" * 16, "02" * 16
    spans = [("acct_a", _span(t1, "s2", 20)), ("acct_a", _span(t1, "s1", 10))]
    with store.unit() as uow:
        uow.spans.add(spans, T0)
        uow.spans.add(spans[:1], T0)  # a redelivered span is stored once
        uow.spans.add([("acct_b", _span(t2, "s9", 5))], T0)
    with store.unit(write=False) as uow:
        found = uow.spans.of_traces([("acct_a", t1), ("acct_a", t2)])
    assert [s["span_id"] for s in found[("acct_a", t1)]] == ["s1", "s2"]  # in start order
    assert found[("acct_a", t2)] == []  # another account's trace
    assert found[("acct_a", t1)][0]["attributes"] == {"gen_ai.system": "anthropic"}
    assert not any(s["done"] for s in found[("acct_a", t1)])
    with store.unit() as uow:
        uow.spans.mark_done([("acct_a", t1, "s1")])
        done = {
            s["span_id"]: s["done"] for s in uow.spans.of_traces([("acct_a", t1)])[("acct_a", t1)]
        }
    assert done == {"s1": True, "s2": False}


def test_rate_limit_windows_count_and_forget_old_windows(store: Any) -> None:
    with store.unit() as uow:
        assert [uow.keys.hit("key_1", "write", 100, 0) for _ in range(3)] == [1, 2, 3]
        assert uow.keys.hit("key_1", "read", 100, 0) == 1
        assert uow.keys.hit("key_2", "write", 100, 0) == 1
        assert uow.keys.hit("key_1", "write", 200, 0) == 1  # a new window starts at one
        assert uow.keys.hit("key_1", "write", 100, 0) == 1  # the old window was forgotten


def test_tasks_are_made_once(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    existing = task(store, s, "task_1")
    new = existing.model_copy(update={"id": "task_2", "parent_task_id": "task_1"})
    with store.unit() as uow:
        made = uow.tasks.add_missing([existing, new])
    assert [t.id for t in made] == ["task_2"]
    with store.unit() as uow:
        assert uow.tasks.add_missing([existing, new]) == []
        assert [t.id for t in uow.tasks.of_session("acct_a", s.id)] == ["task_1", "task_2"]


def _message(address: bytes, role: str, tool: bool = False) -> ItemRow:
    body = json.dumps({"role": role, "content": "hi"}).encode()
    index = {"role": role, "has_text": not tool, "has_tool_use": tool}
    return ItemRow(address, "message", body, 3, 0, index)


def test_the_query_read_model(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    call = json.dumps({"id": "c1", "tool": "grep", "status": "error"}).encode()
    with store.unit() as uow:
        uow.content.add_items(s.id, T0, [_message(b"u" * 16, "user")])
        uow.content.add_items(
            s.id, T0 + timedelta(seconds=1), [_message(b"a" * 16, "assistant", tool=True)]
        )
        uow.content.add_items(
            s.id,
            T0,
            [ItemRow(b"t" * 16, "tool_call", call, 2, 0, {"tool_name": "grep", "is_error": True})],
        )
        priced: Snapshot = snapshot(t, "snap_1", T0).model_copy(
            update={"usage": Usage(input_tokens=7, output_tokens=3, cost_usd=0.5)}
        )
        uow.snapshots.add(priced, b"{}")
    with store.unit(write=False) as uow:
        users = uow.queries.objects("acct_a", ObjectFilter("message", role="user"), 10, None)
        tools = uow.queries.objects(
            "acct_a", ObjectFilter("message", content_type="tool_use"), 10, None
        )
        errors = uow.queries.objects("acct_a", ObjectFilter("tool_call", is_error=True), 10, None)
        foreign = uow.queries.objects("acct_b", ObjectFilter("message"), 10, None)
        stats = uow.queries.session_stats("acct_a", s.id)
        usage = uow.queries.usage("acct_a", T0 - timedelta(days=1))
    assert [r["object_hash"] for r in users] == [(b"u" * 16).hex()]
    assert [r["object_hash"] for r in tools] == [(b"a" * 16).hex()]
    assert [json.loads(r["body"])["tool"] for r in errors] == ["grep"]
    assert foreign == []
    assert stats["total_messages"] == 2 and stats["tool_calls_error"] == 1
    assert stats["total_snapshots"] == 1 and stats["context_tokens"] == 10
    assert stats["usage"]["calls"] == 1 and stats["usage"]["total_tokens"] == 10
    assert usage["total_sessions"] == 1 and usage["snapshots_this_month"] == 1
    assert usage["usage"]["cost_usd"] == 0.5


def test_a_writer_locks_the_head_and_reads_what_the_session_has(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    with store.unit() as uow:
        # a task without snapshots: no head, no manifest
        assert uow.snapshots.lock_head("acct_a", t.id) == (t, None, None)
        uow.content.add_items(s.id, T0, [ItemRow(b"i" * 16, "message", b"{}", 4, 0, {})])
        uow.content.add_chunks(s.id, {b"c" * 16: b"i" * 16})
        uow.snapshots.add(snapshot(t, "snap_1", T0), b'{"m":1}')
    with store.unit() as uow:
        locked, items, chunks = uow.snapshots.lock_head_and_lookup(
            "acct_a", t.id, [b"i" * 16, b"x" * 16], [b"c" * 16]
        )
        assert locked == (t, "snap_1", b'{"m":1}')
        assert (items, chunks) == ({b"i" * 16: 4}, {b"c" * 16: b"i" * 16})
        assert uow.content.lookup(s.id, [b"i" * 16], []) == ({b"i" * 16: 4}, {})
        assert uow.snapshots.lock_head("acct_b", t.id) is None  # another account's task
        assert uow.snapshots.lock_head_and_lookup("acct_b", t.id, [b"i" * 16], []) is None


def test_a_snapshot_as_stored_and_its_revisions(store: Any) -> None:
    from kontex.ports import Revision

    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    with store.unit() as uow:
        uow.snapshots.add(snapshot(t, "snap_1", T0), b'{"v":0}')
    with store.unit() as uow:
        assert uow.snapshots.revision_count("snap_1") == 0
        later = T0 + timedelta(seconds=5)
        uow.snapshots.add_revision(Revision("snap_1", 1, "b1", 12, "m", later), b'{"v":1}')
    with store.unit(write=False) as uow:
        assert uow.snapshots.exists("snap_1") and not uow.snapshots.exists("snap_x")
        assert uow.snapshots.revision_count("snap_1") == 1
        stored, manifest = uow.snapshots.stored("acct_a", "snap_1")
        assert (stored.bundle_hash, stored.token_total, manifest) == ("b1", 12, b'{"v":1}')
        assert uow.snapshots.stored("acct_b", "snap_1") is None
        original = uow.snapshots.revision("acct_a", "snap_1", 0)
        first = uow.snapshots.revision("acct_a", "snap_1", 1)
        assert (original.bundle_hash, original.manifest) == ("b0", b'{"v":0}')
        assert (first.bundle_hash, first.manifest, first.created_at) == ("b1", b'{"v":1}', later)
        assert uow.snapshots.revision("acct_a", "snap_1", 2) is None
        assert uow.snapshots.revision("acct_b", "snap_1", 1) is None


def test_inactive_sessions_by_their_latest_activity(store: Any) -> None:
    account(store)
    account(store, "acct_b")
    idle = session(store, "acct_a", "sess_idle")
    busy = session(store, "acct_a", "sess_busy")
    session(store, "acct_b", "sess_other")
    t = task(store, busy, "task_1")
    with store.unit() as uow:
        uow.snapshots.add(snapshot(t, "snap_1", T0 + timedelta(days=3)), b"{}")
    with store.unit(write=False) as uow:
        cutoff = T0 + timedelta(days=1)
        rows = uow.sessions.inactive(cutoff, "acct_a", 10)
        everyone = uow.sessions.inactive(cutoff, None, 10)
    assert [(r["session_id"], r["snapshots"], r["last_activity"]) for r in rows] == [
        (idle.id, 0, T0)
    ]
    assert {r["session_id"] for r in everyone} == {idle.id, "sess_other"}


def test_checkpoints_index_read_writes_and_removal(store: Any) -> None:
    from kontex.ports import CheckpointListing, CheckpointRow, CheckpointWrite, Revision

    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")

    def row(checkpoint_id: str, snap: str, ns: str = "", **meta: Any) -> CheckpointRow:
        return CheckpointRow("th", ns, checkpoint_id, None, s.id, snap, meta, None, T0)

    with store.unit() as uow:
        uow.checkpoints.add_namespace("acct_a", "th", "", s.id, t.id, T0)
        uow.checkpoints.add_namespace("acct_a", "th", "sub", s.id, t.id, T0)
        uow.snapshots.add(snapshot(t, "snap_1", T0), b"m1")
        uow.snapshots.add(snapshot(t, "snap_2", T0 + timedelta(seconds=1), "snap_1"), b"m2")
        uow.checkpoints.put("acct_a", row("01", "snap_1", step=1))
        uow.checkpoints.put("acct_a", row("02", "snap_1", step=2))
        uow.checkpoints.put("acct_a", row("02", "snap_2", step=2))  # put again: its new snapshot
        uow.checkpoints.put("acct_a", row("01", "snap_1", "sub"))
        key = ("th", "", "02", s.id)
        uow.checkpoints.add_writes("acct_a", key, [CheckpointWrite("t", 0, "c", '"a"')], False)
        uow.checkpoints.add_writes("acct_a", key, [CheckpointWrite("t", 0, "c", '"b"')], False)
        uow.checkpoints.add_writes("acct_a", key, [CheckpointWrite("t", -1, "e", '"x"')], True)
        uow.checkpoints.add_writes("acct_a", key, [CheckpointWrite("t", -1, "e", '"y"')], True)
    with store.unit() as uow:  # an enrichment: the read answers the snapshot as it stands
        uow.snapshots.add_revision(Revision("snap_2", 1, "b2", 7, "m", T0), b"m2+")
    with store.unit(write=False) as uow:
        assert uow.checkpoints.namespaces("acct_a", "th") == {
            "": (s.id, t.id),
            "sub": (s.id, t.id),
        }
        assert uow.checkpoints.namespaces("acct_b", "th") == {}
        latest, snap, manifest, writes = uow.checkpoints.read("acct_a", "th", "", None)
        assert (latest.checkpoint_id, latest.metadata, snap.id, manifest) == (
            "02",
            {"step": 2},
            "snap_2",
            b"m2+",
        )
        assert [(w.idx, w.value) for w in writes] == [(-1, '"y"'), (0, '"a"')]
        first = uow.checkpoints.read("acct_a", "th", "", "01")
        assert first is not None and first[0].checkpoint_id == "01" and first[3] == []
        assert uow.checkpoints.read("acct_b", "th", "", None) is None
        assert uow.checkpoints.read("acct_a", "th", "", "03") is None
        page = uow.checkpoints.page("acct_a", CheckpointListing(10, "th"))
        assert [(r.ns, r.checkpoint_id) for r in page] == [("", "02"), ("sub", "01"), ("", "01")]
        after = uow.checkpoints.page("acct_a", CheckpointListing(10, "th", after=("02", "", "th")))
        assert [(r.ns, r.checkpoint_id) for r in after] == [("sub", "01"), ("", "01")]
        assert uow.checkpoints.sessions_of("acct_a", "th") == [s.id]
    with store.unit() as uow:
        assert uow.checkpoints.remove("acct_a", CheckpointListing(0, "th"), True) == 1
    with store.unit(write=False) as uow:
        left = uow.checkpoints.page("acct_a", CheckpointListing(10, "th"))
        assert [(r.ns, r.checkpoint_id) for r in left] == [("", "02"), ("sub", "01")]
        assert uow.checkpoints.writes("acct_a", "th", "", ["02"])["02"] != []
    with store.unit() as uow:
        assert uow.checkpoints.remove("acct_a", CheckpointListing(0, "th"), False) == 2
    with store.unit(write=False) as uow:
        assert uow.checkpoints.page("acct_a", CheckpointListing(10, "th")) == []
        assert uow.checkpoints.writes("acct_a", "th", "", ["02"]) == {"02": []}


def test_a_unit_not_durable_commits_without_waiting_for_the_disk(store: Any) -> None:
    def setting(uow: Any) -> Any:
        if store.dialect == "postgres":
            return uow.keys._work.run("SHOW synchronous_commit")[0]["synchronous_commit"]
        return uow.keys._work.run("PRAGMA synchronous")[0]["synchronous"]

    with store.unit(durable=False) as uow:
        relaxed = setting(uow)
    with store.unit() as uow:
        durable = setting(uow)
    # PostgreSQL: off for that transaction only, except behind a transaction pooler (RDS Proxy
    # pins a client that sets anything: there every commit waits); SQLite: NORMAL (1) always
    if store.dialect == "postgres":
        assert (relaxed, durable) == (("on", "on") if store.pooled else ("off", "on"))
    else:
        assert (relaxed, durable) == (1, 1)


@pytest.mark.postgres
def test_an_autocommit_unit_not_durable_relaxes_its_commit_without_a_warning(
    tmp_path: Path,
) -> None:
    """The rate limits' unit (every request's): on PostgreSQL its implicit transaction commits
    without waiting for the disk, and the server sends no notice for it (``SET LOCAL`` there
    drew "WARNING: SET LOCAL can only be used in transaction blocks", once a request)."""
    notices: list[str] = []
    for store in new_store("postgres", tmp_path / "unused", max_size=1):
        with store.pool.connection() as conn:  # the pool's one connection
            conn.add_notice_handler(lambda notice: notices.append(notice.message_primary))
        for _ in range(3):
            with store.unit(durable=False, autocommit=True) as uow:
                relaxed = uow.keys._work.run("SHOW synchronous_commit")[0]["synchronous_commit"]
            assert relaxed == ("on" if store.pooled else "off")
        assert notices == []
