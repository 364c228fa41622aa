"""``kontex dev``: one process holds Qdrant's local folder, the API's processes reach it.

Qdrant local mode locks its folder for one client. ``kontex dev`` runs the embed worker in its
main process and the API in worker processes (``kontex/local/server.py``), so the main process
holds the ``QdrantIndex`` and serves it here (``IndexServer``: ``multiprocessing.connection``
on 127.0.0.1 with a random key), and each API process uses a ``RemoteIndex``: the same port,
each call sent over one kept connection. On AWS both sides reach a Qdrant server instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from kontex.domain.errors import KontexError, Transient
from kontex.ports import IndexFilter, IndexHit, Point, SparseVector, VectorIndex

log = logging.getLogger("kontex.dev")
CALLS = ("upsert", "existing", "query", "delete_session", "count")


class IndexServer:
    def __init__(self, index: VectorIndex, authkey: bytes, host: str = "127.0.0.1") -> None:
        self.index = index
        self._listener = Listener((host, 0), authkey=authkey)
        host_, port = self._listener.address
        self.address = f"{host_}:{port}"
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="kontex-index")
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn = self._listener.accept()
            except Exception:  # closed, or a client that failed the handshake
                if self._closed.is_set():
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    name, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if name not in CALLS:
                        raise KontexError(f"no such index call: {name}")
                    conn.send(("ok", getattr(self.index, name)(*args)))
                except KontexError as error:
                    conn.send(("error", (type(error).__name__, error.message)))
                except Exception as error:
                    log.exception("the local index failed")
                    conn.send(("error", ("Transient", f"the local index failed: {error}")))

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


class RemoteIndex:
    def __init__(self, address: str, authkey: bytes) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host, int(port))
        self._authkey = authkey
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = Client(self._address, authkey=self._authkey)
                self._conn.send((name, args))
                status, value = self._conn.recv()
            except (OSError, EOFError) as error:
                self._conn = None
                raise Transient("the local index is unavailable") from error
        if status == "ok":
            return value
        kind, message = value
        raise (Transient if kind == "Transient" else KontexError)(message)

    def upsert(self, points: Sequence[Point]) -> None:
        self._call("upsert", list(points))

    def existing(self, ids: Sequence[str]) -> set[str]:
        return set(self._call("existing", list(ids)))

    def query(
        self,
        dense: list[float] | None,
        sparse: SparseVector | None,
        where: IndexFilter,
        limit: int,
        mode: str = "hybrid",
    ) -> list[IndexHit]:
        return list(self._call("query", dense, sparse, where, limit, mode))

    def delete_session(self, account_id: str, session_id: str) -> None:
        self._call("delete_session", account_id, session_id)

    def count(self, account_id: str | None = None) -> int:
        return int(self._call("count", account_id))
