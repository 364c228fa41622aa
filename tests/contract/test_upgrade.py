"""Data written by the v1 storage engine reads the same after `kontex migrate`, on both databases.

``tests/data/v1`` was written by the v1 engine itself (commit 884d867: items as blobs, lists as
``chain_nodes``, manifests as blobs), with the bundles it read back in ``expected.json``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kontex import cli
from kontex.adapters import postgres_store
from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.migrations import migration_files
from kontex.adapters.sqlite_store import SqliteStore
from kontex.services import snapshots
from kontex.services.deps import Deps
from tests.conftest import PG_POOLED

V1 = Path(__file__).resolve().parents[1] / "data" / "v1"
V1_MIGRATIONS = ("0001_foundation", "0002_api", "0003_spans")
TABLES = (
    "accounts",
    "api_keys",
    "sessions",
    "tasks",
    "chain_nodes",
    "snapshots",
    "snapshot_revisions",
)


@pytest.fixture
def v1_dir(tmp_path: Path) -> Path:
    shutil.copytree(V1, tmp_path / "data")
    return tmp_path / "data"


def _expected() -> dict[str, Any]:
    return json.loads((V1 / "expected.json").read_text("utf-8"))


def _check_reads(deps: Deps) -> None:
    expected = _expected()
    account_id = expected["account_id"]
    for name, bundle in expected["bundles"].items():
        snapshot_id, _, revision = name.partition("@")
        got = snapshots.get_bundle(
            deps, account_id, snapshot_id, int(revision) if revision else None
        )
        # ``usage`` (per-call usage) came after these bundles were recorded: absent, not shown
        assert got.model_dump(mode="json") == bundle, name


def _copy_v1_rows_to_postgres(url: str) -> None:
    import psycopg

    source = sqlite3.connect(V1 / "kontex.db", detect_types=sqlite3.PARSE_DECLTYPES)
    source.row_factory = sqlite3.Row
    with psycopg.connect(url) as target:
        for table in TABLES:
            columns = [c[1] for c in source.execute(f"PRAGMA table_info({table})")]
            types = {
                c[1]: c[2]
                for c in target.execute(
                    "SELECT 0, column_name, data_type FROM information_schema.columns"
                    " WHERE table_name = %s AND table_schema = current_schema()",
                    [table],
                )
            }
            rows = source.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            marks = ", ".join("%s" for _ in columns)
            for row in rows:
                values = [
                    bool(v)
                    if types[c] == "boolean"
                    else json.dumps(v)
                    if isinstance(v, dict)
                    else v
                    for c, v in zip(columns, row, strict=True)
                ]
                target.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values
                )


def test_kontex_migrate_upgrades_a_v1_sqlite_data_dir(v1_dir: Path, capsys: Any) -> None:
    # Given a data dir written by the v1 engine
    # When `kontex migrate` runs
    assert cli.main(["migrate", "--data-dir", str(v1_dir)]) == 0
    out = capsys.readouterr().out
    assert "0004_items" in out and "v1 -> v2 content of 8 snapshots and revisions" in out

    # Then every bundle (and the enriched snapshot's first revision) reads back the same
    store = SqliteStore(v1_dir / "kontex.db")
    deps = Deps(store=store, blobs=LocalBlobs(v1_dir / "blobs"), api_key_secret=b"x")
    _check_reads(deps)
    # ... the rows are sealed again, and a second run has nothing left to do
    with pytest.raises(sqlite3.IntegrityError):
        store.raw().execute("UPDATE snapshots SET manifest = manifest || x'00'")
    assert cli.main(["migrate", "--data-dir", str(v1_dir)]) == 0
    assert "up to date" in capsys.readouterr().out
    # ... and new snapshots continue the upgraded chains
    last_task = _task_of_last(deps)
    with store.unit(write=False) as uow:
        head = uow.snapshots.head(_expected()["account_id"], last_task)
    assert head is not None
    store.close()


def _task_of_last(deps: Deps) -> str:
    expected = _expected()
    last = list(expected["bundles"])[-2]  # the rollback, written last
    with deps.store.unit(write=False) as uow:
        snap = uow.snapshots.get(expected["account_id"], last)
    assert snap is not None
    return snap.task_id


@pytest.mark.postgres
def test_kontex_migrate_upgrades_a_v1_postgres_database(
    v1_dir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # Given the same v1 rows in a PostgreSQL database at the v1 schema
    monkeypatch.setattr(
        postgres_store,
        "migration_files",
        lambda dialect: [m for m in migration_files(dialect) if m[0] in V1_MIGRATIONS],
    )
    v1 = postgres_store.PostgresStore(pg_url, max_size=2, pooled=PG_POOLED)
    assert v1.migrate() == list(V1_MIGRATIONS)
    v1.close()
    _copy_v1_rows_to_postgres(pg_url)
    monkeypatch.undo()

    # When `kontex migrate` runs against it (blobs in the data dir)
    assert cli.main(["migrate", "--database-url", pg_url, "--data-dir", str(v1_dir)]) == 0
    assert "v1 -> v2 content of 8" in capsys.readouterr().out

    # Then every bundle reads back the same
    store = postgres_store.PostgresStore(pg_url, max_size=2, pooled=PG_POOLED)
    try:
        _check_reads(Deps(store=store, blobs=LocalBlobs(v1_dir / "blobs"), api_key_secret=b"x"))
    finally:
        store.close()
