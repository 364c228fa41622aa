"""`kontex tail`'s client against an in-process WebSocket server that speaks the protocol:
readable lines, raw JSON, reconnecting after a drop, giving up on a refusal."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from kontex.tail import describe, tail

EVENT = {
    "id": "evt_1",
    "type": "snapshot.created",
    "session_id": "sess_1",
    "data": {
        "snapshot_id": "snap_1",
        "task_id": "task_1",
        "label": "read the code",
        "token_total": 42,
        "usage": {"input_tokens": 30, "output_tokens": 12},
        "created_at": "2026-11-22T00:17:07.760477Z",
    },
}


def test_one_readable_line_per_event() -> None:
    assert describe(EVENT) == (
        "2026-11-22T00:17:07Z  snapshot.created   snap_1 task=task_1 tokens=42 (in 30 / out 12)"
        ' "read the code"'
    )
    task = {
        "type": "task.updated",
        "session_id": "sess_1",
        "data": {
            "id": "task_1",
            "status": "completed",
            "name": "plan",
            "updated_at": "2026-11-22T01:00:00Z",
        },
    }
    assert (
        describe(task) == '2026-11-22T01:00:00Z  task.updated       task_1 status=completed "plan"'
    )
    purged = describe(
        {"type": "session.purged", "session_id": "sess_9", "data": {"session_id": "sess_9"}}
    )
    assert purged.endswith("session.purged     sess_9")


class Server:
    """Accepts one key; the first connection drops right after its first event."""

    def __init__(self) -> None:
        self.connections = 0
        self.subscribed: list[str] = []

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        auth = json.loads(await ws.recv())
        if auth.get("authorization") != "kontex_good":
            await ws.send(
                json.dumps(
                    {
                        "success": False,
                        "error": "unauthorized",
                        "message": "a valid API key is required",
                    }
                )
            )
            await ws.close()
            return
        await ws.send(json.dumps({"success": True}))
        request = json.loads(await ws.recv())
        session = request["data"]["session_id"]
        if session != "sess_1":
            answer = {
                "id": request["id"],
                "success": False,
                "error": "not_found",
                "message": f"session {session} not found",
            }
            await ws.send(json.dumps(answer))
            return
        self.subscribed.append(session)
        await ws.send(json.dumps({**EVENT, "id": f"evt_{self.connections}"}))  # before the answer
        await ws.send(
            json.dumps({"id": request["id"], "success": True, "data": {"session_id": session}})
        )
        if self.connections == 1:
            await ws.close(1011)  # a drop: the client must come back
            return
        await ws.send(json.dumps({**EVENT, "id": "evt_late", "type": "snapshot.enriched"}))
        await ws.wait_closed()  # stay open until the client goes


async def _run(
    session: str, key: str, as_json: bool, lines: int
) -> tuple[int | None, Server, io.StringIO, io.StringIO]:
    server = Server()
    out, err = io.StringIO(), io.StringIO()
    async with serve(server.handler, "127.0.0.1", 0) as running:
        port = running.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}"
        task = asyncio.create_task(
            tail(url, key, session, as_json=as_json, out=out, err=err, first_backoff=0.01)
        )
        code: int | None = None
        for _ in range(500):
            if task.done():
                code = task.result()
                break
            if len(out.getvalue().splitlines()) >= lines:
                break
            await asyncio.sleep(0.01)
        if not task.done():
            task.cancel()  # what Ctrl-C does
            with pytest.raises(asyncio.CancelledError):
                await task
    return code, server, out, err


@pytest.mark.timeout(60)
def test_it_reconnects_after_a_drop_and_keeps_printing() -> None:
    code, server, out, err = asyncio.run(_run("sess_1", "kontex_good", as_json=True, lines=3))
    assert code is None and server.connections == 2 and server.subscribed == ["sess_1", "sess_1"]
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["id"] for e in printed] == ["evt_1", "evt_2", "evt_late"]
    assert "reconnecting" in err.getvalue()


@pytest.mark.parametrize(
    ("session", "key", "says"),
    [
        ("sess_1", "kontex_bad", "a valid API key is required"),
        ("sess_x", "kontex_good", "session sess_x not found"),
    ],
)
@pytest.mark.timeout(60)
def test_a_refusal_ends_it_with_status_2(session: str, key: str, says: str) -> None:
    code, server, out, err = asyncio.run(_run(session, key, as_json=False, lines=1))
    assert code == 2 and server.connections == 1 and out.getvalue() == ""
    assert says in err.getvalue()


def test_the_cli_needs_a_key(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from kontex.cli import main

    monkeypatch.delenv("KONTEX_API_KEY", raising=False)
    assert main(["tail", "sess_1"]) == 2
    assert "--api-key" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_ctrl_c_stops_it_even_when_the_closing_connection_says_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cancellation (Ctrl-C) that meets a connection's closing may come out of the library
    as ``TimeoutError`` (Python 3.11's ``asyncio.timeout``): it stops, it does not reconnect
    (CI saw `kontex tail` follow on for 20 s after SIGINT)."""
    import kontex.tail

    follows: list[int] = []

    async def follow(*args: Any) -> None:
        follows.append(1)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise TimeoutError from None  # what a cancelled close_timeout may raise

    monkeypatch.setattr(kontex.tail, "_follow", follow)

    async def main() -> None:
        err = io.StringIO()
        task = asyncio.create_task(tail("ws://x", "k", "s", err=err, first_backoff=0.01))
        await asyncio.sleep(0.05)
        task.cancel()  # what Ctrl-C does
        done, _ = await asyncio.wait([task], timeout=2)
        assert done, f"still following after the cancellation: {err.getvalue()!r}"
        assert task.cancelled()

    asyncio.run(main())
    assert follows == [1]


@pytest.mark.timeout(60)
def test_ctrl_c_does_not_wait_long_for_a_server_that_never_answers_the_close() -> None:
    """A server that answers the handshake, the key and the subscription, then nothing (not the
    close frame either): Ctrl-C still ends `kontex tail` within a few seconds (it waited 10 s for
    the close's answer and 10 more for the socket)."""
    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol = ServerProtocol()
        protocol.receive_data(await reader.read(65536))
        request = protocol.events_received()[0]
        assert isinstance(request, Request)
        protocol.send_response(protocol.accept(request))
        writer.write(b"".join(protocol.data_to_send()))
        for answer in ({"success": True}, {"id": "subscribe", "success": True}):
            protocol.receive_data(await reader.read(65536))  # the key, then the subscription
            protocol.events_received()
            protocol.send_text(json.dumps(answer).encode())
            writer.write(b"".join(protocol.data_to_send()))
        while await reader.read(65536):  # the close frame too: never answered
            pass

    async def main() -> float:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        err = io.StringIO()
        task = asyncio.create_task(tail(f"ws://127.0.0.1:{port}", "k", "s", err=err))
        for _ in range(500):
            if "following" in err.getvalue():
                break
            await asyncio.sleep(0.01)
        assert "following" in err.getvalue(), err.getvalue()
        started = asyncio.get_running_loop().time()
        task.cancel()  # what Ctrl-C does
        done, _ = await asyncio.wait([task], timeout=8)
        server.close()
        assert done, "still closing 8 s after Ctrl-C"
        return asyncio.get_running_loop().time() - started

    asyncio.run(main())
