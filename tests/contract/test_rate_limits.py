"""Rate-limit counts spread over shard rows (docs/design.md, "Rate limits"), on both databases:
a window's count is its shards' sum, the limit trips on it, hits made at once from many threads
and connections are all counted on more than one row, migration 0013 keeps the counts written
before it, and on PostgreSQL the count commits in its own round trip."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kontex.adapters import postgres_store, sqlite_store
from kontex.adapters.local_blobs import LocalBlobs
from kontex.domain.errors import RateLimited
from kontex.services import keys, limits
from kontex.services.deps import Deps
from tests.conftest import PG_POOLED, Clock, new_store

SHARDED = "0013_rate_limit_shards"
WINDOW = 7200  # a window start (seconds)


def _rows(store: Any, key_id: str, kind: str = "request") -> list[tuple[int, int, int]]:
    """(window_start, shard, hits) of the key's rows of ``kind``, read outside the store API."""
    sql = (
        "SELECT window_start, shard, hits FROM rate_limits WHERE key_id = ? AND kind = ?"
        " ORDER BY 1, 2"
    )
    if isinstance(store, sqlite_store.SqliteStore):
        return [tuple(r) for r in store.raw().execute(sql, [key_id, kind]).fetchall()]
    with store.pool.connection() as conn:
        rows = conn.execute(sql.replace("?", "%s"), [key_id, kind]).fetchall()
    return [(r["window_start"], r["shard"], r["hits"]) for r in rows]


def _deps(store: Any, tmp_path: Path) -> Deps:
    return Deps(
        store=store,
        blobs=LocalBlobs(tmp_path / "blobs"),
        api_key_secret=b"test-secret",
        clock=Clock(),
    )


def test_a_windows_count_is_the_sum_of_its_shards(store: Any) -> None:
    with store.unit() as uow:
        counts = [uow.keys.hit("key_1", "write", WINDOW, shard) for shard in (0, 3, 3, 5, 0)]
        assert uow.keys.hit("key_1", "read", WINDOW, 3) == 1  # another kind
        assert uow.keys.hit("key_2", "write", WINDOW, 3) == 1  # another key
    assert counts == [1, 2, 3, 4, 5]
    assert _rows(store, "key_1", "write") == [(WINDOW, 0, 2), (WINDOW, 3, 2), (WINDOW, 5, 1)]
    with store.unit() as uow:  # a new window starts at one; the key's older ones go
        assert uow.keys.hit("key_1", "write", WINDOW + 3600, 1) == 1
    assert _rows(store, "key_1", "write") == [(WINDOW + 3600, 1, 1)]
    assert [r[:2] for r in _rows(store, "key_2", "write")] == [(WINDOW, 3)]  # others' stay


def test_the_limit_trips_on_the_sum_of_the_shards(store: Any, tmp_path: Path) -> None:
    deps = _deps(store, tmp_path)
    key, plaintext = keys.create_key(deps, "team")
    for _ in range(40):
        assert limits.admit(deps, plaintext, "request", 40).id == key.id
    with pytest.raises(RateLimited) as refused:
        limits.admit(deps, plaintext, "request", 40)
    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= refused.value.retry_after <= limits.WINDOW_SECONDS
    assert refused.value.details == {"limit": 40, "window_seconds": limits.WINDOW_SECONDS}
    rows = _rows(store, key.id)
    assert sum(r[2] for r in rows) == 41  # the refused request counted too
    assert len(rows) > 1  # not one hot row (8 shards: all 41 on one is a 8**-40 chance)


THREADS = 8


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def wide_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store with a connection for each of ``THREADS`` threads."""
    yield from new_store(request.param, tmp_path / "kontex.db", max_size=THREADS)


def _admit_from_threads(deps: Deps, plaintext: str, each: int, limit: int) -> None:
    start = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def client() -> None:
        try:
            start.wait()
            for _ in range(each):
                limits.admit(deps, plaintext, "request", limit)
        except BaseException as error:  # reported below
            failures.append(error)

    running = [threading.Thread(target=client) for _ in range(THREADS)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    assert failures == []


def test_hits_at_once_are_all_counted(wide_store: Any, tmp_path: Path) -> None:
    deps = _deps(wide_store, tmp_path)
    key, plaintext = keys.create_key(deps, "team")
    _admit_from_threads(deps, plaintext, 50, THREADS * 50)  # none refused
    rows = _rows(wide_store, key.id)
    assert sum(r[2] for r in rows) == THREADS * 50
    assert len(rows) > 1  # the hits spread over shard rows
    with pytest.raises(RateLimited):  # and the next one is past the limit
        limits.admit(deps, plaintext, "request", THREADS * 50)


@pytest.mark.postgres
def test_the_count_commits_in_its_own_round_trip(pg_url: str) -> None:
    """A request's count is committed before its unit ends (no row lock held while the answer
    travels and a COMMIT comes): another connection sees it from inside the unit."""
    store = postgres_store.PostgresStore(pg_url, max_size=2, pooled=PG_POOLED)
    store.migrate()
    try:
        with store.unit(durable=False, autocommit=True) as uow:
            assert uow.keys.hit("key_1", "request", WINDOW, 2) == 1
            assert _rows(store, "key_1") == [(WINDOW, 2, 1)]  # another connection's read
    finally:
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def before_0013(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store migrated up to (not including) 0013."""
    yield from new_store(request.param, tmp_path / "kontex.db", max_size=2, before=SHARDED)


def test_the_migration_keeps_a_windows_count(before_0013: Any) -> None:
    store = before_0013
    old = "INSERT INTO rate_limits (key_id, kind, window_start, hits) VALUES (?, ?, ?, ?)"
    values = ["key_1", "request", WINDOW, 30]
    if isinstance(store, sqlite_store.SqliteStore):
        store.raw().execute(old, values)
    else:
        with store.pool.connection() as conn:
            conn.execute(old.replace("?", "%s"), values)

    assert SHARDED in store.migrate()

    assert _rows(store, "key_1") == [(WINDOW, 0, 30)]  # shard 0
    with store.unit() as uow:
        assert uow.keys.hit("key_1", "request", WINDOW, 4) == 31
        assert uow.keys.hit("key_1", "request", WINDOW, 0) == 32
    assert _rows(store, "key_1") == [(WINDOW, 0, 31), (WINDOW, 4, 1)]


def test_several_uses_are_counted_in_one_hit(store: Any) -> None:
    """The proxy counts the uses it let through in one statement (services/admission.py)."""
    with store.unit() as uow:
        assert uow.keys.hit("key_1", "request", WINDOW, 2, 3) == 3
        assert uow.keys.hit("key_1", "request", WINDOW, 2, 4) == 7
        assert uow.keys.hit("key_1", "request", WINDOW, 5) == 8
    assert _rows(store, "key_1") == [(WINDOW, 2, 7), (WINDOW, 5, 1)]
    with store.unit() as uow:  # a new window of several uses still drops the older ones
        assert uow.keys.hit("key_1", "request", WINDOW + 3600, 1, 2) == 2
    assert _rows(store, "key_1") == [(WINDOW + 3600, 1, 2)]
