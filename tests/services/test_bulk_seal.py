"""Issue 23, span worker in bulk: a queue batch's snapshots sealed together (``seal_all``), on
both backends: the same rows as sealing them one by one, in a bounded number of statements, and
each distinct item's tokens counted once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kontex import tokens
from kontex.adapters.sql.base import Work
from kontex.domain.models import ContextBundle, SnapshotSource
from kontex.services import bundles, keys, sessions, snapshots
from kontex.services.deps import Deps

SYSTEM = "You are a coding agent. " + "plan the refactor and test it " * 40


def turn(n: int, reply: bool, **extra: Any) -> ContextBundle:
    """The n-th call of an agent: the shared system prompt, its question, maybe the reply."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"question {n}: read src/m{n}.py"},
    ]
    if reply:
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"reading {n}"},
                    {"type": "tool_use", "id": f"tu_{n}", "name": "read", "input": {"n": n}},
                ],
            }
        )
    return ContextBundle.model_validate(
        {
            "messages": messages,
            "model": "claude-x",
            "source": "openllmetry",
            "captured_at": datetime(2026, 1, 1, 12, n, tzinfo=UTC),
            "usage": {"input_tokens": 10 + n, "output_tokens": n},
            **extra,
        }
    )


def batch(n_tasks: int = 3) -> list[tuple[int, str, ContextBundle]]:
    """(task index, label, bundle): three snapshots in each task, the tasks interleaved, the
    system prompt in all of them, a file and a reasoning text in some."""
    out = []
    for step in range(3):
        for t in range(n_tasks):
            n = 10 * t + step
            extra: dict[str, Any] = {}
            if step == 1:
                extra["files"] = [{"path": f"src/m{t}.py", "content": f"print({t})\n" * 50}]
            if step == 2:
                extra["reasoning"] = f"because {t}"
            out.append((t, f"call {step}", turn(n, reply=step > 0, **extra)))
    return out


def setup(deps: Deps, name: str, n_tasks: int = 3) -> tuple[str, str, list[Any]]:
    key, _ = keys.create_key(deps, name)
    session = sessions.create_session(deps, key.account_id, name)
    tasks = [
        sessions.create_task(deps, key.account_id, session.id, f"t{t}") for t in range(n_tasks)
    ]
    return key.account_id, session.id, tasks


def seal_batch(deps: Deps, account_id: str, session_id: str, tasks: list[Any]) -> list[Any]:
    new = [
        snapshots.NewSnapshot(
            account_id, session_id, tasks[t].id, label, b, f"snap_bulk_{account_id}_{i}"
        )
        for i, (t, label, b) in enumerate(batch(len(tasks)))
    ]
    prepared = snapshots.prepare(deps, new)
    with deps.store.unit() as uow:
        return snapshots.seal_all(uow, prepared, deps.clock)


def view(deps: Deps, account_id: str, snapshot: Any) -> dict[str, Any]:
    """What a reader gets of a snapshot, less what names its account, session and task."""
    got, bundle = snapshots.read(deps, account_id, snapshot.id)
    return {
        "label": got.label,
        "token_total": got.token_total,
        "bundle_hash": got.bundle_hash,
        "stored_bytes": got.stored_bytes,
        "usage": got.usage,
        "model": got.model,
        "bundle": bundle.model_dump(),
    }


def test_a_batch_sealed_in_bulk_reads_back_as_sealed_one_by_one(deps: Deps) -> None:
    # Given the same nine snapshots in three tasks, sealed in bulk in one account and one by
    # one in another
    bulk_account, bulk_session, bulk_tasks = setup(deps, "bulk")
    made = seal_batch(deps, bulk_account, bulk_session, bulk_tasks)
    one_account, _, one_tasks = setup(deps, "one")
    single = [
        snapshots.create_snapshot(deps, one_account, one_tasks[t].id, label, b)
        for t, label, b in batch()
    ]
    # Then every snapshot reads back the same: content, token totals, hashes, bytes stored
    assert len(made) == len(single) == 9
    for a, b in zip(made, single, strict=True):
        assert view(deps, bulk_account, a) == view(deps, one_account, b)
        assert a.source == SnapshotSource.OPENLLMETRY
    # and each task's chain is the same: each snapshot's parent is the one before in its task
    for tasks, snaps in ((bulk_tasks, made), (one_tasks, single)):
        for task in tasks:
            chain = [s for s in snaps if s.task_id == task.id]
            assert [s.parent_snapshot_id for s in chain] == [None, chain[0].id, chain[1].id]
            _, head = snapshots.read_latest(deps, chain[0].account_id, task.id)
            assert head == snapshots.get_bundle(deps, chain[0].account_id, chain[-1].id)
    # and creation times follow the batch's order
    assert [s.created_at for s in made] == sorted(s.created_at for s in made)


def test_a_redelivered_batch_writes_nothing_twice(deps: Deps) -> None:
    account_id, session_id, tasks = setup(deps, "again")
    assert len(seal_batch(deps, account_id, session_id, tasks)) == 9
    assert seal_batch(deps, account_id, session_id, tasks) == []
    page = snapshots.list_snapshots(deps, account_id, session_id, limit=100)
    assert len(page.items) == 9


class Statements:
    """Counts what a unit of work sends: reads (each a round trip on PostgreSQL) and the
    statements of its kept writes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        self.writes: list[str] = []
        run, run_together, flush = Work.run, Work.run_together, Work.flush

        def counted_run(work: Work, sql: str, params: Any = ()) -> Any:
            self.reads += 1
            return run(work, sql, params)

        def counted_together(work: Work, statements: Any) -> Any:
            self.reads += 1
            return run_together(work, statements)

        def counted_flush(work: Work) -> None:
            self.writes += [sql.split("(")[0].strip() for sql, _ in work._later]
            flush(work)

        monkeypatch.setattr(Work, "run", counted_run)
        monkeypatch.setattr(Work, "run_together", counted_together)
        monkeypatch.setattr(Work, "flush", counted_flush)


@pytest.mark.parametrize("n_tasks", [1, 6])
def test_a_batch_is_sealed_in_one_round_trip_and_one_statement_per_table(
    deps: Deps, monkeypatch: pytest.MonkeyPatch, n_tasks: int
) -> None:
    # Given a batch of 3 or 18 snapshots (each task's second and third after its first)
    account_id, session_id, tasks = setup(deps, f"bulk{n_tasks}", n_tasks)
    counter = Statements(monkeypatch)
    deps.events.failing = True  # type: ignore[attr-defined]  # no relay after the commit
    # When it is sealed in one unit of work
    made = seal_batch(deps, account_id, session_id, tasks)
    # Then one read prepared it all, and each table's rows went in one statement
    assert len(made) == 3 * n_tasks
    assert counter.reads == 1
    assert counter.writes == [
        "INSERT INTO items",
        "INSERT INTO chunks",
        "INSERT INTO snapshots",
        "UPDATE tasks SET head_snapshot_id = v.column2 FROM",  # every task's head at once
        "INSERT INTO outbox",
    ]


def test_the_batchs_missing_tasks_are_made_in_the_same_round_trip_and_announced_first(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch in two tasks the store has not seen (a parent and its child) and one it has
    account_id, session_id, (known,) = setup(deps, "made", 1)
    parent = sessions.derived_task(deps, account_id, "task_new_parent", session_id, "p")
    child = sessions.derived_task(deps, account_id, "task_new_child", session_id, "c", parent.id)
    new = [
        snapshots.NewSnapshot(account_id, session_id, t.id, f"call {i}", turn(i, True), f"s{i}")
        for i, t in enumerate([known, child, parent, child])
    ]
    prepared = snapshots.prepare(deps, new)
    counter = Statements(monkeypatch)
    deps.events.published.clear()  # type: ignore[attr-defined]
    # When it is sealed with its tasks
    with deps.store.unit() as uow:
        made = snapshots.seal_all(uow, prepared, deps.clock, [known, parent, child])
        reads = counter.reads  # (the relay's delete of the published rows comes after)
    # Then one round trip made the missing tasks and prepared the snapshots
    assert reads == 1
    assert [s.task_id for s in made] == [known.id, child.id, parent.id, child.id]
    assert [s.parent_snapshot_id for s in made] == [None, None, None, made[1].id]
    # and the new tasks alone were announced, before the snapshots
    published = deps.events.published  # type: ignore[attr-defined]
    assert [(p[0], p[3].get("id")) for p in published[:2]] == [
        ("task.updated", parent.id),
        ("task.updated", child.id),
    ]
    assert [p[0] for p in published[2:]] == ["snapshot.created"] * 4
    # and a redelivery makes nothing and announces nothing
    deps.events.published.clear()  # type: ignore[attr-defined]
    with deps.store.unit() as uow:
        assert snapshots.seal_all(uow, prepared, deps.clock, [known, parent, child]) == []
    assert deps.events.published == []  # type: ignore[attr-defined]


def test_tokens_are_counted_once_per_distinct_item(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a counter of what tiktoken is asked
    counted: list[Any] = []
    count_content = tokens.count_content

    def counting(content: Any) -> int:
        counted.append(content)
        return count_content(content)

    monkeypatch.setattr(tokens, "count_content", counting)
    bundles.forget()
    # When the same batch is sealed in two sessions (the system prompt in all 18 snapshots)
    totals = []
    for name in ("first", "second"):
        totals.append([s.token_total for s in seal_batch(deps, *setup(deps, name))])
    # Then each distinct message was counted once, the system prompt once in all
    distinct = {m.model_dump_json() for _, _, b in batch() for m in b.messages}
    assert len(counted) == len(distinct)
    assert sum(1 for c in counted if c == SYSTEM) == 1
    # and the totals are what counting each snapshot's messages, files and reasoning gives
    expected = [
        sum(tokens.count_content(m.content) for m in b.messages)
        + sum(tokens.count_text(f.content) for f in b.files)
        + (tokens.count_text(b.reasoning) if b.reasoning else 0)
        for _, _, b in batch()
    ]
    assert totals == [expected, expected]


def test_a_snapshot_named_in_another_session_is_sealed_in_its_tasks(deps: Deps) -> None:
    # Given a batch whose writer named a session other than its task's
    account_id, session_id, tasks = setup(deps, "named", 1)
    other = sessions.create_session(deps, account_id, "other")
    new = [snapshots.NewSnapshot(account_id, other.id, tasks[0].id, "a", turn(1, reply=True), "s1")]
    with deps.store.unit() as uow:
        made = snapshots.seal_all(uow, snapshots.prepare(deps, new), deps.clock)
    # Then the snapshot is in its task's session, its content there and readable
    assert made[0].session_id == session_id
    assert snapshots.get_bundle(deps, account_id, "s1").messages == turn(1, reply=True).messages


def test_a_prepared_batch_is_sealed_without_counting_tokens(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch prepared in a new process (nothing counted before)
    bundles.forget()
    account_id, session_id, tasks = setup(deps, "precounted")
    new = [
        snapshots.NewSnapshot(account_id, session_id, tasks[t].id, label, b, f"pre_{i}")
        for i, (t, label, b) in enumerate(batch())
    ]
    prepared = snapshots.prepare(deps, new)

    def refused(content: Any) -> int:
        raise AssertionError("tokens counted in the write transaction")

    # When it is sealed with the tokenizer out of reach
    monkeypatch.setattr(tokens, "count_content", refused)
    monkeypatch.setattr(tokens, "count_text", refused)
    with deps.store.unit() as uow:
        made = snapshots.seal_all(uow, prepared, deps.clock)
    monkeypatch.undo()
    # Then every snapshot was sealed with the totals counting gives
    assert [s.token_total for s in made] == [
        sum(tokens.count_content(m.content) for m in b.messages)
        + sum(tokens.count_text(f.content) for f in b.files)
        + (tokens.count_text(b.reasoning) if b.reasoning else 0)
        for _, _, b in batch()
    ]
