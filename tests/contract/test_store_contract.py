"""One contract, both backends: every test here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kontex.domain.errors import Conflict
from kontex.domain.models import Account, ApiKey, Session, SessionStatus, Snapshot, Task
from kontex.ports import ItemRow, Revision

T0 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


def account(store: Any, account_id: str = "acct_a") -> Account:
    acct = Account(id=account_id, created_at=T0)
    store.insert_account(acct)
    return acct


def session(store: Any, account_id: str, sid: str, at: datetime = T0, **kw: Any) -> Session:
    s = Session(
        id=sid, account_id=account_id, name=kw.pop("name", sid), created_at=at, updated_at=at, **kw
    )
    store.insert_session(s)
    return s


def task(store: Any, s: Session, tid: str, parent: str | None = None) -> Task:
    t = Task(
        id=tid,
        account_id=s.account_id,
        session_id=s.id,
        parent_task_id=parent,
        name=tid,
        created_at=T0,
        updated_at=T0,
    )
    store.insert_task(t)
    return t


def snapshot(
    t: Task, sid: str, at: datetime, parent: str | None = None, bundle: str = "b0"
) -> Snapshot:
    return Snapshot(
        id=sid,
        account_id=t.account_id,
        session_id=t.session_id,
        task_id=t.id,
        label=sid,
        source="api",
        token_total=10,
        parent_snapshot_id=parent,
        bundle_hash=bundle,
        captured_at=at,
        created_at=at,
    )


def test_migrate_twice_is_harmless(store: Any) -> None:
    assert store.migrate() == []
    account(store)
    assert store.migrate() == []
    assert store.get_account("acct_a") is not None


def test_times_round_trip_in_utc_with_microseconds(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1", metadata={"k": [1, {"x": "y"}]})
    got = store.get_session("acct_a", "sess_1")
    assert got == s
    assert got.created_at == T0 and got.created_at.tzinfo is not None


def test_api_key_lookup_by_hash_and_revocation(store: Any) -> None:
    account(store)
    key = ApiKey(id="key_1", account_id="acct_a", label="ci", prefix="kontex_abcde", created_at=T0)
    store.insert_api_key(key, "h" * 64)
    assert store.find_api_key("h" * 64) == key
    assert store.find_api_key("x" * 64) is None
    assert store.revoke_api_key("acct_b", "key_1", T0) is False  # another account: no effect
    assert store.revoke_api_key("acct_a", "key_1", T0) is True
    assert store.find_api_key("h" * 64).revoked_at == T0
    assert store.revoke_api_key("acct_a", "key_1", T0) is False


def test_duplicate_key_hash_is_a_conflict(store: Any) -> None:
    account(store)
    key = ApiKey(id="key_1", account_id="acct_a", label="a", prefix="p", created_at=T0)
    store.insert_api_key(key, "h" * 64)
    with pytest.raises(Conflict):
        store.insert_api_key(key.model_copy(update={"id": "key_2"}), "h" * 64)


def test_sessions_are_scoped_by_account(store: Any) -> None:
    account(store, "acct_a")
    account(store, "acct_b")
    session(store, "acct_a", "sess_a")
    assert store.get_session("acct_b", "sess_a") is None
    assert store.list_sessions("acct_b", None, 10, None) == []
    assert store.update_session("acct_b", "sess_a", {"name": "stolen"}) is None
    assert store.get_session("acct_a", "sess_a").name == "sess_a"
    assert store.purge_session("acct_b", "sess_a") is False


def test_session_pages_are_stable_and_filter_by_status(store: Any) -> None:
    account(store)
    for i in range(5):
        status = SessionStatus.PAUSED if i % 2 else SessionStatus.ACTIVE
        session(store, "acct_a", f"sess_{i}", at=T0 + timedelta(seconds=i), status=status)
    first = store.list_sessions("acct_a", None, 2, None)
    assert [s.id for s in first] == ["sess_0", "sess_1"]
    after = (first[-1].created_at.isoformat(), first[-1].id)
    assert [s.id for s in store.list_sessions("acct_a", None, 10, after)] == [
        "sess_2",
        "sess_3",
        "sess_4",
    ]
    paused = store.list_sessions("acct_a", SessionStatus.PAUSED, 10, None)
    assert [s.id for s in paused] == ["sess_1", "sess_3"]


def test_update_session_and_task(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    later = T0 + timedelta(minutes=1)
    updated = store.update_session(
        "acct_a", s.id, {"status": SessionStatus.PAUSED, "metadata": {"a": 1}, "updated_at": later}
    )
    assert updated.status == SessionStatus.PAUSED and updated.metadata == {"a": 1}
    assert updated.updated_at == later
    t = task(store, s, "task_1")
    assert (
        store.update_task("acct_a", t.id, {"status": "active", "updated_at": later}).status
        == "active"
    )
    assert store.update_task("acct_b", t.id, {"status": "failed", "updated_at": later}) is None


def test_tasks_list_in_order_and_scope(store: Any) -> None:
    account(store)
    account(store, "acct_b")
    s = session(store, "acct_a", "sess_1")
    task(store, s, "task_1")
    task(store, s, "task_2", parent="task_1")
    assert [t.id for t in store.list_tasks("acct_a", s.id)] == ["task_1", "task_2"]
    assert store.list_tasks("acct_b", s.id) == []
    assert store.get_task("acct_b", "task_1") is None


def insert_snapshot(store: Any, snap: Snapshot, manifest: bytes = b"{}") -> None:
    with store.unit() as unit:
        unit.add_snapshot(snap, manifest)


def insert_revision(store: Any, revision: Revision, manifest: bytes = b"{}") -> None:
    with store.unit() as unit:
        unit.add_revision(revision, manifest)


def _item(address: bytes, body: bytes = b"{}", tokens: int = 10) -> ItemRow:
    return ItemRow(address, "message", body, tokens, 0, {"role": "user", "has_text": True})


def test_items_and_chunks_are_stored_once_per_session(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    with store.unit() as unit:
        unit.add_items(s.id, T0, [_item(b"a" * 16), _item(b"b" * 16, tokens=20)])
        unit.add_chunks(s.id, {b"c" * 16: b"a" * 16 + b"b" * 16})
    with store.unit() as unit:  # the same content again changes nothing
        unit.add_items(s.id, T0, [_item(b"a" * 16, body=b"other", tokens=99)])
        unit.add_chunks(s.id, {b"c" * 16: b"x"})
    with store.unit(write=False) as unit:
        assert unit.known_items(s.id, [b"a" * 16, b"b" * 16, b"z" * 16]) == {
            b"a" * 16: 10,
            b"b" * 16: 20,
        }
        assert unit.items(s.id, [b"a" * 16]) == {b"a" * 16: b"{}"}
        assert unit.chunks(s.id, [b"c" * 16]) == {b"c" * 16: b"a" * 16 + b"b" * 16}
        assert unit.known_items("sess_other", [b"a" * 16]) == {}


def test_a_unit_rolls_back_entirely(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    with pytest.raises(Conflict), store.unit() as unit:
        unit.add_items(s.id, T0, [_item(b"a" * 16)])
        unit.add_snapshot(snapshot(t, "snap_1", T0), b"{}")
        unit.add_snapshot(snapshot(t, "snap_1", T0), b"{}")  # same id: the whole unit fails
    with store.unit(write=False) as unit:
        assert unit.known_items(s.id, [b"a" * 16]) == {}
    assert store.get_snapshot("acct_a", "snap_1") is None
    assert store.latest_snapshot("acct_a", t.id) is None


def test_the_database_refuses_a_second_child_of_one_parent(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    insert_snapshot(store, snapshot(t, "snap_0", T0))
    insert_snapshot(store, snapshot(t, "snap_1", T0, parent="snap_0"))
    with pytest.raises(Conflict):
        insert_snapshot(store, snapshot(t, "snap_1b", T0, parent="snap_0"))
    with pytest.raises(Conflict):
        insert_snapshot(store, snapshot(t, "snap_root2", T0))


def test_snapshots_latest_list_and_revisions(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    for i in range(3):
        parent = f"snap_{i - 1}" if i else None
        insert_snapshot(store, snapshot(t, f"snap_{i}", T0 + timedelta(seconds=i), parent))
    assert store.latest_snapshot("acct_a", t.id).id == "snap_2"
    assert store.latest_snapshot("acct_b", t.id) is None
    page = store.list_snapshots("acct_a", s.id, 2, None)
    assert [p.id for p in page] == ["snap_0", "snap_1"]
    assert store.get_snapshot("acct_a", "snap_1").parent_snapshot_id == "snap_0"
    assert store.get_snapshot("acct_b", "snap_1") is None

    insert_revision(store, Revision("snap_1", 1, "b1", 99, "m2", T0 + timedelta(seconds=9)))
    got = store.get_snapshot("acct_a", "snap_1")
    assert (got.bundle_hash, got.token_total, got.model, got.enriched) == ("b1", 99, "m2", True)
    revisions = store.list_revisions("acct_a", "snap_1")
    assert [(r.seq, r.bundle_hash) for r in revisions] == [(0, "b0"), (1, "b1")]
    assert store.list_revisions("acct_b", "snap_1") == []
    with pytest.raises(Conflict):  # two enrichments racing for the same seq
        insert_revision(store, Revision("snap_1", 1, "b2", 1, None, T0))


def test_purge_removes_every_row_of_the_session_only(store: Any) -> None:
    account(store)
    keep = session(store, "acct_a", "sess_keep")
    gone = session(store, "acct_a", "sess_gone")
    for s in (keep, gone):
        t = task(store, s, f"task_{s.id}")
        child = task(store, s, f"child_{s.id}", parent=t.id)
        insert_snapshot(store, snapshot(child, f"snap_{s.id}", T0))
        insert_revision(store, Revision(f"snap_{s.id}", 1, "b1", 1, None, T0))
        with store.unit() as unit:
            unit.add_items(s.id, T0, [_item(b"a" * 16)])
            unit.add_chunks(s.id, {b"c" * 16: b"a" * 16})
    assert store.purge_session("acct_a", gone.id) is True
    assert store.get_session("acct_a", gone.id) is None
    assert store.get_snapshot("acct_a", "snap_sess_gone") is None
    assert store.get_task("acct_a", "task_sess_gone") is None
    assert store.get_snapshot("acct_a", "snap_sess_keep").enriched is True
    with store.unit(write=False) as unit:
        assert unit.known_items(gone.id, [b"a" * 16]) == {}
        assert unit.chunks(gone.id, [b"c" * 16]) == {}
        assert unit.known_items(keep.id, [b"a" * 16]) == {b"a" * 16: 10}
        assert unit.chunks(keep.id, [b"c" * 16]) == {b"c" * 16: b"a" * 16}
