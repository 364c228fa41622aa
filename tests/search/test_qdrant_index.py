"""The Qdrant adapter: local mode on disk (as `kontex dev` runs it), tenancy at the index,
queries limited to some points, deletes by id within an account, batches, and a server that
is down."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from kontex.adapters.qdrant_index import QdrantIndex
from kontex.domain.errors import KontexError, Transient
from kontex.ports import IndexFilter, IndexQuery, Point
from kontex.services import lexical


def _point(account: str, session: str, text: str, dense: list[float]) -> Point:
    payload = {"account_id": account, "session_id": session, "task_id": "t", "source": "message",
               "text": text}  # fmt: skip
    return Point(str(uuid.uuid4()), dense, lexical.document_vector(text), payload)


def _unit(i: int) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(4)]


def test_local_mode_on_disk_keeps_points_and_filters_every_query(tmp_path: Path) -> None:
    index = QdrantIndex("kontex_test", 4, path=tmp_path / "qdrant")
    a = [
        _point("acct_a", "s1", f"deploy step {i} parse_jwt_claims", _unit(i % 4))
        for i in range(300)
    ]
    b = [_point("acct_b", "s9", "parse_jwt_claims in bob's code", _unit(0))]
    index.upsert(a + b)  # one call: batched writes, not point by point
    assert index.count("acct_a") == 300 and index.count("acct_b") == 1
    assert index.existing([a[0].id, b[0].id, str(uuid.uuid4())]) == {a[0].id, b[0].id}
    index.close()

    reopened = QdrantIndex("kontex_test", 4, path=tmp_path / "qdrant")
    for mode in ("hybrid", "dense", "sparse"):
        sparse = lexical.query_vector("parse_jwt_claims")
        hits = reopened.query(IndexQuery(IndexFilter("acct_b"), 10, _unit(0), sparse, mode))
        assert [h.payload["account_id"] for h in hits] == ["acct_b"], mode
    sparse = lexical.query_vector("parse_jwt_claims")
    hits = reopened.query(IndexQuery(IndexFilter("acct_a"), 10, _unit(0), sparse))
    assert len(hits) == 10 and {h.payload["account_id"] for h in hits} == {"acct_a"}
    reopened.close()


def test_queries_limited_to_points_and_deletes_stay_in_the_account(tmp_path: Path) -> None:
    index = QdrantIndex("kontex_test", 4, path=":memory:")  # type: ignore[arg-type]
    one, two = _point("acct_a", "s1", "one", _unit(0)), _point("acct_a", "s2", "two", _unit(1))
    bobs = _point("acct_b", "s1", "bob's", _unit(0))
    index.upsert([one, two, bobs])
    # a session's or task's points, as the store names them: only those answer
    hits = index.query(
        IndexQuery(IndexFilter("acct_a", point_ids=frozenset({two.id})), 5, _unit(0))
    )
    assert [h.id for h in hits] == [two.id]
    # another account's point named in the filter is still not this account's
    where = IndexFilter("acct_a", point_ids=frozenset({bobs.id}))
    assert index.query(IndexQuery(where, 5, _unit(0))) == []
    # a delete names ids, and only the account's go
    index.delete("acct_a", [one.id, bobs.id])
    assert index.count("acct_a") == 1 and index.count("acct_b") == 1
    index.delete("acct_a", [])  # nothing to do


def test_a_collection_of_another_size_is_refused(tmp_path: Path) -> None:
    QdrantIndex("kontex_test", 4, path=tmp_path / "q").upsert([_point("a", "s", "x", _unit(0))])
    with pytest.raises(KontexError, match="dimension"):
        QdrantIndex("kontex_test", 8, path=tmp_path / "q").count()


def test_a_server_that_is_down_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    index = QdrantIndex("kontex", 4, url=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(Transient):
        index.query(IndexQuery(IndexFilter("acct_a"), 5, _unit(0)))


def test_local_mode_commits_without_an_fsync_per_point(tmp_path: Path) -> None:
    """Local mode commits each point: in WAL with synchronous=NORMAL, not an fsync each."""
    point = _point("acct_a", "s1", "one", _unit(0))
    for _ in range(2):  # made, then reopened
        index = QdrantIndex("kontex_test", 4, path=tmp_path / "qdrant")
        index.upsert([point])
        storage = index.client._client.collections["kontex_test"].storage.storage
        assert storage.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert storage.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert index.count("acct_a") == 1  # the same point, upserted again
        index.close()


def test_a_new_collection_keeps_its_dense_vectors_on_disk_and_an_int8_copy_in_ram() -> None:
    """What sizes a deployment's Qdrant nodes (docs/cost.md): the server is asked for scalar
    quantization (int8, in RAM) with the float32 originals on disk. Local mode ignores the
    quantization, so the request itself is what is checked."""
    from qdrant_client import QdrantClient, models

    asked: dict[str, object] = {}

    class Recording(QdrantClient):
        def create_collection(self, collection_name: str, **kwargs: Any) -> bool:  # type: ignore[override]
            asked.update(kwargs)
            return super().create_collection(collection_name, **kwargs)

    index = QdrantIndex("kontex", 4, client=Recording(location=":memory:"))
    index.upsert([_point("acc_a", "ses_1", "a fact", _unit(0))])

    dense = asked["vectors_config"]["dense"]  # type: ignore[index]
    assert dense.on_disk is True
    quantization = asked["quantization_config"]
    assert isinstance(quantization, models.ScalarQuantization)
    assert quantization.scalar.type == models.ScalarType.INT8
    assert quantization.scalar.always_ram is True
    # and the points are found as before
    hits = index.query(IndexQuery(IndexFilter("acc_a"), limit=1, dense=_unit(0), mode="dense"))
    assert [h.payload["text"] for h in hits] == ["a fact"]
