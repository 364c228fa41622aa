"""Bulk writes of a unit of work on both databases: a table's new rows written together (on
PostgreSQL as multi-row INSERTs, ``postgres_store._statements``) are each stored once, the first
of a key kept, in order, however many there are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.postgres_store import _MAX_PARAMS, _statements
from kontex.services import keys
from kontex.services.deps import Deps
from tests.conftest import Clock

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_a_one_row_insert_becomes_multi_row_statements_within_the_parameter_limit() -> None:
    sql = "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING"
    assert list(_statements(sql, [[1, 2], [3, 4]])) == [
        (
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING",
            [1, 2, 3, 4],
        )
    ]
    wide = (
        "INSERT INTO t ("
        + ", ".join(f"c{i}" for i in range(11))
        + ") VALUES ("
        + ", ".join("?" * 11)
        + ")"
    )
    parts = list(_statements(wide, [[n] * 11 for n in range(2_500)]))
    # powers of two of rows, the largest first: a handful of texts, each prepared once
    assert [len(p) // 11 for _, p in parts] == [512, 512, 512, 512, 256, 128, 64, 4]
    assert all(len(p) <= _MAX_PARAMS for _, p in parts)
    assert parts[0][0].endswith("$5632)") and parts[0][0] == parts[3][0]
    assert [v for _, p in parts for v in p[::11]] == list(range(2_500))  # in order
    widest = "INSERT INTO t (" + ", ".join(f"c{i}" for i in range(300)) + ") VALUES ("
    widest += ", ".join("?" * 300) + ")"
    assert [len(p) for _, p in _statements(widest, [[0] * 300] * 300)] == [128 * 300] * 2 + [
        32 * 300,
        8 * 300,
        4 * 300,
    ]  # at most _MAX_PARAMS parameters a statement
    # an upsert may not touch a row twice in one statement, nor may a statement be split that
    # has other placeholders: one execution per row, as before
    upsert = "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
    assert list(_statements(upsert, [[1, 2], [1, 3]])) == [
        (upsert.replace("(?, ?)", "($1, $2)"), [1, 2]),
        (upsert.replace("(?, ?)", "($1, $2)"), [1, 3]),
    ]
    select = "INSERT INTO t (a, b) SELECT ?, ? FROM u WHERE id = ?"
    assert len(list(_statements(select, [[1, 2, 3], [4, 5, 6]]))) == 2


def _span(n: int) -> dict[str, Any]:
    return {
        "trace_id": f"{n // 4:032x}",
        "span_id": f"{n:016x}",
        "parent_span_id": None,
        "name": f"span {n}",
        "kind": "other",
        "start_time_unix_nano": n,
        "end_time_unix_nano": n + 1,
        "attributes": {"n": n},
        "header_session_id": None,
    }


def test_a_batch_of_thousands_of_rows_with_repeats_stores_each_once(
    store: Any, tmp_path: Any
) -> None:
    deps = Deps(store=store, blobs=LocalBlobs(tmp_path / "b"), api_key_secret=b"s", clock=Clock())
    a = keys.create_key(deps, "a")[0].account_id
    spans = [(a, _span(n)) for n in range(2_400)]
    again = [(a, {**_span(n), "name": "a repeat"}) for n in range(0, 2_400, 7)]
    with store.unit() as uow:
        uow.spans.add(spans[:1_200] + again + spans[1_200:], T0)
    with store.unit() as uow:
        uow.spans.add(again, T0)  # a redelivery: nothing new
    traces = [(a, f"{t:032x}") for t in range(600)]
    with store.unit(write=False) as uow:
        found = uow.spans.of_traces(traces)
    names = [s["name"] for t in traces for s in found[t]]
    assert len(names) == 2_400
    # the first of each key kept: a repeat of a span written earlier in the batch is dropped,
    # and one written before its original (n >= 1,200) takes its place
    expected = ["a repeat" if n % 7 == 0 and n >= 1_200 else f"span {n}" for n in range(2_400)]
    assert names == expected


def test_a_batch_makes_the_last_snapshot_of_each_task_its_head_beyond_one_statement(
    store: Any,
) -> None:
    """The heads of a batch's tasks are set by one statement per ``CHUNK`` tasks: 1,201 tasks
    take three, and every task's head is its last snapshot of the batch."""
    from kontex.adapters.sql.base import CHUNK
    from tests.contract.test_store_contract import account, session, snapshot, task

    account(store)
    s = session(store, "acct_a", "sess_1")
    tasks = [task(store, s, f"task_{n:04d}") for n in range(2 * CHUNK + 201)]
    rows = []
    for n, t in enumerate(tasks):
        first = snapshot(t, f"snap_{n:04d}_a", T0)
        rows.append((first, b"m"))
        if n % 3 == 0:  # a second one: the head is the later
            rows.append((snapshot(t, f"snap_{n:04d}_b", T0, parent=first.id), b"m"))
    with store.unit() as uow:
        uow.snapshots.add_many(rows)
    with store.unit(write=False) as uow:
        heads = [uow.snapshots.lock_head("acct_a", t.id) for t in tasks]
    assert [h[1] if h else None for h in heads] == [
        f"snap_{n:04d}_b" if n % 3 == 0 else f"snap_{n:04d}_a" for n in range(len(tasks))
    ]
