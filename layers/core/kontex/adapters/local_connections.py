"""The ``Connections`` port on `kontex dev`'s open WebSockets (the local Management API).

The server registers each accepted socket with the event loop serving it and a queue its
sender task drains; ``post`` and ``close`` may be called from any thread (the live handler and
the feed worker run on worker threads) and hand the frame to that loop.
"""

from __future__ import annotations

import asyncio
import threading

from kontex.ports import ConnectionGone

CLOSE = None  # what the sender task reads as "close the socket"


class LocalConnections:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue[bytes | None]]] = {}

    def attach(
        self,
        connection_id: str,
        loop: asyncio.AbstractEventLoop,
        outgoing: asyncio.Queue[bytes | None],
    ) -> None:
        with self._lock:
            self._open[connection_id] = (loop, outgoing)

    def detach(self, connection_id: str) -> None:
        with self._lock:
            self._open.pop(connection_id, None)

    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def _hand(self, connection_id: str, item: bytes | None) -> None:
        with self._lock:
            found = self._open.get(connection_id)
        if found is None:
            raise ConnectionGone(connection_id)
        loop, outgoing = found
        try:
            loop.call_soon_threadsafe(outgoing.put_nowait, item)
        except RuntimeError:  # the loop has closed: the server is stopping
            raise ConnectionGone(connection_id) from None

    def post(self, connection_id: str, data: bytes) -> None:
        self._hand(connection_id, bytes(data))

    def close(self, connection_id: str) -> None:
        self._hand(connection_id, CLOSE)
