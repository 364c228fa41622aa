"""Reads on readers (docs/design.md, "Reads on readers"): the read units of GET requests go to
the reader, everything else to the writer, on SQLite and PostgreSQL.

The reader here is a second, empty database that never catches up: a replica at infinite lag,
so every answer shows which store it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from kontex import bootstrap
from kontex.adapters.routed_store import RoutedStore, reading_from_replica
from kontex.adapters.sqlite_store import SqliteStore
from kontex.ports import UnitOfWork
from kontex.services import keys
from kontex.settings import Settings
from tests.api.conftest import Client, new_container
from tests.conftest import new_store


class Counted:
    """A store that counts the units opened on it, by kind."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.units: list[str] = []

    def migrate(self) -> list[str]:
        return list(self.store.migrate())

    def publish_with(self, publish: Any) -> None:
        self.store.publish_with(publish)

    def unit(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> AbstractContextManager[UnitOfWork]:
        self.units.append("write" if write else "read")
        return self.store.unit(write=write, durable=durable, autocommit=autocommit)


@pytest.fixture
def reader(store: Any, tmp_path: Path) -> Iterator[Any]:
    """An empty database of the writer's kind."""
    yield from new_store(store.dialect, tmp_path / "reader.db", max_size=2)


@pytest.fixture
def routed(store: Any, reader: Any, tmp_path: Path, clock: Any) -> Iterator[RoutedStore]:
    both = RoutedStore(Counted(store), Counted(reader))
    made = new_container(both, tmp_path, clock)
    bootstrap.configure(made)
    yield both
    bootstrap.configure(None)


def units(routed: RoutedStore) -> tuple[list[str], list[str]]:
    assert isinstance(routed.writer, Counted) and isinstance(routed.reader, Counted)
    found = (list(routed.writer.units), list(routed.reader.units))
    routed.writer.units.clear()
    routed.reader.units.clear()
    return found


def test_read_units_of_a_get_go_to_the_reader_and_all_else_to_the_writer(
    routed: RoutedStore,
) -> None:
    _, key = keys.create_key(bootstrap.container().deps, "reader")
    client = Client(key)
    made = client.post("/v1/sessions", {"name": "on the writer"})
    assert made.status == 201
    writer_units, reader_units = units(routed)
    assert reader_units == [] and "write" in writer_units  # a POST: all on the writer

    listed = client.get("/v1/sessions")  # the reader has not replayed the write (yet)
    assert listed.status == 200 and listed.body["data"] == []
    writer_units, reader_units = units(routed)
    assert reader_units and set(reader_units) == {"read"}
    assert "read" not in writer_units  # only the key check (admission) ran on the writer

    strong = client.get("/v1/sessions", headers={"Kontex-Consistency": "strong"})
    assert [s["id"] for s in strong.body["data"]] == [made.body["id"]]  # read-your-writes
    assert units(routed)[1] == []

    # a 404 from the reader is asked of the writer again: a client finds what it created
    found = client.get(f"/v1/sessions/{made.body['id']}")
    assert found.status == 200 and found.body["name"] == "on the writer"
    writer_units, reader_units = units(routed)
    assert reader_units and "read" in writer_units
    missing = client.get("/v1/sessions/sess_none")
    assert missing.status == 404 and missing.body["error"] == "not_found"


def test_a_request_that_has_written_reads_on_the_writer(routed: RoutedStore) -> None:
    with reading_from_replica():
        with routed.unit(write=False):
            pass
        with routed.unit():
            pass
        with routed.unit(write=False):  # after a write: stays on the writer
            pass
    with routed.unit(write=False):  # outside a GET (a worker, a POST): the writer
        pass
    assert units(routed) == (["write", "read", "read"], ["read"])


def test_the_reader_is_configured_from_settings(tmp_path: Path) -> None:
    reader = tmp_path / "reader.db"
    config = Settings.from_env(
        {"KONTEX_DATABASE_READER_URL": f"sqlite:///{reader}"}, kontex_data_dir=tmp_path
    )
    store = bootstrap.Container(config).store
    assert isinstance(store, RoutedStore)
    assert isinstance(store.reader, SqliteStore) and store.reader.path == str(reader)
    assert isinstance(bootstrap.Container(Settings.from_env({})).store, SqliteStore)
