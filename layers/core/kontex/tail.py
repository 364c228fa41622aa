"""``kontex tail SESSION``: follow a session's live feed, one readable line per event.

A WebSocket client of the protocol in ``kontex.services.live``: authorize, subscribe, print
what arrives; reconnects with exponential backoff when the connection drops (the server
restarting, API Gateway's 2-hour limit), and gives up at once on a refused key or session.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import websockets
from websockets.asyncio.client import ClientConnection

DEFAULT_URL = "ws://127.0.0.1:8787/ws"
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# Ctrl-C closes the connection: the server's answer to the close is waited for this long, not
# the library's 10 s (then as long again for the socket), so `kontex tail` stops within seconds
# whatever the server is doing
CLOSE_SECONDS = 1.0


class Refused(Exception):
    """The server said no (bad key, unknown session): reconnecting would not help."""


def describe(event: dict[str, Any]) -> str:
    """One line for a pushed event."""
    data = event.get("data") or {}
    kind = str(event.get("type", "?"))
    when = data.get("updated_at") or data.get("created_at")
    if not when:
        when = datetime.now(UTC).isoformat()
    stamp = str(when).replace("+00:00", "Z")[:19] + "Z" if "T" in str(when) else str(when)
    if kind.startswith("snapshot."):
        parts = [data.get("snapshot_id") or data.get("id") or "?"]
        if data.get("task_id"):
            parts.append(f"task={data['task_id']}")
        if "token_total" in data:
            parts.append(f"tokens={data['token_total']}")
        usage = data.get("usage") or {}
        if usage.get("input_tokens") is not None or usage.get("output_tokens") is not None:
            parts.append(
                f"(in {usage.get('input_tokens', 0)} / out {usage.get('output_tokens', 0)})"
            )
        if "points" in data:
            parts.append(f"points={data['points']}")
        if data.get("label"):
            parts.append(json.dumps(data["label"], ensure_ascii=False))
    elif kind == "task.updated":
        parts = [data.get("id", "?"), f"status={data.get('status', '?')}"]
        if data.get("name"):
            parts.append(json.dumps(data["name"], ensure_ascii=False))
    elif kind == "session.updated":
        parts = [event.get("session_id", "?"), f"status={data.get('status', '?')}"]
        if data.get("name"):
            parts.append(json.dumps(data["name"], ensure_ascii=False))
    else:
        parts = [str(event.get("session_id", "?"))]
    return f"{stamp}  {kind:<17}  " + " ".join(str(p) for p in parts)


async def _request(
    ws: ClientConnection,
    request_id: str,
    action: str,
    data: dict,
    emit: Callable[[dict[str, Any]], None],
) -> dict:
    await ws.send(json.dumps({"id": request_id, "action": action, "data": data}))
    while True:
        message = json.loads(await ws.recv())
        if not isinstance(message, dict):
            continue
        if "type" in message:  # an event may arrive before the answer
            emit(message)
        elif message.get("id") == request_id and "success" in message:
            return message


async def _follow(
    url: str,
    key: str,
    session_id: str,
    emit: Callable[[dict[str, Any]], None],
    err: TextIO,
    followed: list[bool],
) -> None:
    """One connection: authorize, subscribe, emit events until it closes."""
    async with websockets.connect(
        url, open_timeout=10, close_timeout=CLOSE_SECONDS, max_size=2**20
    ) as ws:
        await ws.send(json.dumps({"authorization": key}))
        auth = json.loads(await ws.recv())
        if not auth.get("success"):
            raise Refused(auth.get("message") or auth.get("error") or "the key was refused")
        answer = await _request(ws, "subscribe", "subscribe", {"session_id": session_id}, emit)
        if not answer.get("success"):
            raise Refused(answer.get("message") or answer.get("error") or "subscribe failed")
        followed.append(True)
        print(f"kontex tail: following {session_id} at {url} (Ctrl-C to stop)", file=err)
        async for raw in ws:
            message = json.loads(raw)
            if isinstance(message, dict) and "type" in message:
                emit(message)


async def tail(
    url: str,
    key: str,
    session_id: str,
    *,
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    first_backoff: float = FIRST_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
) -> int:
    """Follow until cancelled (Ctrl-C); returns 2 when the server refuses."""
    out, err = out or sys.stdout, err or sys.stderr

    def emit(event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":")) if as_json else describe(event)
        print(line, file=out, flush=True)

    backoff = first_backoff
    while True:
        followed: list[bool] = []
        try:
            await _follow(url, key, session_id, emit, err, followed)
            reason = "the server closed the connection"
        except Refused as refused:
            print(f"kontex tail: {refused}", file=err)
            return 2
        except (
            OSError,
            TimeoutError,
            websockets.ConnectionClosed,
            websockets.InvalidHandshake,
        ) as e:
            if _stopping():
                raise asyncio.CancelledError from e  # Ctrl-C, however the library said it
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        if followed:  # it was following: start the backoff again
            backoff = first_backoff
        print(f"kontex tail: {reason}; reconnecting in {backoff:.1f} s", file=err, flush=True)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff)


def _stopping() -> bool:
    """Whether this task is being cancelled (Ctrl-C: ``asyncio.run`` cancels it). A cancellation
    that reaches a connection's closing may come out as ``TimeoutError`` or ``ConnectionClosed``
    (Python 3.11's ``asyncio.timeout`` turns a cancellation that meets its deadline into
    ``TimeoutError``): reconnecting then would follow on forever after Ctrl-C."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def run(url: str, key: str, session_id: str, as_json: bool = False) -> int:
    """The CLI entry: exits 0 on Ctrl-C."""
    try:
        return asyncio.run(tail(url, key, session_id, as_json=as_json))
    except KeyboardInterrupt:
        return 0
