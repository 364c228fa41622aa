"""``kontex dev``: one process holds Qdrant's local folder and the model, the others reach them.

Qdrant local mode locks its folder for one client. ``kontex dev`` runs the embed worker in a
search process of its own (``kontex/local/search_process.py``), which holds the ``QdrantIndex``
and the embedder and serves both here (``IndexServer``: ``multiprocessing.connection`` on
127.0.0.1 with a random key); the server's process and the API's worker processes each use a
``RemoteIndex`` and a ``RemoteEmbedder``: the same ports, each call sent over one kept
connection (one model in memory, loaded once, instead of one per process). On AWS both sides
reach a Qdrant server and Voyage AI (or load the model) themselves.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Sequence
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from kontex.domain.errors import KontexError, Transient
from kontex.ports import Embedder, IndexHit, IndexQuery, Point, VectorIndex

log = logging.getLogger("kontex.dev")
CALLS = {
    "index": ("upsert", "existing", "query", "delete", "count"),
    "embedder": ("embed_documents", "embed_query", "describe"),
}


def no_delay(conn: Connection) -> None:
    """TCP_NODELAY on a ``multiprocessing.connection`` socket. It sends a message over 16 KiB
    as two writes (length, then body): with Nagle's algorithm the body waited for the ACK of
    the length, which the reader delays by 40 ms (a search's hits are such a message)."""
    sock = socket.socket(fileno=conn.fileno())
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finally:
        sock.detach()  # the connection keeps its descriptor


class IndexServer:
    def __init__(
        self, index: VectorIndex, embedder: Embedder, authkey: bytes, host: str = "127.0.0.1"
    ) -> None:
        self.index = index
        self.embedder = embedder
        self._listener = Listener((host, 0), authkey=authkey)
        host_, port = self._listener.address
        self.address = f"{host_}:{port}"
        self._closed = threading.Event()
        self._accepted: list[Connection] = []  # open connections (tests read them)
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
            no_delay(conn)
            self._accepted.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            self._serve_calls(conn)
        finally:
            self._accepted.remove(conn)

    def _serve_calls(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    target, name, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if name not in CALLS.get(target, ()):
                        raise KontexError(f"no such call: {target}.{name}")
                    conn.send(("ok", self._run(target, name, args)))
                except KontexError as error:
                    conn.send(("error", (type(error).__name__, error.message)))
                except Exception as error:
                    log.exception("the local index failed")
                    conn.send(("error", ("Transient", f"the local index failed: {error}")))

    def _run(self, target: str, name: str, args: tuple[Any, ...]) -> Any:
        if target == "embedder" and name == "describe":
            e = self.embedder
            return {"name": e.name, "dimensions": e.dimensions, "max_chars": e.max_chars}
        return getattr(self.index if target == "index" else self.embedder, name)(*args)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


class ServerLink:
    """One kept connection to the ``IndexServer``; calls are serialised on it."""

    def __init__(self, address: str, authkey: bytes) -> None:
        host, _, port = address.rpartition(":")
        self._address = (host, int(port))
        self._authkey = authkey
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def call(self, target: str, name: str, *args: Any) -> Any:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = Client(self._address, authkey=self._authkey)
                    no_delay(self._conn)
                self._conn.send((target, name, args))
                status, value = self._conn.recv()
            except (OSError, EOFError) as error:
                self._conn = None
                raise Transient("the local index is unavailable") from error
        if status == "ok":
            return value
        kind, message = value
        raise (Transient if kind == "Transient" else KontexError)(message)


_connections: dict[str, ServerLink] = {}


def connect(address: str, authkey: bytes) -> ServerLink:
    """The process's one connection to the server at ``address``."""
    if address not in _connections:
        _connections[address] = ServerLink(address, authkey)
    return _connections[address]


class RemoteEmbedder:
    def __init__(self, address: str, authkey: bytes) -> None:
        self._conn = connect(address, authkey)
        self._described: dict[str, Any] | None = None

    def _describe(self, key: str) -> Any:
        if self._described is None:
            self._described = self._conn.call("embedder", "describe")
        return self._described[key]

    @property
    def name(self) -> str:
        return str(self._describe("name"))

    @property
    def dimensions(self) -> int:
        return int(self._describe("dimensions"))

    @property
    def max_chars(self) -> int:
        return int(self._describe("max_chars"))

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return list(self._conn.call("embedder", "embed_documents", list(texts)))

    def embed_query(self, text: str) -> list[float]:
        return list(self._conn.call("embedder", "embed_query", text))


class RemoteIndex:
    def __init__(self, address: str, authkey: bytes) -> None:
        self._conn = connect(address, authkey)

    def _call(self, name: str, *args: Any) -> Any:
        return self._conn.call("index", name, *args)

    def upsert(self, points: Sequence[Point]) -> None:
        self._call("upsert", list(points))

    def existing(self, ids: Sequence[str]) -> set[str]:
        return set(self._call("existing", list(ids)))

    def query(self, q: IndexQuery) -> list[IndexHit]:
        return list(self._call("query", q))

    def delete(self, account_id: str, ids: Sequence[str]) -> None:
        self._call("delete", account_id, list(ids))

    def count(self, account_id: str | None = None) -> int:
        return int(self._call("count", account_id))
