"""Sealed snapshots, proved with raw SQL on both backends (the database refuses, not the API)."""

from __future__ import annotations

from typing import Any

import pytest

from kontex.adapters.sqlite_store import SqliteStore
from tests.contract.test_store_contract import (
    T0,
    _item,
    account,
    insert_revision,
    insert_snapshot,
    session,
    snapshot,
    task,
)


def _raw(store: Any, sql: str) -> None:
    """Run ``sql`` outside the store API, on the driver directly; raises what the driver raises."""
    if isinstance(store, SqliteStore):
        conn = store.raw()
        try:
            conn.execute(sql)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        return

    with store.pool.connection() as conn, conn.transaction():
        conn.execute(sql)


def _driver_errors(store: Any) -> tuple[type[Exception], ...]:
    if isinstance(store, SqliteStore):
        import sqlite3

        return (sqlite3.IntegrityError,)
    import psycopg

    return (psycopg.errors.IntegrityConstraintViolation,)


@pytest.fixture
def sealed(store: Any) -> Any:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    insert_snapshot(store, snapshot(t, "snap_1", T0))
    with store.unit() as unit:
        unit.content.add_items(s.id, T0, [_item(b"a" * 16)])
        unit.content.add_chunks(s.id, {b"c" * 16: b"a" * 16})
    return store


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE snapshots SET label = 'rewritten' WHERE id = 'snap_1'",
        "UPDATE snapshots SET bundle_hash = 'other' WHERE id = 'snap_1'",
        "UPDATE snapshots SET token_total = 0",
        "UPDATE snapshots SET seal = 'forged'",
        "UPDATE snapshots SET seal = NULL",
        "DELETE FROM snapshots WHERE id = 'snap_1'",
        "DELETE FROM snapshots",
    ],
)
def test_raw_sql_cannot_change_or_delete_a_snapshot(sealed: Any, sql: str) -> None:
    with pytest.raises(_driver_errors(sealed)) as caught:
        _raw(sealed, sql)
    assert "sealed" in str(caught.value)
    with sealed.unit(write=False) as uow:
        got = uow.snapshots.get("acct_a", "snap_1")
    assert got is not None and got.label == "snap_1" and got.bundle_hash == "b0"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE items SET tokens = 0",
        "DELETE FROM items",
        "UPDATE chunks SET refs = refs || refs",
        "DELETE FROM chunks",
        "UPDATE snapshots SET manifest = NULL",
    ],
)
def test_raw_sql_cannot_change_or_delete_content(sealed: Any, sql: str) -> None:
    with pytest.raises(_driver_errors(sealed)) as caught:
        _raw(sealed, sql)
    assert "sealed" in str(caught.value)


def test_truncate_is_refused(sealed: Any) -> None:
    # SQLite has no TRUNCATE: its "truncate optimisation" is DELETE without WHERE
    verb = "DELETE FROM {}" if isinstance(sealed, SqliteStore) else "TRUNCATE {} CASCADE"
    for table in ("items", "chunks", "snapshots"):
        with pytest.raises(_driver_errors(sealed)):
            _raw(sealed, verb.format(table))


def test_raw_sql_cannot_rewrite_a_revision(sealed: Any) -> None:
    from kontex.ports import Revision

    insert_revision(sealed, Revision("snap_1", 1, "b1", 5, None, T0))
    with pytest.raises(_driver_errors(sealed)):
        _raw(sealed, "UPDATE snapshot_revisions SET bundle_hash = 'x'")
    with pytest.raises(_driver_errors(sealed)):
        _raw(sealed, "UPDATE snapshot_revisions SET seal = 'forged'")
    with pytest.raises(_driver_errors(sealed)):
        _raw(sealed, "DELETE FROM snapshot_revisions")
    with sealed.unit(write=False) as uow:
        assert uow.snapshots.get("acct_a", "snap_1").bundle_hash == "b1"


def test_the_explicit_purge_may_delete(sealed: Any) -> None:
    with sealed.unit() as uow:
        assert uow.sessions.purge("acct_a", "sess_1") is True
    with sealed.unit(write=False) as uow:
        assert uow.snapshots.get("acct_a", "snap_1") is None
    # and the purge marker does not linger to let later deletes through
    account(sealed, "acct_b")
    s = session(sealed, "acct_b", "sess_1b")
    t = task(sealed, s, "task_1b")
    insert_snapshot(sealed, snapshot(t, "snap_1b", T0))
    with pytest.raises(_driver_errors(sealed)):
        _raw(sealed, "DELETE FROM snapshots")
