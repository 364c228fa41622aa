"""kontex dev's link to the one process that holds Qdrant's local folder and the model
(adapters/local_index.py): calls round-trip, errors keep their kind, strangers are refused, and
both ends of the link send at once (TCP_NODELAY)."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import AuthenticationError, Client
from typing import Any

import pytest

from kontex.adapters.local_index import IndexServer, RemoteEmbedder, RemoteIndex, connect
from kontex.domain.errors import KontexError, Transient
from kontex.ports import IndexFilter, IndexHit, IndexQuery, Point, SparseVector


class FakeEmbedder:
    name, dimensions, max_chars = "fake", 2, 100

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        if text == "down":
            raise Transient("the embedder is down")
        return [float(len(text)), 0.0]


class FakeIndex:
    def __init__(self) -> None:
        self.points: dict[str, Point] = {}

    def upsert(self, points: Sequence[Point]) -> None:
        self.points.update({p.id: p for p in points})

    def existing(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.points}

    def query(self, q: IndexQuery) -> list[IndexHit]:
        if q.mode == "boom":
            raise RuntimeError("qdrant fell over")
        found = [p for p in self.points.values() if p.payload["account_id"] == q.where.account_id]
        return [IndexHit(p.id, 1.0, p.payload) for p in found][: q.limit]

    def delete(self, account_id: str, ids: Sequence[str]) -> None:
        self.points = {
            k: p
            for k, p in self.points.items()
            if p.payload["account_id"] != account_id or k not in ids
        }

    def count(self, account_id: str | None = None) -> int:
        return len(self.points)


@pytest.fixture
def served() -> Iterator[tuple[IndexServer, bytes, FakeIndex]]:
    key = secrets.token_hex(8).encode()
    index = FakeIndex()
    server = IndexServer(index, FakeEmbedder(), key)  # type: ignore[arg-type]
    yield server, key, index
    server.close()


def _point(n: int, account: str = "acct_a", text: str = "x") -> Point:
    payload = {"account_id": account, "session_id": "sess_1", "text": text}
    return Point(f"00000000-0000-0000-0000-{n:012d}", [1.0, 0.0], SparseVector([1], [1.0]), payload)


def test_calls_round_trip_through_the_server(served: tuple[IndexServer, bytes, Any]) -> None:
    server, key, index = served
    embedder, remote = RemoteEmbedder(server.address, key), RemoteIndex(server.address, key)
    assert (embedder.name, embedder.dimensions, embedder.max_chars) == ("fake", 2, 100)
    assert embedder.embed_documents(["ab", "abc"]) == [[2.0, 1.0], [3.0, 1.0]]

    remote.upsert([_point(1), _point(2, account="acct_b")])
    assert remote.existing([_point(1).id, "nope"]) == {_point(1).id}
    hits = remote.query(IndexQuery(IndexFilter("acct_a"), 10, [1.0, 0.0]))
    assert [h.id for h in hits] == [_point(1).id]
    remote.delete("acct_a", [_point(1).id, _point(2).id])
    assert remote.count() == 1 and set(index.points) == {_point(2).id}


def test_errors_keep_their_kind(served: tuple[IndexServer, bytes, Any]) -> None:
    server, key, _ = served
    with pytest.raises(Transient, match="the embedder is down"):
        RemoteEmbedder(server.address, key).embed_query("down")
    with pytest.raises(Transient, match="qdrant fell over"):  # unexpected: a 503, not a 500
        RemoteIndex(server.address, key).query(IndexQuery(IndexFilter("a"), 1, mode="boom"))
    with pytest.raises(KontexError, match="no such call"):
        connect(server.address, key).call("index", "__init__")


def test_a_client_without_the_key_is_refused(served: tuple[IndexServer, bytes, Any]) -> None:
    server, _, _ = served
    host, _, port = server.address.rpartition(":")
    with pytest.raises(AuthenticationError):
        Client((host, int(port)), authkey=b"not the key")


def _nodelay(fileno: int) -> int:
    sock = socket.socket(fileno=fileno)
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.detach()


def test_both_ends_send_without_waiting_for_acks(served: tuple[IndexServer, bytes, Any]) -> None:
    """A message over 16 KiB goes as two writes (length, body): with Nagle's algorithm each
    large answer (a search's hits) waited 40 ms for a delayed ACK."""
    server, key, index = served
    remote = RemoteIndex(server.address, key)
    remote.upsert([_point(n, text="y" * 2000) for n in range(20)])  # a 40 KB answer
    assert len(remote.query(IndexQuery(IndexFilter("acct_a"), 20))) == 20

    link = connect(server.address, key)
    assert link._conn is not None and _nodelay(link._conn.fileno())
    accepted = server._accepted
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert accepted and all(_nodelay(conn.fileno()) for conn in accepted)
