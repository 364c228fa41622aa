"""Shared fixtures: a store on each backend, blobs in a temp folder, a settable clock."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from kontex.adapters.local_blobs import LocalBlobs
from kontex.ports import Event
from kontex.services.deps import Deps
from tests import pgbouncer

PG_URL = os.environ.get("KONTEX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# KONTEX_TEST_PGBOUNCER=1: every PostgreSQL fixture connects through PgBouncer in transaction
# pooling mode (tests/pgbouncer.py), the stand-in for RDS Proxy, with the stores "pooled" as on
# AWS (no session state: KONTEX_DATABASE_POOLED); otherwise straight to the server.
PG_POOLED = pgbouncer.enabled()
if PG_POOLED:
    os.environ["KONTEX_DATABASE_POOLED"] = "true"  # stores built from Settings, subprocesses


# The slowest test files, slowest first (one `make test` on 2 cores, 2026-12: 100 s down to
# 15 s each). `make test` passes `--no-loadscope-reorder`, so pytest-xdist hands whole files to
# its two workers in collection order: these first, then the rest as collected. xdist's own
# order (most tests first) left the long few-test e2e files for last, one worker idle while
# the other ran them. Order only: a file missing here still runs, later.
SLOWEST_FILES = [
    "tests/e2e/test_packaging.py",
    "tests/client/test_cli.py",
    "tests/e2e/test_live.py",
    "tests/e2e/test_dashboard.py",
    "tests/infra/test_stack.py",
    "tests/e2e/test_proxy_sdk.py",
    "tests/api/test_mcp.py",
    "tests/e2e/test_mcp_client.py",
    "tests/adapters/test_s3_blobs.py",
    "tests/e2e/test_crash.py",
    "tests/client/test_rest.py",
    "tests/api/test_schemathesis.py",
    "tests/e2e/test_dev_server.py",
    "tests/api/test_bad_input.py",
    "tests/otlp/test_ingest_and_worker.py",
    "tests/api/test_routes.py",
    "tests/proxy/test_proxy.py",
    "tests/services/test_snapshots.py",
    "tests/otlp/test_poison_spans.py",
    "tests/search/test_offline_embedder.py",
    "tests/e2e/test_traceloop.py",
    "tests/e2e/test_otlp_logs.py",
    "tests/client/test_retries.py",
    "tests/search/test_search_service.py",
    "tests/client/test_langgraph.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first (a stable sort: each file's tests keep their order)."""
    rank = {path: i for i, path in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)  # strictly increasing, like real time
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingEvents:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, str, dict[str, Any]]] = []
        self.ids: list[str | None] = []
        self.failing = False  # a broken transport: publish raises

    def publish(self, event: Event) -> None:
        if self.failing:
            raise ConnectionError("the event transport is down")
        self.published.append((event.type, event.account_id, event.session_id, event.data))
        self.ids.append(event.id)

    def types(self) -> list[str]:
        return [p[0] for p in self.published]


def schema_url(schema: str) -> str:
    """The server's URL (not PgBouncer's) with ``schema`` as the search_path."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def _postgres_schema_url(optional: bool = False) -> Iterator[str]:
    """A fresh schema's URL; without a server, a failure when one is required (CI), else a
    skip, or (``optional``) no URL at all: the caller runs without PostgreSQL."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"kontex_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        if os.environ.get("KONTEX_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required but unreachable at {PG_URL}: {error}")
        if optional:
            return
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        if pgbouncer.enabled():
            bouncer = pgbouncer.instance(PG_URL)
            try:
                yield bouncer.url_for(schema)
            finally:
                bouncer.forget(schema)
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            return
        try:
            yield schema_url(schema)
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    yield from _postgres_schema_url()


def new_store(
    dialect: str, path: Path, max_size: int = 4, before: str | None = None
) -> Iterator[Any]:
    """A migrated, empty store of ``dialect``: a SQLite file at ``path``, or a fresh PostgreSQL
    schema (through PgBouncer when the run says so); closed, and the schema dropped, after.
    ``before`` (a migration's name): migrated up to, not including, it (a migration's test)."""
    from kontex.adapters import postgres_store, sqlite_store

    module: Any = sqlite_store if dialect == "sqlite" else postgres_store
    every = module.migration_files

    def older(name: str) -> list[tuple[str, str]]:
        return [m for m in every(name) if before is None or m[0] < before]

    if dialect == "sqlite":
        sqlite = sqlite_store.SqliteStore(path)
        with mock.patch.object(module, "migration_files", older):
            sqlite.migrate()
        yield sqlite
        sqlite.close()
        return
    for url in _postgres_schema_url():
        pg = postgres_store.PostgresStore(url, max_size=max_size, pooled=PG_POOLED)
        with mock.patch.object(module, "migration_files", older):
            pg.migrate()
        try:
            yield pg
        finally:
            pg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    yield from new_store(request.param, tmp_path / "kontex.db")


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS service, with fake credentials: no real account is ever reached."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


@pytest.fixture
def deps(store: Any, tmp_path: Any, clock: Clock, events: RecordingEvents) -> Deps:
    return Deps(
        store=store,
        blobs=LocalBlobs(tmp_path / "blobs"),
        api_key_secret=b"test-secret",
        events=events,
        enrich_window_seconds=60,
        clock=clock,
    )
