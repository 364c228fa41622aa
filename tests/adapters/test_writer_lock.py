"""The writers of a SQLite file of the data dir queue on one lock across processes
(kontex/adapters/writer_lock.py): the store's and the queue's writes wait for another process's
writer, and go on once it lets go (not at the busy handler's next try)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kontex.adapters.local_queue import LocalQueue
from kontex.adapters.sqlite_store import SqliteStore
from kontex.adapters.writer_lock import SUFFIX, WriterLock

HOLDER = """
import sys
from kontex.adapters.writer_lock import WriterLock
with WriterLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()  # until told
"""


@contextmanager
def held_by_another_process(database: Path) -> Iterator[None]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.stdin.write("go\n")
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0


def waits_for_the_other_writer(database: Path, write: Callable[[], None]) -> None:
    done = threading.Event()

    def writer() -> None:
        write()
        done.set()

    with held_by_another_process(database):
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        assert not done.wait(0.5)  # the file is free for SQLite: only the lock holds it back
    assert done.wait(30)
    thread.join()


def test_a_store_write_waits_for_another_processs_writer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kontex.db")
    store.migrate()

    def write() -> None:
        with store.unit() as uow:
            uow.keys.hit("key_1", "ingest", 0, 0)

    waits_for_the_other_writer(tmp_path / "kontex.db", write)
    assert (tmp_path / f"kontex.db{SUFFIX}").stat().st_mode & 0o777 == 0o600


def test_a_store_read_does_not_wait(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kontex.db")
    store.migrate()
    with held_by_another_process(tmp_path / "kontex.db"), store.unit(write=False) as uow:
        assert uow.keys.find("no such hash") is None


def test_a_queue_send_waits_for_another_processs_writer(tmp_path: Path) -> None:
    queue = LocalQueue(tmp_path / "queue.db")
    queue.expect("spans")
    try:
        waits_for_the_other_writer(tmp_path / "queue.db", lambda: queue.send("spans", ["{}"]))
        assert queue.pending("spans") == 1
    finally:
        queue.close()


@pytest.mark.parametrize("database", [None, ":memory:"])
def test_a_database_in_memory_has_no_lock_file(database: str | None) -> None:
    lock = WriterLock(database)
    with lock:
        pass
    assert lock.path is None
    lock.close()


def test_an_idle_consumers_poll_takes_no_writer_lock(tmp_path: Path) -> None:
    """A worker polling its empty queue (every 50 ms) reads; only a claim of something writes,
    so an idle process never holds up another's writers (nor waits for them)."""
    queue = LocalQueue(tmp_path / "queue.db")
    queue.expect("spans")
    polled = threading.Event()
    try:
        with held_by_another_process(tmp_path / "queue.db"):
            thread = threading.Thread(
                target=lambda: queue._claim("spans") == [] and polled.set(), daemon=True
            )
            thread.start()
            assert polled.wait(30)
        queue.send("spans", ["{}"])
        assert len(queue._claim("spans")) == 1
    finally:
        queue.close()
