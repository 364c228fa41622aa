"""The live feed: the WebSocket protocol of docs/design.md
("Public contracts"), and events posted to their subscribers.

The same code runs behind API Gateway's WebSocket API (``functions/live``, replies through the
Management API) and behind `kontex dev`'s ``/ws`` (replies written to the local socket): every
answer goes out through the ``Connections`` port, never as the handler's return value.

Protocol, per connection:
- first frame ``{"authorization": "<key>"}``, answered ``{"success": true}``, or
  ``{"success": false, "error", "message"}`` and the connection closed;
- then requests ``{"id", "action", "data"}`` answered ``{"id", "success": true, "data"?}`` or
  ``{"id", "success": false, "error", "message"}`` (``error`` is the REST error code); a bad
  request never closes the connection. Actions: ``subscribe`` / ``unsubscribe``
  (``data.session_id``), ``restore`` / ``save`` / ``delete`` (``data.thread_id``; ``save``
  takes ``data.user_data``), the thread state of ``/v1/threads/{id}/state``.
- pushed events ``{"id", "type", "session_id", "data"}`` for the sessions subscribed to.

API Gateway limits a message to 128 KB (in frames of 32 KB): a larger request is answered with
``payload_too_large`` (locally; on AWS it never reaches us), an answer that would be larger is
replaced by that error, and a pushed event is kept under 32 KB (its large fields left out).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from kontex.domain.errors import InvalidInput, KontexError, NotFound, Unauthorized
from kontex.ports import ConnectionGone, Connections
from kontex.services import keys, sessions, threads
from kontex.services.deps import Deps

log = logging.getLogger("kontex.live")

CONNECTION_TTL = timedelta(hours=2)  # API Gateway closes a WebSocket after 2 hours
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket message limit
MAX_EVENT_FRAME_BYTES = 32 * 1024  # a pushed event fits in one API Gateway frame
DELIVERIES_KEPT = timedelta(days=1)  # how long "posted to this connection" is remembered
POST_THREADS = 16  # concurrent posts of one event (each is an HTTPS call on AWS)

FEED_TYPES = frozenset(
    {
        "snapshot.created",
        "snapshot.enriched",
        "snapshot.embedded",
        "session.updated",
        "task.updated",
        "session.purged",
    }
)
# What a pushed event keeps of its data when the whole would pass 32 KB (all short fields)
SUMMARY_FIELDS = (
    "id",
    "snapshot_id",
    "session_id",
    "task_id",
    "parent_task_id",
    "label",
    "name",
    "status",
    "source",
    "model",
    "token_total",
    "usage",
    "points",
    "created_at",
    "updated_at",
    "enriched_at",
)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


# -- connections --------------------------------------------------------------------------------


def connect(deps: Deps, connection_id: str) -> None:
    """``$connect``: remember the connection, unauthenticated until its first frame."""
    now = deps.clock()
    with deps.store.unit() as uow:
        uow.connections.open(connection_id, now, now + CONNECTION_TTL)


def disconnect(deps: Deps, connection_id: str) -> None:
    """``$disconnect``: forget the connection and its subscriptions."""
    with deps.store.unit() as uow:
        uow.connections.remove(connection_id)


def prune(deps: Deps) -> int:
    """Drop expired connections and old delivery records; returns how many connections."""
    now = deps.clock()
    with deps.store.unit() as uow:
        return uow.connections.remove_expired(now, now - DELIVERIES_KEPT)


# -- requests -----------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    action: str
    data: dict[str, Any] = {}


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"data.{name} must be a non-empty string")
    return value


def _subscribe(deps: Deps, account_id: str, connection_id: str, data: dict[str, Any]) -> Any:
    session_id = _text(data, "session_id")
    sessions.get_session(deps, account_id, session_id)  # another account's reads as missing
    with deps.store.unit() as uow:
        uow.connections.subscribe(connection_id, account_id, session_id)
    return {"session_id": session_id}


def _unsubscribe(deps: Deps, account_id: str, connection_id: str, data: dict[str, Any]) -> Any:
    session_id = _text(data, "session_id")
    with deps.store.unit() as uow:
        unsubscribed = uow.connections.unsubscribe(connection_id, session_id)
    if not unsubscribed:
        raise NotFound(f"not subscribed to session {session_id}")
    return {"session_id": session_id}


def _restore(deps: Deps, account_id: str, connection_id: str, data: dict[str, Any]) -> Any:
    state = threads.restore(deps, account_id, _text(data, "thread_id"))
    return None if state is None else state.user_data


def _save(deps: Deps, account_id: str, connection_id: str, data: dict[str, Any]) -> Any:
    user_data = data.get("user_data")
    if not isinstance(user_data, str):
        raise InvalidInput("data.user_data must be a string")
    state = threads.save(deps, account_id, _text(data, "thread_id"), user_data)
    return {"thread_id": state.thread_id, "version": state.version, "updated_at": state.updated_at}


def _delete(deps: Deps, account_id: str, connection_id: str, data: dict[str, Any]) -> Any:
    threads.delete(deps, account_id, _text(data, "thread_id"))
    return None


Action = Callable[[Deps, str, str, dict[str, Any]], Any]
ACTIONS: dict[str, Action] = {
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "restore": _restore,
    "save": _save,
    "delete": _delete,
}


def _error(code: str, message: str, request_id: Any = None, with_id: bool = True) -> dict:
    answer: dict[str, Any] = {"id": request_id} if with_id else {}
    answer.update({"success": False, "error": code, "message": message})
    return answer


def _request_id(raw: bytes) -> Any:
    """The id of a request we refuse whole (too large), when it can be read at all."""
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found.get("id") if isinstance(found, dict) else None


def _post(deps: Deps, connections: Connections, connection_id: str, answer: dict) -> None:
    frame = _json(answer)
    if len(frame) > MAX_MESSAGE_BYTES:
        frame = _json(
            _error(
                "payload_too_large",
                f"the answer is {len(frame)} bytes, over the 128 KB WebSocket message limit"
                " (read large thread state with GET /v1/threads/{thread_id}/state)",
                answer.get("id"),
            )
        )
    try:
        connections.post(connection_id, frame)
    except ConnectionGone:
        with deps.store.unit() as uow:
            uow.connections.remove(connection_id)


def receive(deps: Deps, connections: Connections, connection_id: str, body: str | bytes) -> None:
    """``$default``: one message from a client; its answer is posted to the connection."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    with deps.store.unit(write=False) as uow:
        connection = uow.connections.get(connection_id, deps.clock())
    authenticated = connection is not None and connection.authenticated
    if len(raw) > MAX_MESSAGE_BYTES:
        message = f"the message is {len(raw)} bytes, over the 128 KB WebSocket message limit"
        answer = _error("payload_too_large", message, _request_id(raw), authenticated)
        return _refuse(deps, connections, connection_id, answer, close=not authenticated)
    try:
        message = json.loads(raw)
    except ValueError:
        answer = _error("validation_error", "the message is not JSON", None, authenticated)
        return _refuse(deps, connections, connection_id, answer, close=not authenticated)
    if connection is None or not authenticated:
        return _authenticate(deps, connections, connection_id, connection is not None, message)
    assert connection.account_id is not None
    _post(
        deps,
        connections,
        connection_id,
        _answer(deps, connection.account_id, connection_id, message),
    )


def _refuse(
    deps: Deps, connections: Connections, connection_id: str, answer: dict, close: bool
) -> None:
    _post(deps, connections, connection_id, answer)
    if close:
        _close(deps, connections, connection_id)


def _close(deps: Deps, connections: Connections, connection_id: str) -> None:
    with contextlib.suppress(ConnectionGone):
        connections.close(connection_id)
    with deps.store.unit() as uow:
        uow.connections.remove(connection_id)


FIRST_FRAME = 'a first frame `{"authorization": "kontex_..."}`'  # what a refusal shows


def _authenticate(
    deps: Deps, connections: Connections, connection_id: str, known: bool, message: Any
) -> None:
    """The first frame must carry a valid key; anything else is refused and closed."""
    presented = message.get("authorization") if isinstance(message, dict) else None
    try:
        if not known:  # expired, or never connected: API Gateway would have closed it
            raise Unauthorized("the connection has expired; connect again")
        sent = presented if isinstance(presented, str) else None
        key = keys.authenticate(deps, keys.Credential(sent, expected=FIRST_FRAME))
        with deps.store.unit() as uow:
            authenticated = uow.connections.authenticate(connection_id, key.account_id)
        if not authenticated:
            raise Unauthorized("the connection has expired; connect again")
    except Unauthorized as refused:
        answer = _error(refused.code, refused.message, with_id=False)
        return _refuse(deps, connections, connection_id, answer, close=True)
    _post(deps, connections, connection_id, {"success": True})


def _answer(deps: Deps, account_id: str, connection_id: str, message: Any) -> dict:
    request_id = message.get("id") if isinstance(message, dict) else None
    try:
        request = _Request.model_validate(message)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in error.errors()
        )
        text = f"a request is {{id, action, data}}: {problems}"
        return _error(
            "validation_error", text, request_id if isinstance(request_id, str | int) else None
        )
    action = ACTIONS.get(request.action)
    if action is None:
        known = ", ".join(ACTIONS)
        return _error(
            "validation_error", f"unknown action {request.action!r} (known: {known})", request.id
        )
    try:
        data = action(deps, account_id, connection_id, request.data)
    except KontexError as error:
        return _error(error.code, error.message, request.id)
    answer: dict[str, Any] = {"id": request.id, "success": True}
    if data is not None or request.action == "restore":
        answer["data"] = data
    return answer


# -- the feed -----------------------------------------------------------------------------------


class FeedEvent(BaseModel):
    """An event as the outbox publishes it (contracts: the message body of every consumer)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    account_id: str
    session_id: str
    data: dict[str, Any] = {}


def event_frame(event: FeedEvent) -> bytes:
    """The pushed frame: ``{id, type, session_id, data}``, under 32 KB (large fields dropped)."""
    frame = _json(
        {"id": event.id, "type": event.type, "session_id": event.session_id, "data": event.data}
    )
    if len(frame) <= MAX_EVENT_FRAME_BYTES:
        return frame
    summary = {k: event.data[k] for k in SUMMARY_FIELDS if k in event.data}
    summary["truncated"] = True
    frame = _json(
        {"id": event.id, "type": event.type, "session_id": event.session_id, "data": summary}
    )
    if len(frame) > MAX_EVENT_FRAME_BYTES:  # only ids left: never a frame API Gateway splits
        keep = {k: summary[k] for k in ("id", "snapshot_id", "task_id") if k in summary}
        frame = _json(
            {
                "id": event.id,
                "type": event.type,
                "session_id": event.session_id,
                "data": {**keep, "truncated": True},
            }
        )
    return frame


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _posting_pool() -> ThreadPoolExecutor:
    """Threads kept for the process's life (a warm Lambda reuses them)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POST_THREADS, thread_name_prefix="kontex-live-post")
        return _pool


@dataclass(frozen=True)
class Audience:
    """Which sessions of a batch of events have subscribers, looked up once for the batch: an
    event of a session looked up without any is not looked up again (most events, when nobody
    watches). Sessions not looked up (``checked``) are looked up per event, as before."""

    checked: frozenset[tuple[str, str]]
    subscribed: frozenset[tuple[str, str]]

    def nobody(self, account_id: str, session_id: str) -> bool:
        key = (account_id, session_id)
        return key in self.checked and key not in self.subscribed


def audience(deps: Deps, events: Iterable[Any]) -> Audience:
    """The ``Audience`` of a batch of events (decoded bodies; anything else is left out and
    looked up per event): one read for the batch."""
    pairs = list(
        dict.fromkeys(
            (e["account_id"], e["session_id"])
            for e in events
            if isinstance(e, dict)
            and e.get("type") in FEED_TYPES
            and isinstance(e.get("account_id"), str)
            and isinstance(e.get("session_id"), str)
        )
    )
    if not pairs:
        return Audience(frozenset(), frozenset())
    with deps.store.unit(write=False) as uow:
        found = uow.connections.subscribed(pairs, deps.clock())
    return Audience(frozenset(pairs), frozenset(found))


def deliver(
    deps: Deps,
    connections: Connections,
    body: str | bytes | dict[str, Any],
    audience: Audience | None = None,
) -> int:
    """Post an event to the connections of its account subscribed to its session.

    Idempotent per (event, connection): a delivery is recorded before its post, so an event the
    queue delivers again is posted only where it was not yet. A gone connection is removed; a
    post that failed otherwise is forgotten and raised, so the queue retries the event for the
    connections that missed it. Returns how many posts went out.
    """
    raw = json.loads(body) if isinstance(body, str | bytes) else body
    event = FeedEvent.model_validate(raw)
    if event.type not in FEED_TYPES:
        return 0  # not for the feed: consumers ignore types they do not handle
    if audience is not None and audience.nobody(event.account_id, event.session_id):
        return 0  # its batch's lookup found no subscriber of its session
    now = deps.clock()
    with deps.store.unit(write=False) as uow:
        targets = uow.connections.subscribers(event.account_id, event.session_id, now)
    if not targets:
        return 0
    with deps.store.unit() as uow:
        fresh = uow.connections.claim_deliveries(event.id, targets, now)
    frame = event_frame(event)
    failures: list[Exception] = []

    def post(connection_id: str) -> bool:
        try:
            connections.post(connection_id, frame)
            return True
        except ConnectionGone:
            with deps.store.unit() as uow:
                uow.connections.remove(connection_id)
        except Exception as error:  # retried by the queue, for this connection only
            log.warning("posting %s to %s failed: %s", event.id, connection_id, error)
            with deps.store.unit() as uow:
                uow.connections.release_delivery(event.id, connection_id)
            failures.append(error)
        return False

    if len(fresh) <= 2:
        posted = sum(post(c) for c in fresh)
    else:
        posted = sum(_posting_pool().map(post, fresh))
    if failures:
        raise failures[0]
    return posted
