"""The ``Store`` port on PostgreSQL (Aurora PostgreSQL 16 behind RDS Proxy, or any Postgres).

psycopg 3 with a small connection pool, opened on first use (never at import).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from kontex.adapters.migrations import migration_files
from kontex.adapters.sql import SqlStore
from kontex.domain.errors import Conflict, IntegrityError, Transient

_MIGRATION_LOCK = 7_311_404_110  # pg_advisory_xact_lock key: one migrator at a time
# a non-durable unit's commit does not wait for the WAL's flush: set for its transaction only
# (``SET LOCAL``'s effect, without the warning PostgreSQL logs for ``SET LOCAL`` in the implicit
# transaction of an autocommit unit, once a request for the rate limits)
RELAXED_COMMIT = "SELECT set_config('synchronous_commit', 'off', true)"


def _numbered(sql: str) -> str:
    """The statement's ``?`` placeholders as PostgreSQL's own ``$1, $2, ...``, sent with a raw
    cursor: psycopg then leaves the text as it is (its ``%s`` parsing of a statement with
    hundreds of parameters, an ``IN`` list of a batch, costs more than sending it)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))


# ``INSERT INTO t (...) VALUES (?, ..., ?)``, maybe ``ON CONFLICT [(...)] DO NOTHING``, maybe
# ``RETURNING ...``: one row of placeholders (not DO UPDATE: one statement may not update a
# row twice)
_ONE_ROW_INSERT = re.compile(
    r"^(INSERT INTO [^?]+? VALUES )(\((?:\?, )*\?\))"
    r"((?:\s+ON CONFLICT(?: \([^?)]*\))? DO NOTHING)?(?:\s+RETURNING [^?]+)?)$"
)
_MAX_PARAMS = 60_000  # under the protocol's 65,535 parameters of a statement
_MAX_ROWS = 512  # rows of one multi-row statement: a power of two (``_statements``)


@functools.lru_cache(maxsize=64)
def _multi_row(head: str, tail: str, width: int, rows: int) -> str:
    """``head`` with ``rows`` rows of ``width`` ``$n`` placeholders, then ``tail``."""
    tuples = ", ".join(
        "(" + ", ".join(f"${i * width + k + 1}" for k in range(width)) + ")" for i in range(rows)
    )
    return head + tuples + tail


def _statements(sql: str, rows: list[list[Any]]) -> Iterator[tuple[str, list[Any]]]:
    """The rows of a one-row ``INSERT ... VALUES (?, ...)`` as multi-row INSERTs, what the
    rows of a bulk write cost the driver and the server then per statement, not per row (an
    ``executemany`` in pipeline mode sends, and the server runs, one execution per row). Other
    statements: one per row. Each is (text with ``$n`` placeholders, parameters).

    The statements have a power of two of rows (up to ``_MAX_ROWS``; 300 rows are 256 + 32 + 8
    + 4), so a table's bulk writes use a handful of texts, not one per count: each is parsed
    and planned once per connection (prepared, where the store prepares), where a text of its
    own for every batch cost the server as much to parse and plan as to insert the rows."""
    match = _ONE_ROW_INSERT.match(sql) if len(rows) > 1 else None
    if match is None:
        text = _numbered(sql)
        for row in rows:
            yield text, row
        return
    head, values, tail = match.group(1), match.group(2), match.group(3) or ""
    width = values.count("?")
    start = 0
    while start < len(rows):
        size = _MAX_ROWS
        while size > 1 and (size > len(rows) - start or size * width > _MAX_PARAMS):
            size //= 2
        part = rows[start : start + size]
        yield _multi_row(head, tail, width, size), [v for row in part for v in row]
        start += size


class _PgTx:
    def __init__(
        self, conn: psycopg.Connection[dict[str, Any]], pipeline: psycopg.Pipeline | None = None
    ) -> None:
        self._conn = conn
        self._pipeline = pipeline

    def _cursor(self) -> psycopg.RawCursor[dict[str, Any]]:
        return psycopg.RawCursor(self._conn)  # the connection's row factory: dicts

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._cursor().execute(_numbered(sql), list(params))
        if self._pipeline is not None:
            self._pipeline.sync()  # the answer is needed now (queued statements go with it)
        return cursor.fetchall() if cursor.description is not None else []

    def q_many(self, statements: Sequence[tuple[str, list[Any]]]) -> list[list[dict[str, Any]]]:
        cursors = [
            self._cursor().execute(_numbered(sql), list(params)) for sql, params in statements
        ]
        if self._pipeline is not None:
            self._pipeline.sync()
        return [c.fetchall() if c.description is not None else [] for c in cursors]

    def ask(self, sql: str, rows: list[Sequence[Any]]) -> Callable[[], list[dict[str, Any]]]:
        statements = _statements(sql, [list(r) for r in rows])
        cursors = [self._cursor().execute(text, params) for text, params in statements]
        # read after the next sync (a read's); psycopg syncs itself when read before one
        return lambda: [row for c in cursors for row in c.fetchall()]

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [list(r) for r in rows]
        if batch:
            self._run(sql, batch)

    def batch(self, statements: Sequence[tuple[str, list[Sequence[Any]]]]) -> None:
        """Every statement queued in the pipeline: they travel with the COMMIT."""
        for sql, rows in statements:
            self._run(sql, [list(r) for r in rows])

    def _run(self, sql: str, rows: list[list[Any]]) -> None:
        """The rows of one statement: a multi-row INSERT (``_statements``), else
        ``executemany``."""
        with self._cursor() as cursor:
            if len(rows) > 1 and _ONE_ROW_INSERT.match(sql):
                for text, params in _statements(sql, rows):
                    cursor.execute(text, params)
                return
            cursor.executemany(_numbered(sql), rows)


def _translate(error: psycopg.Error) -> Exception:
    if isinstance(error, psycopg.errors.UniqueViolation | psycopg.errors.ForeignKeyViolation):
        return Conflict(str(error).splitlines()[0])
    if isinstance(error, psycopg.errors.IntegrityConstraintViolation) and "sealed" in str(error):
        return IntegrityError(str(error).splitlines()[0])
    if isinstance(error, psycopg.OperationalError):
        return Transient("the database is unavailable")
    return error


class PostgresStore(SqlStore):
    dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        max_size: int = 10,
        timeout: float = 5.0,
        prepare: bool = True,
        pooled: bool = False,
    ) -> None:
        """``timeout``: seconds to wait for a connection before the request is a 503;
        ``prepare``: statements run twice are prepared on the server; ``pooled``: behind a
        transaction pooler (RDS Proxy, PgBouncer in transaction mode), where a connection
        must leave nothing on the server session: no prepared statement (whatever
        ``prepare`` says) and no ``SET`` of any kind (RDS Proxy pins a client that sets a
        parameter, a local one included), so non-durable units commit durably there."""
        self.url = url
        self.pooled = pooled
        self.prepare = prepare and not pooled
        self.timeout = timeout
        self._max_size = max_size
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()
        self.transactions = 0  # transactions begun: tests check a use case runs in one

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    pool: ConnectionPool[Any] = ConnectionPool(
                        self.url,
                        min_size=1,
                        max_size=self._max_size,
                        kwargs={
                            "row_factory": dict_row,
                            "autocommit": True,  # a write unit is an explicit transaction
                            # planned once per connection (not behind RDS Proxy: there a
                            # prepared statement pins the session)
                            "prepare_threshold": 2 if self.prepare else None,
                            "connect_timeout": max(1, int(self.timeout)),
                        },
                        open=False,
                        timeout=self.timeout,  # waiting for a connection: then a 503
                    )
                    try:
                        pool.open(wait=True, timeout=self.timeout)
                    except psycopg.Error as error:
                        pool.close()
                        raise _translate(error) from error
                    self._pool = pool
        return self._pool

    _lock_clause = " FOR UPDATE OF t"  # a unit writing to a task holds its row until commit

    @contextmanager
    def _tx(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> Iterator[_PgTx]:
        self.transactions += 1
        try:
            # pipeline mode: BEGIN travels with the first statement and COMMIT with the last
            # writes: a snapshot write costs two round trips, a bundle read four
            with self.pool.connection() as conn, conn.pipeline() as pipeline:
                if not write:  # read committed: a transaction would add nothing but BEGIN
                    yield _PgTx(conn, pipeline)
                    return
                if autocommit:  # no BEGIN: the statements before each sync are one implicit
                    # transaction, committed by the server as it reaches the sync, in the same
                    # round trip (a row lock is not held while the answer travels and a
                    # COMMIT comes back); the local setting holds for the first round trip's
                    if not durable and not self.pooled:
                        conn.execute(RELAXED_COMMIT)
                    yield _PgTx(conn, pipeline)
                    return
                with conn.transaction():
                    if not durable and not self.pooled:  # its commit does not wait for
                        conn.execute(RELAXED_COMMIT)  # the WAL's flush
                    yield _PgTx(conn, pipeline)
        except psycopg.Error as error:
            raise _translate(error) from error

    def _json(self, value: Any) -> Any:
        return Jsonb(value)

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in migration_files(self.dialect):
                if version in done:
                    continue
                conn.execute(sql.encode())  # a script: no parameters, several statements
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [version])
                applied.append(version)
        return applied

    def database_bytes(self) -> int:
        """Bytes of the Kontex tables with their indexes and TOAST (for the benchmark)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS total"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'r' AND n.nspname = current_schema()"
            ).fetchone()
        return int(row["total"]) if row else 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
