"""Migration 0014_toast_lz4 on both databases: span and item bodies written before it read back
as they were, and those written after it too; on PostgreSQL both columns compress with lz4 (what
makes a span batch cheaper to write, docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kontex.adapters import sqlite_store
from kontex.adapters.local_blobs import LocalBlobs
from kontex.ports import ItemRow
from kontex.services import keys, sessions
from kontex.services.deps import Deps
from tests.conftest import Clock, new_store

LZ4 = "0014_toast_lz4"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def before_0014(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store migrated up to (not including) 0014."""
    yield from new_store(request.param, tmp_path / "kontex.db", max_size=2, before=LZ4)


def _span(n: int) -> dict[str, Any]:
    prompt = " ".join(f"word{(n * 7 + i) % 97}" for i in range(2000))  # ~14 KB: stored TOASTed
    return {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "parent_span_id": None,
        "name": "anthropic.chat",
        "kind": "llm",
        "start_time_unix_nano": n,
        "end_time_unix_nano": n + 1,
        "attributes": {"gen_ai.prompt.0.content": prompt},
        "header_session_id": None,
    }


def _write(store: Any, account_id: str, session_id: str, n: int) -> None:
    with store.unit() as uow:
        uow.spans.add([(account_id, _span(n))], T0)
        body = _span(n)["attributes"]["gen_ai.prompt.0.content"].encode()
        uow.content.add_items(session_id, T0, [ItemRow(bytes([n]) * 16, "message", body, 9, 0, {})])


def _check(store: Any, account_id: str, session_id: str, n: int) -> None:
    with store.unit(write=False) as uow:
        found = uow.spans.of_traces([(account_id, f"{n:032x}")])[(account_id, f"{n:032x}")]
        items = uow.content.items(session_id, [bytes([n]) * 16])
    assert len(found) == 1
    assert found[0]["attributes"] == _span(n)["attributes"]
    assert items[bytes([n]) * 16] == _span(n)["attributes"]["gen_ai.prompt.0.content"].encode()


def test_bodies_written_before_and_after_read_back_and_postgres_compresses_with_lz4(
    before_0014: Any, tmp_path: Path
) -> None:
    store = before_0014
    deps = Deps(store=store, blobs=LocalBlobs(tmp_path / "b"), api_key_secret=b"s", clock=Clock())
    account_id = keys.create_key(deps, "a")[0].account_id
    session_id = sessions.create_session(deps, account_id, "run").id
    _write(store, account_id, session_id, 1)
    assert LZ4 in store.migrate()
    _write(store, account_id, session_id, 2)
    _check(store, account_id, session_id, 1)
    _check(store, account_id, session_id, 2)
    if isinstance(store, sqlite_store.SqliteStore):
        return
    with store.pool.connection() as conn:
        rows = conn.execute(
            "SELECT attrelid::regclass::text AS tab, attcompression AS c FROM pg_attribute"
            " WHERE attname = 'body' AND attrelid IN ('spans'::regclass, 'items'::regclass)"
            " ORDER BY 1"
        ).fetchall()
    assert [(r["tab"], r["c"]) for r in rows] == [("items", "l"), ("spans", "l")]
