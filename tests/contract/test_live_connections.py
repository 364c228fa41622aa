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
    with store.unit() as uow:
        uow.connections.open(cid, at, at + TTL)
    if account is not None:
        with store.unit() as uow:
            assert uow.connections.authenticate(cid, account)


def test_a_connection_is_unauthenticated_until_it_names_its_account(store: Any) -> None:
    with store.unit() as uow:
        uow.connections.open("c1", T0, T0 + TTL)
    with store.unit() as uow:
        uow.connections.open("c1", T0 + timedelta(minutes=5), T0 + TTL * 2)  # a repeat: no change
    with store.unit(write=False) as uow:
        found = uow.connections.get("c1", T0)
    assert found is not None and not found.authenticated and found.account_id is None
    assert found.expires_at == T0 + TTL
    with store.unit() as uow:
        assert uow.connections.authenticate("c1", "acct_a")
    with store.unit(write=False) as uow:
        found = uow.connections.get("c1", T0)
    assert found is not None and found.authenticated and found.account_id == "acct_a"
    # it never moves to another account
    with store.unit() as uow:
        assert not uow.connections.authenticate("c1", "acct_b")
    with store.unit() as uow:
        assert not uow.connections.authenticate("nope", "acct_a")
    # expired reads as absent
    with store.unit(write=False) as uow:
        assert uow.connections.get("c1", T0 + TTL) is None


def test_subscribed_answers_a_batch_of_sessions_as_subscribers_would(store: Any) -> None:
    """One read for a batch of events' sessions (the feed worker's): a pair is subscribed
    exactly when ``subscribers`` would name someone for it."""
    _open(store, "a1")
    _open(store, "b1", account="acct_b")
    _open(store, "old", at=T0 - TTL + timedelta(seconds=1))  # expires a second after T0
    with store.unit() as uow:
        uow.connections.open("anon", T0, T0 + TTL)
    for cid, account, session in [
        ("a1", "acct_a", "sess_1"),
        ("b1", "acct_b", "sess_2"),
        ("old", "acct_a", "sess_3"),
        ("anon", "acct_a", "sess_4"),  # never authenticated
    ]:
        with store.unit() as uow:
            uow.connections.subscribe(cid, account, session)
    pairs = [
        ("acct_a", "sess_1"),
        ("acct_a", "sess_2"),  # B's subscriber, not A's
        ("acct_b", "sess_2"),
        ("acct_a", "sess_3"),
        ("acct_a", "sess_4"),
        ("acct_a", "sess_5"),
        ("acct_a", "sess_1"),  # twice is once
    ]
    for now in (T0, T0 + timedelta(seconds=2)):
        with store.unit(write=False) as uow:
            found = uow.connections.subscribed(pairs, now)
            expected = {p for p in pairs if uow.connections.subscribers(*p, now)}
        assert found == expected
    with store.unit(write=False) as uow:
        assert uow.connections.subscribed(pairs, T0) == {
            ("acct_a", "sess_1"),
            ("acct_b", "sess_2"),
            ("acct_a", "sess_3"),
        }
        assert uow.connections.subscribed(pairs, T0 + timedelta(seconds=2)) == {
            ("acct_a", "sess_1"),
            ("acct_b", "sess_2"),
        }
        assert uow.connections.subscribed([], T0) == set()


def test_subscribers_are_the_live_authenticated_connections_of_the_account(store: Any) -> None:
    _open(store, "a1")
    _open(store, "a2")
    _open(store, "b1", account="acct_b")
    _open(store, "old", at=T0 - TTL + timedelta(seconds=1))  # expires a second after T0
    with store.unit() as uow:
        uow.connections.open("anon", T0, T0 + TTL)
    for cid, account in [("a1", "acct_a"), ("a2", "acct_a"), ("old", "acct_a")]:
        with store.unit() as uow:
            uow.connections.subscribe(cid, account, "sess_1")
    with store.unit() as uow:
        uow.connections.subscribe("a1", "acct_a", "sess_1")  # twice is once
    with store.unit() as uow:
        uow.connections.subscribe("b1", "acct_b", "sess_1")  # B's row names its own account
    with store.unit() as uow:
        uow.connections.subscribe(
            "anon", "acct_a", "sess_1"
        )  # never authenticated: never a subscriber
    with store.unit(write=False) as uow:
        assert uow.connections.subscribers("acct_a", "sess_1", T0) == ["a1", "a2", "old"]
    with store.unit(write=False) as uow:
        assert uow.connections.subscribers("acct_a", "sess_1", T0 + timedelta(seconds=2)) == [
            "a1",
            "a2",
        ]
    with store.unit(write=False) as uow:
        assert uow.connections.subscribers("acct_b", "sess_1", T0) == ["b1"]
    with store.unit(write=False) as uow:
        assert uow.connections.subscribers("acct_a", "sess_2", T0) == []
    with store.unit() as uow:
        assert uow.connections.unsubscribe("a2", "sess_1") is True
    with store.unit() as uow:
        assert uow.connections.unsubscribe("a2", "sess_1") is False
    with store.unit(write=False) as uow:
        assert uow.connections.subscribers("acct_a", "sess_1", T0) == ["a1", "old"]


def test_a_delivery_is_claimed_once_per_event_and_connection(store: Any) -> None:
    for cid in ("a1", "a2", "a3"):
        _open(store, cid)
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_1", ["a1", "a2"], T0) == ["a1", "a2"]
    # the queue delivers evt_1 again, now with a third subscriber: only it is new
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_1", ["a1", "a2", "a3"], T0) == ["a3"]
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_2", ["a1"], T0) == ["a1"]
    with store.unit() as uow:
        uow.connections.release_delivery("evt_1", "a2")  # its post failed: a retry may post it
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_1", ["a1", "a2", "a3"], T0) == ["a2"]
    many = [f"x{i}" for i in range(1200)]  # more than one statement's worth
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_3", many, T0) == many
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_3", many, T0) == []


def test_removing_connections(store: Any) -> None:
    _open(store, "a1")
    _open(store, "gone", at=T0 - TTL)
    with store.unit() as uow:
        uow.connections.subscribe("a1", "acct_a", "sess_1")
    with store.unit() as uow:
        uow.connections.subscribe("gone", "acct_a", "sess_1")
    with store.unit() as uow:
        uow.connections.claim_deliveries("evt_old", ["a1"], T0 - timedelta(days=2))
    with store.unit() as uow:
        uow.connections.claim_deliveries("evt_new", ["a1"], T0)
    with store.unit() as uow:
        assert uow.connections.remove_expired(T0, T0 - timedelta(days=1)) == 1
    with store.unit(write=False) as uow:
        assert uow.connections.get("gone", T0 - TTL) is None
    # the old delivery record went, the recent one stays
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_old", ["a1"], T0) == ["a1"]
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_new", ["a1"], T0) == []
    with store.unit() as uow:
        assert uow.connections.remove("a1") is True
    with store.unit() as uow:
        assert uow.connections.remove("a1") is False
    with store.unit(write=False) as uow:
        assert uow.connections.subscribers("acct_a", "sess_1", T0) == []
    # a connection id coming back later starts clean
    _open(store, "a1")
    with store.unit(write=False) as uow:
        assert uow.connections.subscribers("acct_a", "sess_1", T0) == []
    with store.unit() as uow:
        assert uow.connections.claim_deliveries("evt_new", ["a1"], T0) == ["a1"]


def test_creates_and_purges_write_their_events_with_the_change(store: Any) -> None:
    with store.unit() as uow:
        uow.keys.add_account(Account(id="acct_a", created_at=T0))
    session = Session(id="sess_1", account_id="acct_a", name="run", created_at=T0, updated_at=T0)
    made = Event("evt_s", "session.updated", "acct_a", "sess_1", {"name": "run"}, T0)
    with store.unit() as uow:
        uow.sessions.add(session)
        uow.announce(made)
    task = Task(
        id="task_1",
        account_id="acct_a",
        session_id="sess_1",
        name="t",
        created_at=T0,
        updated_at=T0,
    )
    with store.unit() as uow:
        uow.tasks.add(task)
        uow.announce(Event("evt_t", "task.updated", "acct_a", "sess_1", {"id": "task_1"}, T0))
    purged = Event("evt_p", "session.purged", "acct_a", "sess_1", {"session_id": "sess_1"}, T0)
    with store.unit() as uow:
        assert uow.sessions.purge("acct_b", "sess_1") is False
    with store.unit() as uow:
        assert uow.sessions.purge("acct_a", "sess_1") is True
        uow.announce(purged)
    with store.unit(write=False) as uow:
        events = {e.id: e for e in uow.outbox.unpublished(datetime.now(UTC) + TTL, 10)}
    assert set(events) == {"evt_s", "evt_t", "evt_p"}
    assert events["evt_s"].type == "session.updated" and events["evt_s"].data["name"] == "run"
    assert events["evt_t"].type == "task.updated" and events["evt_t"].session_id == "sess_1"
    assert events["evt_p"].type == "session.purged"
    assert events["evt_p"].data == {"session_id": "sess_1"}
    assert {e.account_id for e in events.values()} == {"acct_a"}
