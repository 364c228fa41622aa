"""The live feed's connection rows on both databases: expiry, tenancy of subscriptions,
deliveries recorded once per (event, connection), and the events of creates and purges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kontex.domain.models import Account, Session, Task
from kontex.ports import Event

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=2)


def _open(store: Any, cid: str, account: str | None = "acct_a", at: datetime = T0) -> None:
    store.open_connection(cid, at, at + TTL)
    if account is not None:
        assert store.authenticate_connection(cid, account)


def test_a_connection_is_unauthenticated_until_it_names_its_account(store: Any) -> None:
    store.open_connection("c1", T0, T0 + TTL)
    store.open_connection("c1", T0 + timedelta(minutes=5), T0 + TTL * 2)  # a repeat: no change
    found = store.get_connection("c1", T0)
    assert found is not None and not found.authenticated and found.account_id is None
    assert found.expires_at == T0 + TTL
    assert store.authenticate_connection("c1", "acct_a")
    found = store.get_connection("c1", T0)
    assert found is not None and found.authenticated and found.account_id == "acct_a"
    # it never moves to another account
    assert not store.authenticate_connection("c1", "acct_b")
    assert not store.authenticate_connection("nope", "acct_a")
    # expired reads as absent
    assert store.get_connection("c1", T0 + TTL) is None


def test_subscribers_are_the_live_authenticated_connections_of_the_account(store: Any) -> None:
    _open(store, "a1")
    _open(store, "a2")
    _open(store, "b1", account="acct_b")
    _open(store, "old", at=T0 - TTL + timedelta(seconds=1))  # expires a second after T0
    store.open_connection("anon", T0, T0 + TTL)
    for cid, account in [("a1", "acct_a"), ("a2", "acct_a"), ("old", "acct_a")]:
        store.subscribe(cid, account, "sess_1")
    store.subscribe("a1", "acct_a", "sess_1")  # twice is once
    store.subscribe("b1", "acct_b", "sess_1")  # B's row names its own account
    store.subscribe("anon", "acct_a", "sess_1")  # never authenticated: never a subscriber
    assert store.subscribers("acct_a", "sess_1", T0) == ["a1", "a2", "old"]
    assert store.subscribers("acct_a", "sess_1", T0 + timedelta(seconds=2)) == ["a1", "a2"]
    assert store.subscribers("acct_b", "sess_1", T0) == ["b1"]
    assert store.subscribers("acct_a", "sess_2", T0) == []
    assert store.unsubscribe("a2", "sess_1") is True
    assert store.unsubscribe("a2", "sess_1") is False
    assert store.subscribers("acct_a", "sess_1", T0) == ["a1", "old"]


def test_a_delivery_is_claimed_once_per_event_and_connection(store: Any) -> None:
    for cid in ("a1", "a2", "a3"):
        _open(store, cid)
    assert store.claim_deliveries("evt_1", ["a1", "a2"], T0) == ["a1", "a2"]
    # the queue delivers evt_1 again, now with a third subscriber: only it is new
    assert store.claim_deliveries("evt_1", ["a1", "a2", "a3"], T0) == ["a3"]
    assert store.claim_deliveries("evt_2", ["a1"], T0) == ["a1"]
    store.release_delivery("evt_1", "a2")  # its post failed: a retry may post it
    assert store.claim_deliveries("evt_1", ["a1", "a2", "a3"], T0) == ["a2"]
    many = [f"x{i}" for i in range(1200)]  # more than one statement's worth
    assert store.claim_deliveries("evt_3", many, T0) == many
    assert store.claim_deliveries("evt_3", many, T0) == []


def test_removing_connections(store: Any) -> None:
    _open(store, "a1")
    _open(store, "gone", at=T0 - TTL)
    store.subscribe("a1", "acct_a", "sess_1")
    store.subscribe("gone", "acct_a", "sess_1")
    store.claim_deliveries("evt_old", ["a1"], T0 - timedelta(days=2))
    store.claim_deliveries("evt_new", ["a1"], T0)
    assert store.remove_expired_connections(T0, T0 - timedelta(days=1)) == 1
    assert store.get_connection("gone", T0 - TTL) is None
    # the old delivery record went, the recent one stays
    assert store.claim_deliveries("evt_old", ["a1"], T0) == ["a1"]
    assert store.claim_deliveries("evt_new", ["a1"], T0) == []
    assert store.remove_connection("a1") is True
    assert store.remove_connection("a1") is False
    assert store.subscribers("acct_a", "sess_1", T0) == []
    # a connection id coming back later starts clean
    _open(store, "a1")
    assert store.subscribers("acct_a", "sess_1", T0) == []
    assert store.claim_deliveries("evt_new", ["a1"], T0) == ["a1"]


def test_creates_and_purges_write_their_events_with_the_change(store: Any) -> None:
    store.insert_account(Account(id="acct_a", created_at=T0))
    session = Session(id="sess_1", account_id="acct_a", name="run", created_at=T0, updated_at=T0)
    made = Event("evt_s", "session.updated", "acct_a", "sess_1", {"name": "run"}, T0)
    store.insert_session(session, made)
    task = Task(
        id="task_1",
        account_id="acct_a",
        session_id="sess_1",
        name="t",
        created_at=T0,
        updated_at=T0,
    )
    store.insert_task(
        task, Event("evt_t", "task.updated", "acct_a", "sess_1", {"id": "task_1"}, T0)
    )
    purged = Event("evt_p", "session.purged", "acct_a", "sess_1", {"session_id": "sess_1"}, T0)
    assert store.purge_session("acct_b", "sess_1", purged) is False
    assert store.purge_session("acct_a", "sess_1", purged) is True
    events = {e.id: e for e in store.unpublished(datetime.now(UTC) + TTL, 10)}
    assert set(events) == {"evt_s", "evt_t", "evt_p"}
    assert events["evt_s"].type == "session.updated" and events["evt_s"].data["name"] == "run"
    assert events["evt_t"].type == "task.updated" and events["evt_t"].session_id == "sess_1"
    assert events["evt_p"].type == "session.purged"
    assert events["evt_p"].data == {"session_id": "sess_1"}
    assert {e.account_id for e in events.values()} == {"acct_a"}
