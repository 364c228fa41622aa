"""Migration 0010 (latest states) on data written before it, and its rows sealed, on both
databases: tool-call items get their call id, so each call is listed once in its latest
state; revision usage rows are refused UPDATE and DELETE as the rows they copy are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kontex.adapters import sqlite_store
from kontex.domain.models import ToolCall, Usage
from kontex.ports import ObjectFilter, Revision
from kontex.services import bundles
from tests.conftest import new_store
from tests.contract.test_immutability import _driver_errors, _raw
from tests.contract.test_store_contract import (
    T0,
    account,
    insert_revision,
    insert_snapshot,
    session,
    snapshot,
    task,
)

LATEST = "0010_latest_states"
OLD_ITEMS_SQL = (  # the items row as written before 0010
    "INSERT INTO items (session_id, item_hash, kind, body, tokens, role, has_text,"
    " has_tool_use, has_tool_result, tool_name, is_error, position, first_seen_at)"
    " VALUES ({marks})"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def before_0010(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store migrated up to (not including) 0010."""
    yield from new_store(request.param, tmp_path / "kontex.db", max_size=2, before=LATEST)


def _insert_old_item(store: Any, session_id: str, call: ToolCall, at: Any) -> None:
    body = call.model_dump_json().encode()
    values = [
        session_id,
        bundles.item_address("tool_call", body),
        "tool_call",
        body,
        0,
        None,
        False,
        False,
        False,
        call.tool,
        call.status == "error",
        0,
        at,
    ]
    if isinstance(store, sqlite_store.SqliteStore):
        conn = store.raw()
        conn.execute(OLD_ITEMS_SQL.format(marks=", ".join("?" * len(values))), values)
        return
    with store.pool.connection() as conn, conn.transaction():
        conn.execute(OLD_ITEMS_SQL.format(marks=", ".join(["%s"] * len(values))), values)


def test_the_migration_gives_old_tool_calls_their_id(before_0010: Any) -> None:
    store = before_0010
    account(store)
    s = session(store, "acct_a", "sess_1")
    later = T0 + timedelta(seconds=1)
    _insert_old_item(store, s.id, ToolCall(id="c1", tool="grep", status="pending"), T0)
    _insert_old_item(store, s.id, ToolCall(id="c2", tool="ls", status="pending"), later)
    _insert_old_item(store, s.id, ToolCall(id="c1", tool="grep", output="x"), later)

    assert LATEST in store.migrate()

    with store.unit(write=False) as uow:
        rows = uow.queries.objects("acct_a", ObjectFilter("tool_call", s.id), 10, None)
        stats = uow.queries.session_stats("acct_a", s.id)
    calls = [ToolCall.model_validate_json(r["body"]) for r in rows]
    assert [(c.id, c.status) for c in calls] == [("c1", "success"), ("c2", "pending")]
    assert rows[0]["first_seen_at"] == T0  # placed where the call was first seen
    assert (stats["tool_calls_success"], stats["tool_calls_pending"]) == (1, 1)
    with pytest.raises(_driver_errors(store)):  # sealed again after the backfill
        _raw(store, "UPDATE items SET tokens = 1")


def test_revision_usage_rows_are_sealed_and_go_with_a_purge(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    insert_snapshot(store, snapshot(t, "snap_1", T0))
    usage = Usage(input_tokens=7, output_tokens=3)
    manifest = b'{"usage":' + usage.model_dump_json(exclude_none=True).encode() + b"}\n"
    insert_revision(store, Revision("snap_1", 1, "b1", 5, None, T0), manifest)
    with store.unit(write=False) as uow:
        assert uow.queries.session_stats("acct_a", s.id)["usage"]["total_tokens"] == 10
    for sql in ("UPDATE revision_usage SET input_tokens = 0", "DELETE FROM revision_usage"):
        with pytest.raises(_driver_errors(store)) as caught:
            _raw(store, sql)
        assert "sealed" in str(caught.value)
    with store.unit() as uow:
        assert uow.sessions.purge("acct_a", "sess_1") is True
    with store.unit(write=False) as uow:
        assert uow.snapshots.get("acct_a", "snap_1") is None
