"""The live feed over WebSocket (docs/design.md, "Public contracts"): authorize with the first
frame, subscribe to a session, then read pushed events (``snapshot.created``,
``snapshot.enriched``, ``snapshot.embedded``, ``session.updated``, ``task.updated``)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from kontex_client._api_models import LiveEvent
from kontex_client._errors import KontexError, error_for


def live_url(base_url: str, given: str | None = None) -> str:
    """``ws(s)://host/ws`` of the API's base URL, unless a WebSocket URL is given (on AWS the
    WebSocket API has its own URL: the stack output ``WebSocketUrl``)."""
    if given:
        return given
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :] + "/ws"
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://") :] + "/ws"
    return base_url.rstrip("/") + "/ws"


def _decode(frame: str | bytes) -> dict[str, Any]:
    data = json.loads(frame)
    if not isinstance(data, dict):
        raise KontexError("the live feed sent a frame that is not an object", code="protocol")
    return data


def _refused(answer: dict[str, Any], what: str) -> KontexError:
    """The error of a refused frame (``{"success": false, "error": <code>, "message"}``)."""
    code = str(answer.get("error") or ("unauthorized" if what == "authorization" else "refused"))
    body = {"error": code, "message": f"live feed {what}: {answer.get('message') or code}"}
    return error_for(0, {**body, "details": answer})


class LiveFeed:
    """Events of one session as they happen: ``for event in client.live(session_id)``.

    Connects on first use (or ``with``), ends when closed. ``next_event(timeout)`` waits at
    most ``timeout`` seconds (raises ``TimeoutError``)."""

    def __init__(
        self, url: str, api_key: str | None, session_id: str, open_timeout: float = 10.0
    ) -> None:
        self.url, self.api_key, self.session_id = url, api_key, session_id
        self.open_timeout = open_timeout
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._events: list[LiveEvent] = []

    def connect(self) -> LiveFeed:
        from websockets.sync.client import connect

        if self._ws is not None:
            return self
        self._ws = connect(self.url, open_timeout=self.open_timeout)
        self._ws.send(json.dumps({"authorization": self.api_key or ""}))
        answer = _decode(self._ws.recv(timeout=self.open_timeout))
        if answer.get("success") is not True:
            self.close()
            raise _refused(answer, "authorization")
        self.request("subscribe", {"session_id": self.session_id})
        return self

    def request(self, action: str, data: dict[str, Any]) -> Any:
        """Send an action and wait for its answer (events meanwhile are kept for later)."""
        request_id = f"c{next(self._ids)}"
        self._ws.send(json.dumps({"id": request_id, "action": action, "data": data}))
        while True:
            frame = _decode(self._ws.recv(timeout=self.open_timeout))
            if frame.get("id") == request_id:
                if frame.get("success") is not True:
                    raise _refused(frame, action)
                return frame.get("data")
            if "type" in frame:
                self._events.append(LiveEvent.model_validate(frame))

    def next_event(self, timeout: float | None = None) -> LiveEvent:
        self.connect()
        if self._events:
            return self._events.pop(0)
        while True:
            frame = _decode(self._ws.recv(timeout=timeout))
            if "type" in frame:
                return LiveEvent.model_validate(frame)

    def __iter__(self) -> LiveFeed:
        return self

    def __next__(self) -> LiveEvent:
        from websockets.exceptions import ConnectionClosed

        try:
            return self.next_event()
        except ConnectionClosed:
            raise StopIteration from None

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def __enter__(self) -> LiveFeed:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncLiveFeed:
    """``async for event in client.live(session_id)``; see ``LiveFeed``."""

    def __init__(
        self, url: str, api_key: str | None, session_id: str, open_timeout: float = 10.0
    ) -> None:
        self.url, self.api_key, self.session_id = url, api_key, session_id
        self.open_timeout = open_timeout
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._events: list[LiveEvent] = []

    async def _recv(self, timeout: float | None) -> dict[str, Any]:
        import asyncio

        return _decode(await asyncio.wait_for(self._ws.recv(), timeout))

    async def connect(self) -> AsyncLiveFeed:
        from websockets.asyncio.client import connect

        if self._ws is not None:
            return self
        self._ws = await connect(self.url, open_timeout=self.open_timeout)
        await self._ws.send(json.dumps({"authorization": self.api_key or ""}))
        answer = await self._recv(self.open_timeout)
        if answer.get("success") is not True:
            await self.aclose()
            raise _refused(answer, "authorization")
        await self.request("subscribe", {"session_id": self.session_id})
        return self

    async def request(self, action: str, data: dict[str, Any]) -> Any:
        request_id = f"c{next(self._ids)}"
        await self._ws.send(json.dumps({"id": request_id, "action": action, "data": data}))
        while True:
            frame = await self._recv(self.open_timeout)
            if frame.get("id") == request_id:
                if frame.get("success") is not True:
                    raise _refused(frame, action)
                return frame.get("data")
            if "type" in frame:
                self._events.append(LiveEvent.model_validate(frame))

    async def next_event(self, timeout: float | None = None) -> LiveEvent:
        await self.connect()
        if self._events:
            return self._events.pop(0)
        while True:
            frame = await self._recv(timeout)
            if "type" in frame:
                return LiveEvent.model_validate(frame)

    def __aiter__(self) -> AsyncLiveFeed:
        return self

    async def __anext__(self) -> LiveEvent:
        from websockets.exceptions import ConnectionClosed

        try:
            return await self.next_event()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def __aenter__(self) -> AsyncLiveFeed:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
