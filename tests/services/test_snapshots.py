"""Snapshot services on both backends: lineage, exact bundles, storage once, rollback, enrich."""

from __future__ import annotations

from typing import Any

import pytest

from kontex import tokens
from kontex.domain.errors import EnrichWindowExpired, IntegrityError, InvalidInput, NotFound
from kontex.domain.models import ContextBundle
from kontex.services import bundles, keys, sessions, snapshots
from kontex.services.deps import Deps


@pytest.fixture
def task(deps: Deps) -> Any:
    key, _ = keys.create_key(deps, "tests")
    s = sessions.create_session(deps, key.account_id, "run 1")
    return sessions.create_task(deps, key.account_id, s.id, "solve")


def bundle(turns: int, **extra: Any) -> ContextBundle:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are careful."}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"step {i}: read the file"})
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"reading {i}"},
                    {"type": "tool_use", "id": f"tu_{i}", "name": "read", "input": {"n": i}},
                ],
            }
        )
        messages.append(
            {
                "role": "tool",
                "content": [{"type": "tool_result", "tool_use_id": f"tu_{i}", "content": "x" * i}],
                "tool_call_id": f"tu_{i}",
            }
        )
    return ContextBundle.model_validate({"messages": messages, "model": "claude-x", **extra})


def test_bundle_reads_back_exactly(deps: Deps, task: Any) -> None:
    written = bundle(
        2,
        tool_calls=[
            {
                "id": "tu_0",
                "tool": "read",
                "input": {"n": 0},
                "output": {"ok": True},
                "status": "error",
                "timestamp": "2026-01-01T00:00:00Z",
                "retries": 2,
            }
        ],
        files=[{"path": "src/a.py", "content": "print('é')\n"}, {"path": "b.md", "content": ""}],
        reasoning="Because the file matters.",
        log_events=[{"message": "started", "level": "debug", "data": {"k": [1, 2]}}],
    )
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "first", written)
    got = snapshots.get_bundle(deps, task.account_id, snap.id)
    expected = written.model_dump()
    actual = got.model_dump()
    for field in ("messages", "tool_calls", "reasoning", "log_events", "model"):
        assert actual[field] == expected[field], field
    assert [f["content"] for f in actual["files"]] == ["print('é')\n", ""]
    assert all(f["token_count"] is not None for f in actual["files"])
    assert got.token_total == snap.token_total > 0
    assert got.captured_at is not None


def test_parent_is_the_previous_snapshot_of_the_task(deps: Deps, task: Any) -> None:
    first = snapshots.create_snapshot(deps, task.account_id, task.id, "1", bundle(1))
    second = snapshots.create_snapshot(deps, task.account_id, task.id, "2", bundle(2))
    assert first.parent_snapshot_id is None
    assert second.parent_snapshot_id == first.id
    other = sessions.create_task(deps, task.account_id, task.session_id, "other")
    third = snapshots.create_snapshot(deps, task.account_id, other.id, "3", bundle(1))
    assert third.parent_snapshot_id is None


def test_token_total_counts_messages_files_reasoning_unless_given(deps: Deps, task: Any) -> None:
    small = snapshots.create_snapshot(deps, task.account_id, task.id, "a", bundle(1))
    larger = snapshots.create_snapshot(deps, task.account_id, task.id, "b", bundle(3))
    with_file = snapshots.create_snapshot(
        deps,
        task.account_id,
        task.id,
        "c",
        bundle(3, files=[{"path": "f", "content": "word " * 100}]),
    )
    given = snapshots.create_snapshot(deps, task.account_id, task.id, "d", bundle(3, token_total=7))
    assert 0 < small.token_total < larger.token_total < with_file.token_total
    assert with_file.token_total - larger.token_total == tokens.count_text("word " * 100)
    assert given.token_total == 7


def test_history_is_stored_once(deps: Deps, task: Any) -> None:
    """Each snapshot repeats the whole history; storage grows with new content only."""
    t10 = snapshots.create_snapshot(deps, task.account_id, task.id, "t10", bundle(10))
    again = snapshots.create_snapshot(deps, task.account_id, task.id, "t10 again", bundle(10))
    t11 = snapshots.create_snapshot(deps, task.account_id, task.id, "t11", bundle(11))
    assert again.stored_bytes < 600  # only a new manifest
    new = sum(len(m.model_dump_json()) for m in bundle(11).messages[-3:])
    assert t11.stored_bytes < new + 1000  # three new messages (and list chunks), not 34
    assert t10.stored_bytes > 8 * new  # the first write stored the 31 messages
    assert deps.blobs.size_of_prefix("") == 0  # no large file: the object store is not touched


def window(start: int, end: int, summary: str | None = None) -> ContextBundle:
    """Messages ``start..end-1`` of a long run (a sliding window), after an optional summary."""
    messages = [{"role": "user", "content": f"summary: {summary}"}] if summary else []
    for i in range(start, end):
        text = f"message {i}: " + ("lorem ipsum dolor sit amet " * 30)
        messages.append({"role": "user" if i % 2 else "assistant", "content": text})
    return ContextBundle.model_validate({"messages": messages})


def test_a_sliding_window_stores_what_changed(deps: Deps, task: Any) -> None:
    """Dropping the oldest message and appending one shares every unchanged chunk."""
    first = snapshots.create_snapshot(deps, task.account_id, task.id, "w0", window(0, 50))
    costs = [
        snapshots.create_snapshot(deps, task.account_id, task.id, f"w{i}", window(i, 50 + i))
        for i in range(1, 30)
    ]
    one_message = len(window(0, 1).messages[0].model_dump_json())
    assert max(c.stored_bytes for c in costs) < one_message + 1200  # not 50 messages again
    assert first.stored_bytes > 40 * one_message
    got = snapshots.get_bundle(deps, task.account_id, costs[-1].id)
    assert got.messages == window(29, 79).messages


def test_a_compacted_history_keeps_sharing_the_rest(deps: Deps, task: Any) -> None:
    snapshots.create_snapshot(deps, task.account_id, task.id, "full", window(0, 60))
    compacted = snapshots.create_snapshot(
        deps, task.account_id, task.id, "compacted", window(20, 60, summary="the first 20")
    )
    one_message = len(window(0, 1).messages[0].model_dump_json())
    assert compacted.stored_bytes < 2 * one_message + 1200
    got = snapshots.get_bundle(deps, task.account_id, compacted.id)
    assert got.messages == window(20, 60, summary="the first 20").messages


def test_write_and_read_each_run_in_one_transaction(deps: Deps, task: Any) -> None:
    """Each use case writes all its rows (and its outbox events) in one transaction; after the
    commit, the relay marks the events it published in one more."""
    store: Any = deps.store
    snapshots.create_snapshot(deps, task.account_id, task.id, "a", bundle(5))

    def count(use_case: Any) -> int:
        before = store.transactions
        use_case()
        return int(store.transactions - before)

    def one_write_and_the_relay(use_case: Any) -> None:
        assert count(use_case) == 2
        deps.events.failing = True  # type: ignore[attr-defined]  # nothing published: no mark
        try:
            assert count(use_case) == 1
        finally:
            deps.events.failing = False  # type: ignore[attr-defined]

    b6 = bundle(6, reasoning="r", log_events=[{"message": "m"}])
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "b", b6)
    one_write_and_the_relay(
        lambda: snapshots.create_snapshot(deps, task.account_id, task.id, "c", b6)
    )
    assert count(lambda: snapshots.read(deps, task.account_id, snap.id)) == 1
    assert count(lambda: snapshots.read_latest(deps, task.account_id, task.id)) == 1
    one_write_and_the_relay(lambda: snapshots.rollback(deps, task.account_id, snap.id))
    one_write_and_the_relay(
        lambda: snapshots.enrich(deps, task.account_id, snap.id, {"log_events": [{"message": "n"}]})
    )
    one_write_and_the_relay(lambda: snapshots.fork(deps, task.account_id, snap.id))


def raw_sql(store: Any, *statements: str | tuple[str, list[Any]]) -> None:
    """Plain SQL as the database's owner would run it, triggers off (an attacker's view); a
    statement is text, or (text with ? placeholders, parameters). Then the caches of verified
    content are emptied: what follows reads as a process that loads the rows from storage
    (one that verified them before keeps serving the verified bytes, never the altered ones)."""
    bundles.forget()
    pg = store.dialect != "sqlite"
    statements = tuple(
        (s.replace("?", "%s") if pg else s, p)
        for s, p in (x if isinstance(x, tuple) else (x, []) for x in statements)
    )
    if store.dialect == "sqlite":
        conn = store.raw()
        for name in (
            "items_sealed_update",
            "chunks_sealed_update",
            "items_sealed_delete",
            "chunks_sealed_delete",
            "snapshots_sealed_update",
            "revisions_sealed_update",
        ):
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement, params in statements:
            conn.execute(statement, params)
        return
    with store.pool.connection() as conn:
        conn.execute("SET session_replication_role = replica")  # row triggers off
        for statement, params in statements:
            conn.execute(statement, params)


@pytest.mark.parametrize(
    "tamper",
    [
        'UPDATE items SET body = CAST(\'{"role":"user","content":"forged"}\' AS {blob})'
        " WHERE kind = 'message'",
        "DELETE FROM items WHERE kind = 'message' AND position = 1",
        "UPDATE chunks SET refs = CAST('' AS {blob})",
        "DELETE FROM chunks",
    ],
    ids=["substituted item", "deleted item", "altered chunk", "deleted chunk"],
)
def test_tampered_rows_are_never_served(deps: Deps, task: Any, tamper: str) -> None:
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "x", bundle(2))
    store: Any = deps.store
    blob = "BLOB" if store.dialect == "sqlite" else "BYTEA"
    raw_sql(store, tamper.replace("{blob}", blob))
    with pytest.raises(IntegrityError):
        snapshots.get_bundle(deps, task.account_id, snap.id)
    with pytest.raises(IntegrityError):
        snapshots.rollback(deps, task.account_id, snap.id)


# Each statement alters one sealed field of a snapshot row (or of its revision), as the
# database's owner could with the triggers off; {id} is the row the test altered, {other}
# another snapshot (of the fork).
SEALED_FIELDS = {
    "label": "UPDATE snapshots SET label = 'forged' WHERE id = '{id}'",
    "token_total": "UPDATE snapshots SET token_total = token_total + 1000 WHERE id = '{id}'",
    "source": "UPDATE snapshots SET source = 'proxy' WHERE id = '{id}'",
    "model": "UPDATE snapshots SET model = 'forged-model' WHERE id = '{id}'",
    "parent": "UPDATE snapshots SET parent_snapshot_id = '{other}' WHERE id = '{id}'",
    "rollback_of": "UPDATE snapshots SET rollback_of = NULL WHERE rollback_of IS NOT NULL",
    "forked_from": "UPDATE snapshots SET forked_from = NULL WHERE forked_from IS NOT NULL",
    "created_at": "UPDATE snapshots SET created_at = '2020-01-01T00:00:00.000000Z'"
    " WHERE id = '{id}'",
    "captured_at": "UPDATE snapshots SET captured_at = '2020-01-01T00:00:00.000000Z'"
    " WHERE id = '{id}'",
    "usage_cost": "UPDATE snapshots SET usage_cost_usd = 99 WHERE id = '{id}'",
    "usage_tokens": "UPDATE snapshots SET usage_input_tokens = 1 WHERE id = '{id}'",
    "seal erased": "UPDATE snapshots SET seal = NULL WHERE id = '{id}'",
    "revision token_total": "UPDATE snapshot_revisions SET token_total = 1"
    " WHERE snapshot_id = '{id}'",
    "revision created_at": "UPDATE snapshot_revisions SET created_at ="
    " '2020-01-01T00:00:00.000000Z' WHERE snapshot_id = '{id}'",
}


@pytest.mark.parametrize("field", list(SEALED_FIELDS))
def test_an_altered_sealed_field_is_never_served(deps: Deps, task: Any, field: str) -> None:
    """Label, token total, source, model, lineage, timestamps, usage: every field a snapshot
    serves is bound to its seal. Altered, every read of the row is an integrity error (the
    snapshot, the session's list and timeline, its bundle as MCP and export read it, its
    revisions) and no rollback or fork copies it into a new snapshot."""
    from kontex.services import views

    a = task.account_id
    usage = {"input_tokens": 300, "output_tokens": 107, "cost_usd": 0.001095, "latency_ms": 5}
    first = snapshots.create_snapshot(deps, a, task.id, "first", bundle(1, usage=usage))
    second = snapshots.create_snapshot(deps, a, task.id, "second", bundle(2))
    rolled = snapshots.rollback(deps, a, first.id)
    _, forked = snapshots.fork(deps, a, first.id)
    snapshots.enrich(deps, a, second.id, {"log_events": [{"message": "later"}]})
    target = {
        "rollback_of": rolled.id,
        "forked_from": forked.id,
        "usage_cost": first.id,
        "usage_tokens": first.id,
    }.get(field, second.id)
    reads = {
        "get": lambda: snapshots.get_snapshot(deps, a, target),
        "read": lambda: snapshots.read(deps, a, target),
        "list": lambda: snapshots.list_snapshots(deps, a, task.session_id, limit=100),
        "timeline": lambda: views.timeline(deps, a, task.session_id),
        "revisions": lambda: snapshots.list_revisions(deps, a, target),
        "rollback": lambda: snapshots.rollback(deps, a, target),
        "fork": lambda: snapshots.fork(deps, a, target),
    }
    for read in reads.values():  # unaltered, every read is served
        read()
    raw_sql(deps.store, SEALED_FIELDS[field].replace("{id}", target).replace("{other}", forked.id))
    served = []
    for name, read in reads.items():
        try:
            read()
        except IntegrityError:
            continue
        served.append(name)
    assert served == [], f"altered {field} served by {served}"


def test_kontex_migrate_seals_rows_written_before_seals(deps: Deps, task: Any) -> None:
    """Rows of a version before seals (seal NULL) are refused until ``kontex migrate`` seals
    them as they stand; then every read serves them again."""
    from kontex.services import upgrade

    a = task.account_id
    snap = snapshots.create_snapshot(deps, a, task.id, "old", bundle(2))
    snapshots.enrich(deps, a, snap.id, {"log_events": [{"message": "later"}]})
    before = snapshots.get_snapshot(deps, a, snap.id)
    raw_sql(
        deps.store,
        "UPDATE snapshots SET seal = NULL",
        "UPDATE snapshot_revisions SET seal = NULL",
    )
    with pytest.raises(IntegrityError):
        snapshots.get_snapshot(deps, a, snap.id)
    assert upgrade.seal_rows(deps) == 2
    assert upgrade.seal_rows(deps) == 0  # nothing left: a re-run is harmless
    assert snapshots.get_snapshot(deps, a, snap.id) == before
    assert [r.seq for r in snapshots.list_revisions(deps, a, snap.id)] == [0, 1]


def _raw_rows(store: Any, sql: str) -> list[tuple[Any, ...]]:
    if store.dialect == "sqlite":
        return [tuple(r) for r in store.raw().execute(sql).fetchall()]
    with store.pool.connection() as conn:
        return [tuple(r.values()) for r in conn.execute(sql).fetchall()]


def test_reordered_list_references_are_never_served(deps: Deps, task: Any) -> None:
    """The chain-row reorder of the v1 engine, in v2: two item references of a chunk swapped."""
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "x", bundle(2))
    store: Any = deps.store
    address, refs = next(
        (bytes(h), bytes(r))
        for h, r in _raw_rows(store, "SELECT chunk_hash, refs FROM chunks")
        if len(r) >= 32
    )
    swapped = refs[16:32] + refs[:16] + refs[32:]
    raw_sql(store, ("UPDATE chunks SET refs = ? WHERE chunk_hash = ?", [swapped, address]))
    with pytest.raises(IntegrityError):
        snapshots.get_bundle(deps, task.account_id, snap.id)
    with pytest.raises(IntegrityError):
        snapshots.rollback(deps, task.account_id, snap.id)


def test_large_file_bodies_go_to_the_object_store_verified(
    deps: Deps, task: Any, tmp_path: Any
) -> None:
    big = "x = 1\n" * 20_000  # 120 KB, above the 64 KiB threshold
    snap = snapshots.create_snapshot(
        deps, task.account_id, task.id, "x", bundle(1, files=[{"path": "big.py", "content": big}])
    )
    assert deps.blobs.size_of_prefix("") == len(big)
    assert snapshots.get_bundle(deps, task.account_id, snap.id).files[0].content == big
    victim = next(p for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    victim.write_bytes(b"forged")
    with pytest.raises(IntegrityError):
        snapshots.get_bundle(deps, task.account_id, snap.id)
    victim.unlink()
    with pytest.raises(IntegrityError):
        snapshots.get_bundle(deps, task.account_id, snap.id)


def test_fork_branches_a_new_task_with_the_same_content(deps: Deps, task: Any, events: Any) -> None:
    early = snapshots.create_snapshot(deps, task.account_id, task.id, "early", bundle(2))
    snapshots.create_snapshot(deps, task.account_id, task.id, "late", bundle(3))
    branch, first = snapshots.fork(deps, task.account_id, early.id, name="try another way")
    assert branch.parent_task_id == task.id and branch.session_id == task.session_id
    assert branch.name == "try another way"
    assert first.task_id == branch.id and first.forked_from == early.id
    assert first.parent_snapshot_id is None and first.stored_bytes == 0  # shared, not copied
    got = snapshots.get_bundle(deps, task.account_id, first.id)
    assert got.messages == bundle(2).messages
    # the branch goes on by itself; the source task is untouched
    nxt = snapshots.create_snapshot(deps, task.account_id, branch.id, "next", bundle(4))
    assert nxt.parent_snapshot_id == first.id
    assert snapshots.read_latest(deps, task.account_id, task.id)[0].label == "late"
    assert tuple(events.types()[-3:-1]) == ("task.updated", "snapshot.created")


def test_a_fork_serves_no_usage_of_the_call_it_restates(deps: Deps, task: Any) -> None:
    """A fork is not an LLM call: its snapshot serves no usage, in the source's session (where
    it shares the content) or in another one, as a rollback's does not."""
    a = task.account_id
    usage = {"input_tokens": 300, "output_tokens": 107, "cost_usd": 0.001095}
    call = snapshots.create_snapshot(deps, a, task.id, "call", bundle(1, usage=usage))
    assert snapshots.get_snapshot(deps, a, call.id).usage is not None
    other = sessions.create_session(deps, a, "elsewhere")
    for into in (None, other.id):
        _, forked = snapshots.fork(deps, a, call.id, session_id=into)
        assert snapshots.get_snapshot(deps, a, forked.id).usage is None
        assert snapshots.get_bundle(deps, a, forked.id).usage is None
        assert snapshots.get_bundle(deps, a, forked.id).messages == bundle(1).messages


def test_fork_into_another_session_copies_the_content(deps: Deps, task: Any) -> None:
    early = snapshots.create_snapshot(deps, task.account_id, task.id, "early", bundle(2))
    other = sessions.create_session(deps, task.account_id, "elsewhere")
    branch, first = snapshots.fork(deps, task.account_id, early.id, session_id=other.id)
    assert branch.session_id == other.id and branch.parent_task_id is None
    assert first.stored_bytes > 0
    assert snapshots.get_bundle(deps, task.account_id, first.id) == snapshots.get_bundle(
        deps, task.account_id, early.id
    )
    stranger, _ = keys.create_key(deps, "stranger")
    with pytest.raises(NotFound):
        snapshots.fork(deps, stranger.account_id, early.id)
    mine = sessions.create_session(deps, stranger.account_id, "mine")
    with pytest.raises(NotFound):
        snapshots.fork(deps, task.account_id, early.id, session_id=mine.id)


def test_other_accounts_see_nothing(deps: Deps, task: Any) -> None:
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "x", bundle(1))
    other, _ = keys.create_key(deps, "other")
    with pytest.raises(NotFound):
        snapshots.get_snapshot(deps, other.account_id, snap.id)
    with pytest.raises(NotFound):
        snapshots.get_bundle(deps, other.account_id, snap.id)
    with pytest.raises(NotFound):
        snapshots.create_snapshot(deps, other.account_id, task.id, "y", bundle(1))
    with pytest.raises(NotFound):
        snapshots.rollback(deps, other.account_id, snap.id)
    with pytest.raises(NotFound):
        sessions.purge_session(deps, other.account_id, task.session_id)


def test_rollback_writes_a_forward_snapshot_with_lineage(
    deps: Deps, task: Any, events: Any
) -> None:
    early = snapshots.create_snapshot(deps, task.account_id, task.id, "early", bundle(1))
    late = snapshots.create_snapshot(deps, task.account_id, task.id, "late", bundle(4))
    restored = snapshots.rollback(deps, task.account_id, early.id)
    assert restored.id not in (early.id, late.id)
    assert restored.task_id == task.id
    assert restored.rollback_of == early.id
    assert restored.parent_snapshot_id == late.id
    assert restored.label == "Rollback to: early"
    assert restored.source == "rollback"
    assert restored.token_total == early.token_total
    got = snapshots.get_bundle(deps, task.account_id, restored.id)
    want = snapshots.get_bundle(deps, task.account_id, early.id)
    assert got.messages == want.messages and got.files == want.files
    # history is untouched and the rollback was announced
    assert snapshots.get_bundle(deps, task.account_id, late.id).messages == bundle(4).messages
    created = [p for p in events.published if p[0] == "snapshot.created"]
    assert created[-1][3]["rollback_of"] == early.id


def test_enrich_keeps_what_is_left_out_and_appends_logs(deps: Deps, task: Any, events: Any) -> None:
    original = bundle(
        1,
        files=[{"path": "a", "content": "A"}, {"path": "b", "content": "B"}],
        log_events=[{"message": "one"}],
        reasoning="first thoughts",
    )
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "x", original)
    enriched = snapshots.enrich(
        deps,
        task.account_id,
        snap.id,
        {"log_events": [{"message": "two"}], "files": [{"path": "b", "content": "B2"}]},
    )
    assert enriched.enriched is True
    got = snapshots.get_bundle(deps, task.account_id, snap.id)
    assert [e.message for e in got.log_events] == ["one", "two"]
    assert [(f.path, f.content) for f in got.files] == [("a", "A"), ("b", "B2")]
    assert got.messages == original.messages and got.reasoning == "first thoughts"
    # the earlier state stays auditable
    first = snapshots.get_bundle(deps, task.account_id, snap.id, revision=0)
    assert [(f.path, f.content) for f in first.files] == [("a", "A"), ("b", "B")]
    assert [r.seq for r in snapshots.list_revisions(deps, task.account_id, snap.id)] == [0, 1]
    assert "snapshot.enriched" in events.types()


def test_enrich_window_and_bad_fields(deps: Deps, task: Any, clock: Any) -> None:
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "x", bundle(1))
    with pytest.raises(InvalidInput):
        snapshots.enrich(deps, task.account_id, snap.id, {"label": "nope"})
    clock.advance(61)
    with pytest.raises(EnrichWindowExpired):
        snapshots.enrich(deps, task.account_id, snap.id, {"reasoning": "late"})
    assert snapshots.get_snapshot(deps, task.account_id, snap.id).enriched is False


def test_purge_removes_rows_and_blobs(deps: Deps, task: Any) -> None:
    big = [{"path": "big.txt", "content": "y" * 70_000}]
    snap = snapshots.create_snapshot(deps, task.account_id, task.id, "x", bundle(3, files=big))
    prefix = f"{task.account_id}/{task.session_id}/"
    assert deps.blobs.size_of_prefix(prefix) > 0
    sessions.purge_session(deps, task.account_id, task.session_id)
    assert deps.blobs.size_of_prefix(prefix) == 0
    with pytest.raises(NotFound):
        snapshots.get_snapshot(deps, task.account_id, snap.id)
    with pytest.raises(NotFound):
        sessions.get_session(deps, task.account_id, task.session_id)
