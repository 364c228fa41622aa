"""The ``Store`` port on SQLite: the embedded default (a file in the data dir, WAL mode).

One connection per thread (the local stack serves requests on threads); writes take the
database lock at ``BEGIN IMMEDIATE`` so concurrent writers wait instead of deadlocking.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kontex.adapters.migrations import migration_files
from kontex.adapters.sql import SqlStore
from kontex.adapters.writer_lock import WriterLock
from kontex.domain.errors import Conflict, IntegrityError

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


_AS_IS = frozenset({str, int, bytes, type(None), bool, float})  # what sqlite3 takes as it is


def _to_db(value: Any) -> Any:
    if type(value) in _AS_IS:  # most values of a bulk write: no isinstance chain
        return value
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        if value.year < 1000:  # strftime does not pad the year to four digits: kept as it was
            return value.strftime(_TIME_FORMAT)
        # isoformat (C) writes the same "...T12:00:00.000000Z" as _TIME_FORMAT, faster
        return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


# fromisoformat (C) reads the stored "...Z" form ten times faster than strptime
sqlite3.register_converter("KTIME", lambda raw: datetime.fromisoformat(raw.decode()))
sqlite3.register_converter("KJSON", lambda raw: json.loads(raw))


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, [_to_db(p) for p in params])
        if cursor.description is None:
            return []
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, ([_to_db(v) for v in row] for row in rows))

    def q_many(self, statements: Sequence[tuple[str, list[Any]]]) -> list[list[dict[str, Any]]]:
        return [self.q(sql, params) for sql, params in statements]

    def ask(self, sql: str, rows: list[Sequence[Any]]) -> Callable[[], list[dict[str, Any]]]:
        found = [answer for row in rows for answer in self.q(sql, row)]  # in process: now
        return lambda: found

    def batch(self, statements: Sequence[tuple[str, list[Sequence[Any]]]]) -> None:
        for sql, rows in statements:
            self.many(sql, rows)


def _translate(error: sqlite3.Error) -> Exception:
    text = str(error)
    if "sealed" in text:
        return IntegrityError(text)
    if isinstance(error, sqlite3.IntegrityError):
        return Conflict(text)
    return error


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            # readable by its owner only; SQLite gives its -wal and -shm files the same mode
            Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not os.path.exists(self.path):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._local = threading.local()
        self._writer = threading.Lock()
        self._writers = WriterLock(self.path)  # and the writers of the data dir's other processes
        self.transactions = 0  # transactions begun: tests check a use case runs in one

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                detect_types=sqlite3.PARSE_DECLTYPES,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
                timeout=30,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> Iterator[_SqliteTx]:
        """A transaction; a writer takes the database lock at BEGIN, a reader never waits.
        (``durable`` changes nothing: every commit here is ``synchronous=NORMAL``; nor does
        ``autocommit``: the unit holds this process's writer lock, not a row's, and runs in
        it without a round trip.)"""
        conn = self._connect()
        self.transactions += 1
        # Writers queue on locks (woken at once) rather than in SQLite's busy handler, which
        # sleeps up to 100 ms between tries: this process's on a thread lock, then every
        # process's on the file's writer lock (adapters/writer_lock.py)
        lock = self._writer if write else contextlib.nullcontext()
        writers = self._writers if write else contextlib.nullcontext()
        with lock, writers:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SqliteTx(conn)
            except sqlite3.Error as error:
                conn.execute("ROLLBACK")
                raise _translate(error) from error
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def raw(self) -> sqlite3.Connection:
        """The thread's connection, for operators and tests that need plain SQL."""
        return self._connect()

    def migrate(self) -> list[str]:
        conn = self._connect()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        applied: list[str] = []
        for version, sql in migration_files(self.dialect):
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", [version]
                ).fetchone()
                if done is None:
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                        [version, _to_db(datetime.now(UTC))],
                    )
                    applied.append(version)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return applied

    def database_bytes(self) -> int:
        conn = self._connect()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (triggers contain ``;`` inside BEGIN ... END)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()
