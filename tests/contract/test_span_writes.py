"""Migration 0015_span_writes on both databases: span bodies and outbox events written before
it read back as they were, and those written after it too; on PostgreSQL both columns hold
JSON text (the server parses no JSON for them) and span bodies still compress with lz4; the
unread index ``spans_pending`` is gone on both (docs/benchmarks.md, "Ingest on PostgreSQL,
fewer statements a span (issue 23)")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kontex.adapters import sqlite_store
from kontex.ports import Event
from tests.conftest import new_store
from tests.contract.test_store_contract import account

SPAN_WRITES = "0015_span_writes"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def before_0015(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store migrated up to (not including) 0015."""
    yield from new_store(request.param, tmp_path / "kontex.db", max_size=2, before=SPAN_WRITES)


def _span(n: int) -> dict[str, Any]:
    return {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "parent_span_id": None,
        "name": "anthropic.chat",
        "kind": "llm",
        "start_time_unix_nano": n,
        "end_time_unix_nano": n + 1,
        # TOASTed on PostgreSQL; not ASCII, and a number, a list and nesting to keep
        "attributes": {
            "gen_ai.prompt.0.content": "é 日本 "
            + " ".join(f"w{(n * 7 + i) % 97}" for i in range(900)),
            "gen_ai.usage.input_tokens": n,
            "list": [1, {"a": None}],
        },
        "header_session_id": None,
    }


def _event(n: int) -> Event:
    return Event(f"evt_{n}", "snapshot.created", "acct_a", "sess_1", {"n": n, "é": [1.5]}, T0)


def _write(store: Any, n: int) -> None:
    with store.unit() as uow:
        uow.spans.add([("acct_a", _span(n))], T0)
        uow.outbox.add(_event(n))


def _check(store: Any, n: int) -> None:
    with store.unit(write=False) as uow:
        found = uow.spans.of_traces([("acct_a", f"{n:032x}")])[("acct_a", f"{n:032x}")]
        events = uow.outbox.get([f"evt_{n}"])
    assert [{k: s[k] for k in _span(n)} for s in found] == [_span(n)]
    assert events == [_event(n)]


def test_span_bodies_and_events_read_back_and_postgres_parses_no_json_for_them(
    before_0015: Any,
) -> None:
    store = before_0015
    account(store)
    _write(store, 1)
    assert SPAN_WRITES in store.migrate()
    _write(store, 2)
    _check(store, 1)
    _check(store, 2)
    if isinstance(store, sqlite_store.SqliteStore):
        indexes = store.raw().execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        assert "spans_pending" not in {r[0] for r in indexes}
        return
    with store.pool.connection() as conn:
        columns = conn.execute(
            "SELECT table_name AS t, column_name AS c, data_type AS type FROM"
            " information_schema.columns WHERE table_schema = current_schema()"
            " AND (table_name, column_name) IN (('spans', 'body'), ('outbox', 'data'))"
            " ORDER BY 1"
        ).fetchall()
        compression = conn.execute(
            "SELECT attcompression AS c FROM pg_attribute"
            " WHERE attname = 'body' AND attrelid = 'spans'::regclass"
        ).fetchone()
        indexes = conn.execute(
            "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"
        ).fetchall()
    assert [(r["t"], r["c"], r["type"]) for r in columns] == [
        ("outbox", "data", "text"),
        ("spans", "body", "text"),
    ]
    assert compression == {"c": "l"}
    assert "spans_pending" not in {r["name"] for r in indexes}
