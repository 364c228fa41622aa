"""functions/live and functions/workers/feed as Lambda calls them: API Gateway WebSocket events
(one recorded shape, and the ones `kontex dev` builds) and SQS batches."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.sqlite_store import SqliteStore
from kontex.functions import worker_paths
from kontex.http.apigw import LocalContext, new_connection_id, websocket_event
from kontex.local.server import load_module, load_worker
from kontex.services import keys, sessions
from kontex.services.deps import Deps
from tests.services.test_live import FakeConnections

EVENTS = Path(__file__).parents[1] / "data" / "events"


@pytest.fixture
def deps(tmp_path: Path) -> Deps:
    store = SqliteStore(tmp_path / "k.db")
    store.migrate()
    return Deps(store=store, blobs=LocalBlobs(tmp_path / "b"), api_key_secret=b"s")


def test_the_three_routes(deps: Deps) -> None:
    handler = load_module("live")
    conns = FakeConnections()
    _, key = keys.create_key(deps, "ws")
    recorded = json.loads((EVENTS / "websocket_message.json").read_text())
    cid = recorded["requestContext"]["connectionId"]
    connect = {
        **recorded,
        "requestContext": {
            **recorded["requestContext"],
            "routeKey": "$connect",
            "eventType": "CONNECT",
        },
    }
    del connect["body"]
    assert handler.handle(connect, deps, conns) == {"statusCode": 200}
    recorded["body"] = recorded["body"].replace("KEY", key)
    assert handler.handle(recorded, deps, conns) == {"statusCode": 200}
    assert conns.last(cid) == {"success": True}
    # a binary frame (base64 in the event) is read the same way
    binary = websocket_event(
        "$default",
        cid,
        body=json.dumps(
            {"id": "b", "action": "restore", "data": {"thread_id": "thrd_" + "a" * 27}}
        ).encode(),
    )
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"])
    handler.handle(binary, deps, conns)
    assert conns.last(cid) == {"id": "b", "success": True, "data": None}
    handler.handle(websocket_event("$disconnect", cid, close_code=1001), deps, conns)
    with deps.store.unit(write=False) as uow:
        assert uow.connections.get(cid, deps.clock()) is None


def test_local_events_have_the_api_gateway_shape() -> None:
    cid = new_connection_id()
    connect = websocket_event("$connect", cid, headers=[("Host", "127.0.0.1:8787")])
    message = websocket_event("$default", cid, body="{}")
    gone = websocket_event("$disconnect", cid, close_code=1000)
    assert len(base64.b64decode(cid)) == 12
    assert connect["requestContext"]["eventType"] == "CONNECT" and connect["headers"]["host"]
    assert message["requestContext"]["eventType"] == "MESSAGE" and message["body"] == "{}"
    assert gone["requestContext"]["disconnectStatusCode"] == 1000
    recorded = json.loads((EVENTS / "websocket_message.json").read_text())["requestContext"]
    assert set(recorded) <= set(message["requestContext"])


def test_the_feed_worker_reports_only_failed_records(
    deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kontex import bootstrap
    from kontex.adapters.local_queue import sqs_record
    from kontex.services import live

    account, key = keys.create_key(deps, "feed")
    session = sessions.create_session(deps, account.account_id, "s")
    conns = FakeConnections()
    for cid in ("ok", "flaky"):
        live.connect(deps, cid)
        live.receive(deps, conns, cid, json.dumps({"authorization": key}))
        live.receive(
            deps,
            conns,
            cid,
            json.dumps({"id": "1", "action": "subscribe", "data": {"session_id": session.id}}),
        )

    class Fixed:
        def __init__(self) -> None:
            self.deps, self.connections = deps, conns

    monkeypatch.setattr(bootstrap, "_current", Fixed())
    worker = load_worker(worker_paths()["feed"])
    body = {
        "id": "evt_1",
        "type": "snapshot.created",
        "account_id": account.account_id,
        "session_id": session.id,
        "data": {"snapshot_id": "snap_1"},
    }
    other = {**body, "id": "evt_2", "type": "not.for.the.feed"}
    records = [
        sqs_record("feed", "m1", json.dumps(body), 1),
        sqs_record("feed", "m2", "not json", 1),
        sqs_record("feed", "m3", json.dumps(other), 1),
    ]
    conns.broken.add("flaky")
    answer = worker.lambda_handler({"Records": records}, LocalContext("kontex-feed"))
    assert {f["itemIdentifier"] for f in answer["batchItemFailures"]} == {"m1", "m2"}
    conns.broken.clear()
    answer = worker.lambda_handler({"Records": records[:1]}, LocalContext("kontex-feed"))
    assert answer["batchItemFailures"] == []
    assert [len(conns.events(c)) for c in ("ok", "flaky")] == [1, 1]  # once each
