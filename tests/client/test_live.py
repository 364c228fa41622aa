"""``client.live(session_id)``: sync and async iterators over the WebSocket feed
(docs/design.md, "Public contracts").

Two parts: the protocol against a small scripted WebSocket server (always), and the real feed
of `kontex dev` (snapshot.created after a REST write)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

import kontex_client
from kontex_client import AsyncKontex, Kontex
from tests.e2e.stack import DevStack

# -- the protocol, against a scripted server ----------------------------------------------------


class ScriptedFeed:
    """Speaks the feed's protocol: checks the key, answers subscribe, then pushes two events
    (one before the subscribe answer, which the client must keep)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

        def handler(ws: ServerConnection) -> None:
            auth = json.loads(ws.recv())
            self.frames.append(auth)
            if auth.get("authorization") != "kontex_good":
                ws.send(json.dumps({"success": False, "error": "unauthorized"}))
                ws.close()
                return
            ws.send(json.dumps({"success": True}))
            request = json.loads(ws.recv())
            self.frames.append(request)
            session = request["data"]["session_id"]
            if session == "sess_missing":
                ws.send(json.dumps({"id": request["id"], "success": False, "error": "not_found"}))
                return
            early = {"type": "session.updated", "session_id": session, "data": {"n": 0}}
            ws.send(json.dumps(early))
            ws.send(json.dumps({"id": request["id"], "success": True}))
            ws.send(
                json.dumps(
                    {
                        "type": "snapshot.created",
                        "session_id": session,
                        "data": {"snapshot_id": "s1"},
                    }
                )
            )
            with contextlib.suppress(ConnectionClosed):
                ws.recv()  # until the client goes

        self.server = serve(handler, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/ws"

    def __enter__(self) -> ScriptedFeed:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture
def scripted() -> Iterator[ScriptedFeed]:
    with ScriptedFeed() as feed:
        yield feed


def test_sync_feed_speaks_the_protocol(scripted: ScriptedFeed) -> None:
    client = Kontex("http://unused", "kontex_good", live_url=scripted.url)
    with client.live("sess_1") as feed:
        events = [feed.next_event(timeout=5), feed.next_event(timeout=5)]
    assert [e.type for e in events] == ["session.updated", "snapshot.created"]
    assert events[1].data == {"snapshot_id": "s1"} and events[1].session_id == "sess_1"
    assert scripted.frames[0] == {"authorization": "kontex_good"}
    assert scripted.frames[1]["action"] == "subscribe"
    assert scripted.frames[1]["data"] == {"session_id": "sess_1"}


def test_sync_feed_iterates_and_refusals_are_errors(scripted: ScriptedFeed) -> None:
    client = Kontex("http://unused", "kontex_good", live_url=scripted.url)
    feed = client.live("sess_2")
    first = next(iter(feed))
    assert first.type == "session.updated"
    feed.close()
    with pytest.raises(kontex_client.NotFoundError):
        client.live("sess_missing").connect()
    with pytest.raises(kontex_client.AuthenticationError):
        Kontex("http://unused", "kontex_bad", live_url=scripted.url).live("sess_1").connect()


def test_async_feed_speaks_the_protocol(scripted: ScriptedFeed) -> None:
    async def run() -> list[str]:
        client = AsyncKontex("http://unused", "kontex_good", live_url=scripted.url)
        seen = []
        async with client.live("sess_3") as feed:
            async for event in feed:
                seen.append(event.type)
                if len(seen) == 2:
                    break
        return seen

    assert asyncio.run(run()) == ["session.updated", "snapshot.created"]


def test_live_url_follows_the_base_url() -> None:
    assert Kontex("http://h:1", "k").live("s").url == "ws://h:1/ws"
    assert Kontex("https://api.example", "k").live("s").url == "wss://api.example/ws"


# -- the real feed of kontex dev ----------------------------------------------------------------


@pytest.mark.e2e
def test_live_feed_of_kontex_dev_sync(client: Kontex) -> None:
    session = client.sessions.create("live")
    task = client.tasks.create(session.id, "t")
    with client.live(session.id) as feed:
        made = client.snapshots.create(
            task.id, "seen live", messages=[{"role": "user", "content": "hi"}]
        )
        deadline = time.monotonic() + 30
        while True:
            event = feed.next_event(timeout=max(0.1, deadline - time.monotonic()))
            if event.type == "snapshot.created":
                break
    assert event.session_id == session.id
    assert event.data["snapshot_id"] == made.id and event.data["label"] == "seen live"


@pytest.mark.e2e
def test_live_feed_of_kontex_dev_async(stack: DevStack, key: str) -> None:
    async def run() -> tuple[str, Any]:
        async with AsyncKontex(stack.base, key) as client:
            session = await client.sessions.create("live async")
            task = await client.tasks.create(session.id, "t")
            async with client.live(session.id) as feed:
                made = await client.snapshots.create(task.id, "async", messages=[])
                deadline = time.monotonic() + 30
                while True:
                    event = await feed.next_event(timeout=max(0.1, deadline - time.monotonic()))
                    if event.type == "snapshot.created":
                        return made.id, event.data["snapshot_id"]

    made, seen = asyncio.run(run())
    assert made == seen
