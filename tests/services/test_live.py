"""The live feed's protocol and delivery (services/live.py) on both databases, with a fake
``Connections`` that records what each connection was sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kontex.adapters.sql.connections import SqlConnections
from kontex.domain.errors import PayloadTooLarge
from kontex.domain.models import THREAD_STATE_MAX_BYTES
from kontex.ports import ConnectionGone
from kontex.services import keys, live, sessions
from kontex.services.deps import Deps


class FakeConnections:
    """Open connections by id; ``gone`` ones raise ``ConnectionGone``, ``broken`` ones fail."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.sizes: list[int] = []
        self.closed: list[str] = []
        self.gone: set[str] = set()
        self.broken: set[str] = set()

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        if connection_id in self.broken:
            raise ConnectionError("the management API timed out")
        self.sizes.append(len(data))
        self.sent.setdefault(connection_id, []).append(json.loads(data))

    def close(self, connection_id: str) -> None:
        self.closed.append(connection_id)

    def last(self, connection_id: str) -> dict[str, Any]:
        return self.sent[connection_id][-1]

    def events(self, connection_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent.get(connection_id, []) if "type" in m]


@pytest.fixture
def conns() -> FakeConnections:
    return FakeConnections()


@pytest.fixture
def world(deps: Deps) -> dict[str, Any]:
    a, key_a = keys.create_key(deps, "a")
    b, key_b = keys.create_key(deps, "b")
    return {
        "a": a.account_id,
        "b": b.account_id,
        "key_a": key_a,
        "key_b": key_b,
        "sess_a": sessions.create_session(deps, a.account_id, "run a").id,
        "sess_b": sessions.create_session(deps, b.account_id, "run b").id,
    }


def _login(deps: Deps, conns: FakeConnections, cid: str, key: str) -> dict[str, Any]:
    live.connect(deps, cid)
    live.receive(deps, conns, cid, json.dumps({"authorization": key}))
    return conns.last(cid)


def _ask(deps: Deps, conns: FakeConnections, cid: str, action: str, **data: Any) -> dict:
    live.receive(
        deps, conns, cid, json.dumps({"id": f"r-{action}", "action": action, "data": data})
    )
    return conns.last(cid)


def test_the_first_frame_authorizes_or_closes(
    deps: Deps, conns: FakeConnections, world: Any
) -> None:
    assert _login(deps, conns, "good", world["key_a"]) == {"success": True}
    assert conns.closed == []
    # a bad key, a frame without one, and a request before authorizing: refused and closed
    for cid, frame, says in [
        ("bad", {"authorization": "kontex_wrong"}, "this server does not know this API key"),
        ("none", {"hello": 1}, "no Kontex API key was sent: send a first frame"),
        (
            "early",
            {"id": "1", "action": "subscribe", "data": {"session_id": world["sess_a"]}},
            'no Kontex API key was sent: send a first frame `{"authorization": "kontex_..."}`',
        ),
        ("shape", {"authorization": "sk-1"}, "the API key is malformed"),
    ]:
        live.connect(deps, cid)
        live.receive(deps, conns, cid, json.dumps(frame))
        answer = conns.last(cid)
        assert answer["success"] is False and answer["error"] == "unauthorized"
        assert answer["message"].startswith(says)
        assert cid in conns.closed
        with deps.store.unit(write=False) as uow:
            assert uow.connections.get(cid, deps.clock()) is None
    # a revoked key no longer authorizes
    key, plain = keys.create_key(deps, "short-lived", world["a"])
    keys.revoke_key(deps, world["a"], key.id)
    assert _login(deps, conns, "revoked", plain)["success"] is False


def test_requests_are_answered_and_bad_ones_keep_the_connection(
    deps: Deps, conns: FakeConnections, world: Any
) -> None:
    _login(deps, conns, "c", world["key_a"])
    live.receive(deps, conns, "c", "{not json")
    assert conns.last("c")["error"] == "validation_error" and conns.last("c")["id"] is None
    live.receive(deps, conns, "c", json.dumps({"id": "x", "action": "fly"}))
    answer = conns.last("c")
    assert answer["id"] == "x" and answer["success"] is False
    assert "unknown action 'fly'" in answer["message"]
    live.receive(deps, conns, "c", json.dumps({"id": 7, "data": {}}))
    assert conns.last("c")["id"] == 7 and "action" in conns.last("c")["message"]
    live.receive(deps, conns, "c", json.dumps(["a", "list"]))
    assert conns.last("c")["error"] == "validation_error"
    assert (
        _ask(deps, conns, "c", "subscribe")["message"]
        == "data.session_id must be a non-empty string"
    )
    assert conns.closed == []
    assert _ask(deps, conns, "c", "subscribe", session_id=world["sess_a"]) == {
        "id": "r-subscribe",
        "success": True,
        "data": {"session_id": world["sess_a"]},
    }


def test_foreign_and_unknown_sessions_are_refused_alike(
    deps: Deps, conns: FakeConnections, world: Any
) -> None:
    _login(deps, conns, "b", world["key_b"])
    foreign = _ask(deps, conns, "b", "subscribe", session_id=world["sess_a"])
    unknown = _ask(deps, conns, "b", "subscribe", session_id="sess_nope")
    assert foreign["error"] == unknown["error"] == "not_found"
    assert foreign["message"].replace(world["sess_a"], "X") == unknown["message"].replace(
        "sess_nope", "X"
    )
    with deps.store.unit(write=False) as uow:
        assert uow.connections.subscribers(world["a"], world["sess_a"], deps.clock()) == []
    assert _ask(deps, conns, "b", "unsubscribe", session_id=world["sess_a"])["error"] == "not_found"


def test_thread_state_over_the_socket_is_the_rest_thread_state(
    deps: Deps, conns: FakeConnections, world: Any
) -> None:
    from kontex.services import threads

    _login(deps, conns, "c", world["key_a"])
    tid = "thrd_" + "a" * 27
    assert _ask(deps, conns, "c", "restore", thread_id=tid) == {
        "id": "r-restore",
        "success": True,
        "data": None,
    }
    saved = _ask(deps, conns, "c", "save", thread_id=tid, user_data='{"step": 3}')
    assert saved["success"] and saved["data"]["version"] == 1
    assert _ask(deps, conns, "c", "restore", thread_id=tid)["data"] == '{"step": 3}'
    assert threads.get(deps, world["a"], tid).user_data == '{"step": 3}'  # what REST reads
    # another account does not see it
    _login(deps, conns, "b", world["key_b"])
    assert _ask(deps, conns, "b", "restore", thread_id=tid)["data"] is None
    assert _ask(deps, conns, "c", "delete", thread_id=tid) == {"id": "r-delete", "success": True}
    assert _ask(deps, conns, "c", "delete", thread_id=tid)["error"] == "not_found"
    for bad in ("thrd_short", "thread_" + "a" * 30, "thrd_" + "a" * 60, "thrd_" + "a" * 26 + "!"):
        assert _ask(deps, conns, "c", "save", thread_id=bad, user_data="x")["error"] == (
            "validation_error"
        ), bad
    assert _ask(deps, conns, "c", "save", thread_id=tid, user_data=5)["error"] == "validation_error"


def test_the_one_mebibyte_limit_and_the_message_limits(
    deps: Deps, conns: FakeConnections, world: Any
) -> None:
    _login(deps, conns, "c", world["key_a"])
    tid = "thrd_" + "b" * 27
    account = world["a"]
    # the action itself holds the 1 MiB rule (whatever carries the request)
    live.ACTIONS["save"](
        deps, account, "c", {"thread_id": tid, "user_data": "x" * THREAD_STATE_MAX_BYTES}
    )
    with pytest.raises(PayloadTooLarge):
        live.ACTIONS["save"](
            deps, account, "c", {"thread_id": tid, "user_data": "x" * (THREAD_STATE_MAX_BYTES + 1)}
        )
    # a message over API Gateway's 128 KB: a clear error, the connection kept
    big = json.dumps(
        {"id": "big", "action": "save", "data": {"thread_id": tid, "user_data": "y" * 200_000}}
    )
    live.receive(deps, conns, "c", big)
    assert conns.last("c")["id"] == "big" and conns.last("c")["error"] == "payload_too_large"
    assert "128 KB" in conns.last("c")["message"] and conns.closed == []
    # an answer over it (restoring the 1 MiB state) is refused, pointing at REST
    answer = _ask(deps, conns, "c", "restore", thread_id=tid)
    assert answer["error"] == "payload_too_large" and "/v1/threads/" in answer["message"]
    assert max(conns.sizes) <= live.MAX_MESSAGE_BYTES


def _event(world: Any, session: str = "sess_a", **extra: Any) -> dict[str, Any]:
    body = {
        "id": "evt_1",
        "type": "snapshot.created",
        "account_id": world["a"] if session == "sess_a" else world["b"],
        "session_id": world[session],
        "data": {"snapshot_id": "snap_1", "label": "step", "token_total": 9},
    }
    body.update(extra)
    return body


def test_events_reach_the_subscribers_of_their_session_only(
    deps: Deps, conns: FakeConnections, world: Any
) -> None:
    for cid, key in [("a1", "key_a"), ("a2", "key_a"), ("b1", "key_b"), ("idle", "key_a")]:
        _login(deps, conns, cid, world[key])
    for cid in ("a1", "a2"):
        _ask(deps, conns, cid, "subscribe", session_id=world["sess_a"])
    _ask(deps, conns, "b1", "subscribe", session_id=world["sess_b"])
    assert live.deliver(deps, conns, json.dumps(_event(world))) == 2
    pushed = {"id": "evt_1", "type": "snapshot.created", "session_id": world["sess_a"]}
    for cid in ("a1", "a2"):
        assert conns.events(cid) == [{**pushed, "data": _event(world)["data"]}]
    assert conns.events("b1") == [] and conns.events("idle") == []
    # an event naming A's session under B's account reaches nobody (tenancy is by both)
    forged = _event(world, account_id=world["b"], id="evt_forged")
    assert live.deliver(deps, conns, forged) == 0
    # types the feed does not handle are ignored
    assert live.deliver(deps, conns, _event(world, type="something.else", id="evt_2")) == 0
    _ask(deps, conns, "a2", "unsubscribe", session_id=world["sess_a"])
    assert live.deliver(deps, conns, _event(world, id="evt_3")) == 1


def test_a_batch_looks_up_its_sessions_once_and_skips_those_nobody_watches(
    deps: Deps, conns: FakeConnections, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _login(deps, conns, "a1", world["key_a"])
    _ask(deps, conns, "a1", "subscribe", session_id=world["sess_a"])
    events = [_event(world, id=f"evt_a{i}") for i in range(3)]
    events += [_event(world, "sess_b", id=f"evt_b{i}") for i in range(3)]
    audience = live.audience(deps, [*events, "not an event", {"type": "snapshot.created"}])
    assert audience.nobody(world["b"], world["sess_b"])
    assert not audience.nobody(world["a"], world["sess_a"])
    assert not audience.nobody(world["a"], "sess_not_in_the_batch")  # looked up per event
    looked_up: list[tuple[str, str]] = []
    original = SqlConnections.subscribers

    def subscribers(self: SqlConnections, account_id: str, session_id: str, now: Any) -> Any:
        looked_up.append((account_id, session_id))
        return original(self, account_id, session_id, now)

    monkeypatch.setattr(SqlConnections, "subscribers", subscribers)
    posted = [live.deliver(deps, conns, json.dumps(e), audience) for e in events]
    assert posted == [1, 1, 1, 0, 0, 0]
    assert looked_up == [(world["a"], world["sess_a"])] * 3  # B's session: not again
    assert [e["id"] for e in conns.events("a1")] == ["evt_a0", "evt_a1", "evt_a2"]


def test_a_redelivered_event_is_posted_once_per_connection(
    deps: Deps, conns: FakeConnections, world: Any
) -> None:
    for cid in ("a1", "a2", "a3"):
        _login(deps, conns, cid, world["key_a"])
        _ask(deps, conns, cid, "subscribe", session_id=world["sess_a"])
    # the first delivery: a3's post fails for now; the record fails so the queue retries it
    conns.broken.add("a3")
    with pytest.raises(ConnectionError):
        live.deliver(deps, conns, _event(world))
    conns.broken.clear()
    # the retry (and any later duplicate) posts only where it did not go yet
    assert live.deliver(deps, conns, _event(world)) == 1
    assert live.deliver(deps, conns, _event(world)) == 0
    assert [len(conns.events(c)) for c in ("a1", "a2", "a3")] == [1, 1, 1]


def test_a_gone_connection_is_removed(deps: Deps, conns: FakeConnections, world: Any) -> None:
    for cid in ("a1", "a2"):
        _login(deps, conns, cid, world["key_a"])
        _ask(deps, conns, cid, "subscribe", session_id=world["sess_a"])
    conns.gone.add("a2")
    assert live.deliver(deps, conns, _event(world)) == 1
    with deps.store.unit(write=False) as uow:
        assert uow.connections.get("a2", deps.clock()) is None
    with deps.store.unit(write=False) as uow:
        assert uow.connections.subscribers(world["a"], world["sess_a"], deps.clock()) == ["a1"]


def test_pushed_frames_stay_under_32_kb(deps: Deps, conns: FakeConnections, world: Any) -> None:
    _login(deps, conns, "a1", world["key_a"])
    _ask(deps, conns, "a1", "subscribe", session_id=world["sess_a"])
    metadata = {f"k{i}": "v" * 1000 for i in range(100)}  # a 100 KB session metadata
    sessions.update_session(deps, world["a"], world["sess_a"], metadata=metadata, name="big")
    updated = _event(
        world,
        id="evt_big",
        type="session.updated",
        data={"id": world["sess_a"], "name": "big", "status": "active", "metadata": metadata},
    )
    assert live.deliver(deps, conns, updated) == 1
    frame = conns.events("a1")[-1]
    assert frame["data"] == {
        "id": world["sess_a"],
        "name": "big",
        "status": "active",
        "truncated": True,
    }
    assert max(conns.sizes) < live.MAX_EVENT_FRAME_BYTES


def test_expired_connections_get_nothing_and_are_pruned(
    deps: Deps, conns: FakeConnections, world: Any, clock: Any
) -> None:
    _login(deps, conns, "a1", world["key_a"])
    _ask(deps, conns, "a1", "subscribe", session_id=world["sess_a"])
    clock.advance(live.CONNECTION_TTL.total_seconds() + 1)
    assert live.deliver(deps, conns, _event(world)) == 0
    live.receive(deps, conns, "a1", json.dumps({"id": "1", "action": "restore", "data": {}}))
    assert conns.last("a1")["error"] == "unauthorized" and "a1" in conns.closed
    _login(deps, conns, "fresh", world["key_a"])
    clock.advance(live.CONNECTION_TTL.total_seconds() + 1)
    assert live.prune(deps) == 1
