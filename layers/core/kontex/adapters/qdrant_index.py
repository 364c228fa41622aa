"""The ``VectorIndex`` port on Qdrant: a server (``QDRANT_URL``) on AWS, local mode in a folder
for ``kontex dev``.

One collection for every account: a named dense vector (``dense``, cosine) and a named sparse
vector (``sparse``, with Qdrant's ``IDF`` modifier over the BM25-style weights of
``services/lexical.py``). A point is one distinct piece of an account's content (the store maps
it back to the snapshots holding it). ``account_id`` is a keyword payload index marked
``is_tenant`` (Qdrant lays each tenant's points out together), and every query, count and
delete filters on it; a query limited to a session or task names its points. On a server the
dense vectors are kept on disk and searched through an int8 copy held in RAM (scalar
quantization, rescored with the originals): a quarter of the RAM of float32 vectors, which is
what sizes the Qdrant nodes of a deployment (docs/cost.md); local mode ignores both. A hybrid query
prefetches the dense and the sparse candidates (both filtered) and fuses them by reciprocal rank
(Query API). Local mode writes each upsert call as one batch; it commits point by point on
disk (its SQLite file switched to WAL, so without an fsync each), so callers send whole
snapshots, not single points.
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kontex.domain.errors import KontexError, Transient
from kontex.ports import IndexFilter, IndexHit, IndexQuery, Point

DENSE = "dense"
SPARSE = "sparse"
UPSERT_BATCH = 256


def _unavailable(error: Exception) -> Transient:
    return Transient(f"the vector store is unavailable: {type(error).__name__}")


class QdrantIndex:
    def __init__(
        self,
        collection: str,
        dimensions: int,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: Path | None = None,
        client: Any = None,
        timeout: float = 10.0,
    ) -> None:
        """``url`` (a server) or ``path`` (local mode) or ``client``; ``:memory:`` for tests."""
        self.collection = collection
        self.dimensions = dimensions
        self._url, self._api_key, self._path, self._timeout = url, api_key, path, timeout
        self._client = client
        self._ready = False
        self._lock = threading.RLock()

    # -- the client and the collection ----------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from qdrant_client import QdrantClient

            if self._url:
                self._client = QdrantClient(  # no version check: no call until the first use
                    url=self._url,
                    api_key=self._api_key,
                    timeout=int(self._timeout),
                    check_compatibility=False,
                )
            elif self._path is not None and str(self._path) == ":memory:":
                self._client = QdrantClient(location=":memory:")
            elif self._path is not None:
                self._path.mkdir(parents=True, exist_ok=True, mode=0o700)
                try:
                    self._client = QdrantClient(path=str(self._path))
                except RuntimeError as error:  # another process holds the local folder
                    raise Transient(f"the local vector store is busy: {error}") from error
            else:
                raise KontexError("no vector store configured (QDRANT_URL or a data dir)")
        return self._client

    def _ensure(self) -> None:
        if self._ready:
            return
        from qdrant_client import models

        with self._lock:
            if self._ready:
                return
            client = self.client
            if not client.collection_exists(self.collection):
                try:
                    client.create_collection(
                        self.collection,
                        vectors_config={
                            DENSE: models.VectorParams(
                                size=self.dimensions,
                                distance=models.Distance.COSINE,
                                on_disk=True,
                            )
                        },
                        sparse_vectors_config={
                            SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                        },
                        quantization_config=models.ScalarQuantization(
                            scalar=models.ScalarQuantizationConfig(
                                type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                            )
                        ),
                    )
                except Exception:  # another writer made it meanwhile
                    if not client.collection_exists(self.collection):
                        raise
            else:
                info = client.get_collection(self.collection)
                dense = info.config.params.vectors
                size = dense[DENSE].size if isinstance(dense, dict) else None
                if size != self.dimensions:
                    raise KontexError(
                        f"collection {self.collection} holds {size}-dimension vectors, the"
                        f" embedder makes {self.dimensions}: use another collection"
                        " (KONTEX_QDRANT_COLLECTION) and `kontex reindex`"
                    )
            self._relax_local_storage()
            with warnings.catch_warnings():  # local mode: payload indexes have no effect
                warnings.simplefilter("ignore")
                for field, schema in (
                    ("account_id", models.KeywordIndexParams(type="keyword", is_tenant=True)),
                    ("source", models.PayloadSchemaType.KEYWORD),
                ):
                    client.create_payload_index(self.collection, field, field_schema=schema)
            self._ready = True

    def _relax_local_storage(self) -> None:
        """Local mode keeps points in a SQLite file and commits each point on its own: in
        SQLite's default journal that is an fsync per point (36 ms a snapshot on a busy disk,
        the embed worker's largest cost after the model). WAL with ``synchronous=NORMAL``, as
        Kontex's own database runs: a commit survives a crash of the process, not always a
        power loss; a point lost so is embedded again by the next snapshot that holds its
        content, or by ``kontex reindex``. A server, or a client without that file, is left
        as it is."""
        local = getattr(self._client, "_client", None)
        collection = getattr(local, "collections", {}).get(self.collection)
        storage = getattr(getattr(collection, "storage", None), "storage", None)
        if isinstance(storage, sqlite3.Connection):
            storage.execute("PRAGMA journal_mode=WAL")
            storage.execute("PRAGMA synchronous=NORMAL")

    def _call(self, work: Any) -> Any:
        """Run ``work()`` with the collection ready; transport failures become ``Transient``."""
        try:
            with self._lock:
                self._ensure()
                return work()
        except KontexError:
            raise
        except Exception as error:
            if _is_transport_error(error):
                raise _unavailable(error) from error
            raise

    # -- the port -------------------------------------------------------------------------

    def upsert(self, points: Sequence[Point]) -> None:
        from qdrant_client import models

        structs = [
            models.PointStruct(
                id=p.id,
                vector={
                    DENSE: p.dense,
                    SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                },
                payload=p.payload,
            )
            for p in points
        ]

        def work() -> None:
            for start in range(0, len(structs), UPSERT_BATCH):
                self.client.upsert(
                    self.collection, structs[start : start + UPSERT_BATCH], wait=True
                )

        if structs:
            self._call(work)

    def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        found = self._call(
            lambda: self.client.retrieve(
                self.collection, list(ids), with_payload=False, with_vectors=False
            )
        )
        return {str(p.id) for p in found}

    def _filter(self, where: IndexFilter) -> Any:
        from qdrant_client import models

        must: list[Any] = [
            models.FieldCondition(key="account_id", match=models.MatchValue(value=where.account_id))
        ]
        if where.source is not None:
            must.append(
                models.FieldCondition(key="source", match=models.MatchValue(value=where.source))
            )
        if where.point_ids is not None:
            must.append(models.HasIdCondition(has_id=sorted(where.point_ids)))
        return models.Filter(must=must)

    def query(self, q: IndexQuery) -> list[IndexHit]:
        from qdrant_client import models

        dense, sparse, limit, mode = q.dense, q.sparse, q.limit, q.mode
        flt = self._filter(q.where)
        lexical = (
            models.SparseVector(indices=sparse.indices, values=sparse.values)
            if sparse is not None and sparse.indices
            else None
        )
        depth = max(limit * 4, 40)

        def work() -> Any:
            if mode == "dense" or (mode == "hybrid" and lexical is None):
                if dense is None:
                    return []
                return self.client.query_points(
                    self.collection, query=dense, using=DENSE, query_filter=flt, limit=limit,
                    with_payload=True,
                ).points  # fmt: skip
            if mode == "sparse":
                if lexical is None:
                    return []
                return self.client.query_points(
                    self.collection, query=lexical, using=SPARSE, query_filter=flt, limit=limit,
                    with_payload=True,
                ).points  # fmt: skip
            prefetch = [models.Prefetch(query=lexical, using=SPARSE, filter=flt, limit=depth)]
            if dense is not None:
                prefetch.append(models.Prefetch(query=dense, using=DENSE, filter=flt, limit=depth))
            # both prefetches are filtered on the account, and fusion ranks only what they
            # found: no third pass of the filter (local mode evaluates payload filters in Python)
            return self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=limit,
                with_payload=True,
            ).points

        found = self._call(work)
        return [IndexHit(str(p.id), float(p.score), dict(p.payload or {})) for p in found]

    def delete(self, account_id: str, ids: Sequence[str]) -> None:
        from qdrant_client import models

        if not ids:
            return
        selector = models.FilterSelector(
            filter=self._filter(IndexFilter(account_id, point_ids=frozenset(ids)))
        )
        self._call(lambda: self.client.delete(self.collection, points_selector=selector, wait=True))

    def count(self, account_id: str | None = None) -> int:
        flt = self._filter(IndexFilter(account_id=account_id)) if account_id else None
        result = self._call(
            lambda: self.client.count(self.collection, count_filter=flt, exact=True)
        )
        return int(result.count)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
                self._ready = False


def _is_transport_error(error: Exception) -> bool:
    """Connection refused, timeouts, 5xx: the store is down, not the request wrong."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(error, ResponseHandlingException | httpx.TransportError | TimeoutError):
        return True
    if isinstance(error, UnexpectedResponse):
        status = error.status_code or 0
        return status >= 500 or status == 429
    try:
        import grpc

        if isinstance(error, grpc.RpcError):
            return True
    except ImportError:
        pass
    return isinstance(error, ConnectionError)
