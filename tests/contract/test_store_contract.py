"""One contract, both backends: every test here runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kontex.domain.errors import Conflict
from kontex.domain.models import Account, ApiKey, Session, SessionStatus, Snapshot, Task
from kontex.ports import ItemRow, Revision, SessionListing

T0 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


def account(store: Any, account_id: str = "acct_a") -> Account:
    acct = Account(id=account_id, created_at=T0)
    with store.unit() as uow:
        uow.keys.add_account(acct)
    return acct


def session(store: Any, account_id: str, sid: str, at: datetime = T0, **kw: Any) -> Session:
    s = Session(
        id=sid, account_id=account_id, name=kw.pop("name", sid), created_at=at, updated_at=at, **kw
    )
    with store.unit() as uow:
        uow.sessions.add(s)
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
    with store.unit() as uow:
        uow.tasks.add(t)
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
    with store.unit(write=False) as uow:
        assert uow.keys.account("acct_a") is not None


def test_times_round_trip_in_utc_with_microseconds(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1", metadata={"k": [1, {"x": "y"}]})
    with store.unit(write=False) as uow:
        got = uow.sessions.get("acct_a", "sess_1")
    assert got == s
    assert got.created_at == T0 and got.created_at.tzinfo is not None


def test_api_key_lookup_by_hash_and_revocation(store: Any) -> None:
    account(store)
    key = ApiKey(id="key_1", account_id="acct_a", label="ci", prefix="kontex_abcde", created_at=T0)
    with store.unit() as uow:
        uow.keys.add(key, "h" * 64)
    with store.unit(write=False) as uow:
        assert uow.keys.find("h" * 64) == key
    with store.unit(write=False) as uow:
        assert uow.keys.find("x" * 64) is None
    with store.unit() as uow:
        assert uow.keys.revoke("acct_b", "key_1", T0) is False  # another account: no effect
    with store.unit() as uow:
        assert uow.keys.revoke("acct_a", "key_1", T0) is True
    with store.unit(write=False) as uow:
        assert uow.keys.find("h" * 64).revoked_at == T0
    with store.unit() as uow:
        assert uow.keys.revoke("acct_a", "key_1", T0) is False


def test_duplicate_key_hash_is_a_conflict(store: Any) -> None:
    account(store)
    key = ApiKey(id="key_1", account_id="acct_a", label="a", prefix="p", created_at=T0)
    with store.unit() as uow:
        uow.keys.add(key, "h" * 64)
    with pytest.raises(Conflict), store.unit() as uow:
        uow.keys.add(key.model_copy(update={"id": "key_2"}), "h" * 64)


def test_sessions_are_scoped_by_account(store: Any) -> None:
    account(store, "acct_a")
    account(store, "acct_b")
    session(store, "acct_a", "sess_a")
    with store.unit(write=False) as uow:
        assert uow.sessions.get("acct_b", "sess_a") is None
    with store.unit(write=False) as uow:
        assert uow.sessions.page("acct_b", SessionListing(10)) == []
    with store.unit() as uow:
        assert uow.sessions.update("acct_b", "sess_a", {"name": "stolen"}) is None
    with store.unit(write=False) as uow:
        assert uow.sessions.get("acct_a", "sess_a").name == "sess_a"
    with store.unit() as uow:
        assert uow.sessions.purge("acct_b", "sess_a") is False


def test_session_pages_are_stable_and_filter_by_status(store: Any) -> None:
    account(store)
    for i in range(5):
        status = SessionStatus.PAUSED if i % 2 else SessionStatus.ACTIVE
        session(store, "acct_a", f"sess_{i}", at=T0 + timedelta(seconds=i), status=status)
    with store.unit(write=False) as uow:
        first = uow.sessions.page("acct_a", SessionListing(2))
    assert [s.id for s in first] == ["sess_0", "sess_1"]
    after = (first[-1].created_at.isoformat(), first[-1].id)
    with store.unit(write=False) as uow:
        rest = uow.sessions.page("acct_a", SessionListing(10, after))
    assert [s.id for s in rest] == [
        "sess_2",
        "sess_3",
        "sess_4",
    ]
    with store.unit(write=False) as uow:
        paused = uow.sessions.page("acct_a", SessionListing(10, status=SessionStatus.PAUSED))
    assert [s.id for s in paused] == ["sess_1", "sess_3"]


def test_update_session_and_task(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    later = T0 + timedelta(minutes=1)
    changes = {"status": SessionStatus.PAUSED, "metadata": {"a": 1}, "updated_at": later}
    with store.unit() as uow:
        updated = uow.sessions.update("acct_a", s.id, changes)
    assert updated.status == SessionStatus.PAUSED and updated.metadata == {"a": 1}
    assert updated.updated_at == later
    t = task(store, s, "task_1")
    with store.unit() as uow:
        changed = uow.tasks.update("acct_a", t.id, {"status": "active", "updated_at": later})
    assert changed.status == "active"
    with store.unit() as uow:
        assert uow.tasks.update("acct_b", t.id, {"status": "failed", "updated_at": later}) is None


def test_tasks_list_in_order_and_scope(store: Any) -> None:
    account(store)
    account(store, "acct_b")
    s = session(store, "acct_a", "sess_1")
    task(store, s, "task_1")
    task(store, s, "task_2", parent="task_1")
    with store.unit(write=False) as uow:
        assert [t.id for t in uow.tasks.of_session("acct_a", s.id)] == ["task_1", "task_2"]
    with store.unit(write=False) as uow:
        assert uow.tasks.of_session("acct_b", s.id) == []
    with store.unit(write=False) as uow:
        assert uow.tasks.get("acct_b", "task_1") is None


def insert_snapshot(store: Any, snap: Snapshot, manifest: bytes = b"{}") -> None:
    with store.unit() as unit:
        unit.snapshots.add(snap, manifest)


def insert_revision(store: Any, revision: Revision, manifest: bytes = b"{}") -> None:
    with store.unit() as unit:
        unit.snapshots.add_revision(revision, manifest)


def _item(address: bytes, body: bytes = b"{}", tokens: int = 10) -> ItemRow:
    return ItemRow(address, "message", body, tokens, 0, {"role": "user", "has_text": True})


def test_items_and_chunks_are_stored_once_per_session(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    with store.unit() as unit:
        unit.content.add_items(s.id, T0, [_item(b"a" * 16), _item(b"b" * 16, tokens=20)])
        unit.content.add_chunks(s.id, {b"c" * 16: b"a" * 16 + b"b" * 16})
    with store.unit() as unit:  # the same content again changes nothing
        unit.content.add_items(s.id, T0, [_item(b"a" * 16, body=b"other", tokens=99)])
        unit.content.add_chunks(s.id, {b"c" * 16: b"x"})
    with store.unit(write=False) as unit:
        assert unit.content.known_items(s.id, [b"a" * 16, b"b" * 16, b"z" * 16]) == {
            b"a" * 16: 10,
            b"b" * 16: 20,
        }
        assert unit.content.items(s.id, [b"a" * 16]) == {b"a" * 16: b"{}"}
        assert unit.content.chunks(s.id, [b"c" * 16]) == {b"c" * 16: b"a" * 16 + b"b" * 16}
        assert unit.content.known_items("sess_other", [b"a" * 16]) == {}


def test_a_unit_rolls_back_entirely(store: Any) -> None:
    account(store)
    s = session(store, "acct_a", "sess_1")
    t = task(store, s, "task_1")
    with pytest.raises(Conflict), store.unit() as unit:
        unit.content.add_items(s.id, T0, [_item(b"a" * 16)])
        unit.snapshots.add(snapshot(t, "snap_1", T0), b"{}")
        unit.snapshots.add(snapshot(t, "snap_1", T0), b"{}")  # same id: the whole unit fails
    with store.unit(write=False) as unit:
        assert unit.content.known_items(s.id, [b"a" * 16]) == {}
    with store.unit(write=False) as uow:
        assert uow.snapshots.get("acct_a", "snap_1") is None
    with store.unit(write=False) as uow:
        assert uow.snapshots.head("acct_a", t.id) is None


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
    with store.unit(write=False) as uow:
        assert uow.snapshots.head("acct_a", t.id)[0].id == "snap_2"
    with store.unit(write=False) as uow:
        assert uow.snapshots.head("acct_b", t.id) is None
    with store.unit(write=False) as uow:
        page = uow.snapshots.page("acct_a", s.id, 2, None)
    assert [p.id for p in page] == ["snap_0", "snap_1"]
    with store.unit(write=False) as uow:
        assert uow.snapshots.get("acct_a", "snap_1").parent_snapshot_id == "snap_0"
    with store.unit(write=False) as uow:
        assert uow.snapshots.get("acct_b", "snap_1") is None

    insert_revision(store, Revision("snap_1", 1, "b1", 99, "m2", T0 + timedelta(seconds=9)))
    with store.unit(write=False) as uow:
        got = uow.snapshots.get("acct_a", "snap_1")
    assert (got.bundle_hash, got.token_total, got.model, got.enriched) == ("b1", 99, "m2", True)
    with store.unit(write=False) as uow:
        revisions = uow.snapshots.revisions("acct_a", "snap_1")
    assert [(r.seq, r.bundle_hash) for r in revisions] == [(0, "b0"), (1, "b1")]
    with store.unit(write=False) as uow:
        assert uow.snapshots.revisions("acct_b", "snap_1") == []
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
            unit.content.add_items(s.id, T0, [_item(b"a" * 16)])
            unit.content.add_chunks(s.id, {b"c" * 16: b"a" * 16})
    with store.unit() as uow:
        assert uow.sessions.purge("acct_a", gone.id) is True
    with store.unit(write=False) as uow:
        assert uow.sessions.get("acct_a", gone.id) is None
    with store.unit(write=False) as uow:
        assert uow.snapshots.get("acct_a", "snap_sess_gone") is None
    with store.unit(write=False) as uow:
        assert uow.tasks.get("acct_a", "task_sess_gone") is None
    with store.unit(write=False) as uow:
        assert uow.snapshots.get("acct_a", "snap_sess_keep").enriched is True
    with store.unit(write=False) as unit:
        assert unit.content.known_items(gone.id, [b"a" * 16]) == {}
        assert unit.content.chunks(gone.id, [b"c" * 16]) == {}
        assert unit.content.known_items(keep.id, [b"a" * 16]) == {b"a" * 16: 10}
        assert unit.content.chunks(keep.id, [b"c" * 16]) == {b"c" * 16: b"a" * 16}
