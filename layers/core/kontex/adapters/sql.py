"""The SQL both relational adapters share.

The statements are written once, in the subset SQLite 3.35+ and PostgreSQL 15+ both accept
(``ON CONFLICT DO NOTHING``, ``RETURNING``, ``WITH RECURSIVE``), with ``?`` placeholders that
the PostgreSQL adapter rewrites to ``%s``. Schemas, migrations, connection handling, value
conversion and driver-error translation stay in each adapter.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

from kontex.domain.errors import InvalidInput
from kontex.domain.models import (
    Account,
    ApiKey,
    Session,
    SessionStatus,
    Snapshot,
    Task,
    ThreadState,
    Usage,
)
from kontex.ports import Event, ItemRow, LiveConnection, ObjectFilter, Revision

USAGE_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_CHUNK = 500  # keeps IN (...) lists well under both drivers' parameter limits
_INDEXED = {"message": "message", "tool_call": "tool_call"}  # the kinds the queries read


class Tx(Protocol):
    def q(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...
    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def batch(self, statements: Sequence[tuple[str, list[Sequence[Any]]]]) -> None:
        """Run writes whose results nobody reads, in order (pipelined where the driver can)."""
        ...

    def q_many(self, statements: Sequence[tuple[str, list[Any]]]) -> list[list[dict[str, Any]]]:
        """Several queries in order, their answers together (one round trip on PostgreSQL)."""
        ...


def _as_time(value: Any) -> datetime:
    """Aggregates lose SQLite's declared column type: times may come back as text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _by_account(keys: Iterable[tuple[str, str]]) -> Iterable[tuple[str, list[str]]]:
    """(account_id, x) pairs as (account_id, up to ``_CHUNK`` distinct x) groups."""
    grouped: dict[str, list[str]] = {}
    for account_id, value in keys:
        grouped.setdefault(account_id, []).append(value)
    for account_id, values in grouped.items():
        distinct = list(dict.fromkeys(values))
        for start in range(0, len(distinct), _CHUNK):
            yield account_id, distinct[start : start + _CHUNK]


_SNAPSHOT_SELECT = """
SELECT s.id, s.account_id, s.session_id, s.task_id, s.label, s.source,
       COALESCE(r.model, s.model) AS model,
       COALESCE(r.token_total, s.token_total) AS token_total,
       s.parent_snapshot_id, s.rollback_of, s.forked_from,
       COALESCE(r.bundle_hash, s.bundle_hash) AS bundle_hash,
       s.stored_bytes, s.captured_at, s.created_at, r.created_at AS enriched_at,
       COALESCE(r.manifest, s.manifest) AS manifest
FROM snapshots s
LEFT JOIN snapshot_revisions r
  ON r.snapshot_id = s.id
 AND r.seq = (SELECT MAX(seq) FROM snapshot_revisions m WHERE m.snapshot_id = s.id)
"""


def _usage_of(manifest: Any) -> Usage | None:
    """The ``usage`` scalar of a manifest (the snapshot of one captured LLM call)."""
    if manifest is None:
        return None
    header = bytes(manifest).partition(b"\n")[0]  # JSON scalars, then the packed slices
    if b'"usage"' not in header:
        return None
    found = json.loads(header).get("usage")
    return Usage.model_validate(found) if found else None


def _snapshot(row: dict[str, Any]) -> Snapshot:
    fields = {k: v for k, v in row.items() if k != "manifest"}
    return Snapshot(
        **fields, enriched=row["enriched_at"] is not None, usage=_usage_of(row.get("manifest"))
    )


def _event(row: dict[str, Any]) -> Event:
    data = row["data"]
    return Event(
        id=row["id"],
        type=row["type"],
        account_id=row["account_id"],
        session_id=row["session_id"],
        data=json.loads(data) if isinstance(data, str | bytes) else data,
        created_at=_as_time(row["created_at"]),
    )


_OUTBOX_INSERT = (
    "INSERT INTO outbox (id, account_id, session_id, type, data, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def _outbox_row(event: Event, json_param: Callable[[Any], Any]) -> tuple[Any, ...]:
    return (
        event.id,
        event.account_id,
        event.session_id,
        event.type,
        json_param(event.data),
        event.created_at,
    )


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


def _chunked(values: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _usage_columns(usage: Usage | None) -> tuple[Any, ...]:
    if usage is None:
        return (None,) * 6
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.latency_ms,
        usage.cost_usd,
    )


# Sums over the snapshots that are one captured LLM call each (usage columns set).
_USAGE_SUMS = (
    "COALESCE(SUM(CASE WHEN usage_input_tokens IS NOT NULL THEN 1 ELSE 0 END), 0) AS calls,"
    " COALESCE(SUM(usage_input_tokens), 0) AS input_tokens,"
    " COALESCE(SUM(usage_output_tokens), 0) AS output_tokens,"
    " COALESCE(SUM(usage_cache_read_tokens), 0) AS cache_read_tokens,"
    " COALESCE(SUM(usage_cache_write_tokens), 0) AS cache_write_tokens,"
    " COALESCE(SUM(usage_latency_ms), 0) AS latency_ms,"
    " SUM(usage_cost_usd) AS cost_usd,"
    " COALESCE(SUM(CASE WHEN usage_input_tokens IS NOT NULL AND usage_cost_usd IS NULL"
    " THEN 1 ELSE 0 END), 0) AS unpriced_calls"
)


def _usage_totals(row: dict[str, Any]) -> dict[str, Any]:
    calls = int(row["calls"])
    cost = row["cost_usd"]
    return {
        "calls": calls,
        "input_tokens": int(row["input_tokens"]),
        "output_tokens": int(row["output_tokens"]),
        "cache_read_tokens": int(row["cache_read_tokens"]),
        "cache_write_tokens": int(row["cache_write_tokens"]),
        "total_tokens": int(row["input_tokens"])
        + int(row["output_tokens"])
        + int(row["cache_read_tokens"])
        + int(row["cache_write_tokens"]),
        "cost_usd": round(float(cost), 8) if cost is not None else None,
        "unpriced_calls": int(row["unpriced_calls"]),
        "latency_ms_total": round(float(row["latency_ms"]), 3),
    }


class SqlUnit:
    """The ``SnapshotUnit`` port on one open transaction of a ``SqlStore``."""

    def __init__(self, tx: Tx, lock_clause: str, json: Callable[[Any], Any]) -> None:
        self.tx = tx
        self._lock = lock_clause
        self._json = json
        self._writes: list[tuple[str, list[Sequence[Any]]]] = []  # sent together at the end

    def _write(self, sql: str, rows: list[Sequence[Any]]) -> None:
        self._writes.append((sql, rows))

    def flush(self) -> None:
        """Send the unit's writes (one round trip on PostgreSQL); called before the commit."""
        writes, self._writes = self._writes, []
        if writes:
            self.tx.batch(writes)

    @staticmethod
    def _lookup_sql(
        session: str, session_params: list[Any], items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[str, list[Any]]:
        parts, params = [], []
        if items:
            marks = ", ".join("?" for _ in items)
            parts.append(
                "SELECT 0 AS k, item_hash AS h, tokens AS n, NULL AS refs FROM items"
                f" WHERE session_id = {session} AND item_hash IN ({marks})"
            )
            params += [*session_params, *items]
        if chunks:
            marks = ", ".join("?" for _ in chunks)
            parts.append(
                "SELECT 1 AS k, chunk_hash AS h, 0 AS n, refs FROM chunks"
                f" WHERE session_id = {session} AND chunk_hash IN ({marks})"
            )
            params += [*session_params, *chunks]
        return " UNION ALL ".join(parts), params

    @staticmethod
    def _found(rows: list[dict[str, Any]]) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
        found_items: dict[bytes, int] = {}
        found_chunks: dict[bytes, bytes] = {}
        for r in rows:
            if r["k"] == 0:
                found_items[bytes(r["h"])] = int(r["n"])
            else:
                found_chunks[bytes(r["h"])] = bytes(r["refs"])
        return found_items, found_chunks

    def lookup(
        self, session_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
        """Which of these items (with their tokens) and chunks (with their refs) the session
        has, in one statement."""
        if not items and not chunks:
            return {}, {}
        if len(items) + len(chunks) > _CHUNK:
            return self.known_items(session_id, items), self.chunks(session_id, chunks)
        sql, params = self._lookup_sql("?", [session_id], items, chunks)
        return self._found(self.tx.q(sql, params))

    def lock_and_lookup(
        self, account_id: str, task_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[tuple[Task, str | None, bytes | None], dict[bytes, int], dict[bytes, bytes]] | None:
        """``lock_task`` and ``lookup`` in the task's session, sent together (one round trip
        on PostgreSQL: the lock is taken by the first statement, before the lookup runs)."""
        if not items and not chunks or len(items) + len(chunks) > _CHUNK:
            locked = self.lock_task(account_id, task_id)
            if locked is None:
                return None
            return locked, *self.lookup(locked[0].session_id, items, chunks)
        lookup_sql, lookup_params = self._lookup_sql(
            "(SELECT session_id FROM tasks WHERE account_id = ? AND id = ?)",
            [account_id, task_id],
            items,
            chunks,
        )
        task_rows, found_rows = self.tx.q_many(
            [self._lock_task_sql(account_id, task_id), (lookup_sql, lookup_params)]
        )
        locked = self._locked(task_rows)
        if locked is None:
            return None
        return locked, *self._found(found_rows)

    def _lock_task_sql(self, account_id: str, task_id: str) -> tuple[str, list[Any]]:
        columns = ", ".join(f"t.{c.strip()}" for c in SqlStore._TASK_COLUMNS.split(","))
        return (
            f"SELECT {columns}, t.head_snapshot_id, h.manifest AS head_manifest FROM tasks t"
            " LEFT JOIN snapshots h ON h.id = t.head_snapshot_id"
            f" WHERE t.account_id = ? AND t.id = ?{self._lock}",
            [account_id, task_id],
        )

    @staticmethod
    def _locked(rows: list[dict[str, Any]]) -> tuple[Task, str | None, bytes | None] | None:
        if not rows:
            return None
        head = rows[0].pop("head_snapshot_id")
        manifest = _bytes(rows[0].pop("head_manifest"))
        return Task(**rows[0]), head, manifest

    def lock_task(
        self, account_id: str, task_id: str
    ) -> tuple[Task, str | None, bytes | None] | None:
        return self._locked(self.tx.q(*self._lock_task_sql(account_id, task_id)))

    def head_snapshot(self, account_id: str, task_id: str) -> tuple[Snapshot, bytes | None] | None:
        rows = self.tx.q(
            _SNAPSHOT_SELECT + " JOIN tasks t ON t.head_snapshot_id = s.id"
            " WHERE t.account_id = ? AND t.id = ?",
            [account_id, task_id],
        )
        if not rows:
            return None
        return _snapshot(rows[0]), _bytes(rows[0]["manifest"])

    def snapshot(self, account_id: str, snapshot_id: str) -> tuple[Snapshot, bytes | None] | None:
        rows = self.tx.q(
            _SNAPSHOT_SELECT + " WHERE s.account_id = ? AND s.id = ?", [account_id, snapshot_id]
        )
        if not rows:
            return None
        return _snapshot(rows[0]), _bytes(rows[0]["manifest"])

    def revision(self, account_id: str, snapshot_id: str, seq: int) -> Revision | None:
        if seq == 0:
            rows = self.tx.q(
                "SELECT id AS snapshot_id, 0 AS seq, bundle_hash, token_total, model, created_at,"
                " stored_bytes, manifest FROM snapshots WHERE account_id = ? AND id = ?",
                [account_id, snapshot_id],
            )
        else:
            rows = self.tx.q(
                "SELECT r.snapshot_id, r.seq, r.bundle_hash, r.token_total, r.model, r.created_at,"
                " r.stored_bytes, r.manifest FROM snapshot_revisions r"
                " JOIN snapshots s ON s.id = r.snapshot_id"
                " WHERE s.account_id = ? AND r.snapshot_id = ? AND r.seq = ?",
                [account_id, snapshot_id, seq],
            )
        if not rows:
            return None
        row = rows[0]
        row["manifest"] = _bytes(row["manifest"])
        row["created_at"] = _as_time(row["created_at"])
        return Revision(**row)

    def revision_count(self, snapshot_id: str) -> int:
        rows = self.tx.q(
            "SELECT COUNT(*) AS n FROM snapshot_revisions WHERE snapshot_id = ?", [snapshot_id]
        )
        return int(rows[0]["n"])

    def _by_address(
        self, table: str, key: str, value: str, session_id: str, addresses: Sequence[bytes]
    ) -> dict[bytes, Any]:
        """``value`` of the session's rows of ``table`` whose ``key`` is one of ``addresses``
        (our own table and column names, never input)."""
        found: dict[bytes, Any] = {}
        for part in _chunked(addresses):
            marks = ", ".join("?" for _ in part)
            rows = self.tx.q(
                f"SELECT {key} AS k, {value} AS v FROM {table}"
                f" WHERE session_id = ? AND {key} IN ({marks})",
                [session_id, *part],
            )
            found.update((bytes(r["k"]), r["v"]) for r in rows)
        return found

    def known_items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, int]:
        found = self._by_address("items", "item_hash", "tokens", session_id, addresses)
        return {k: int(v) for k, v in found.items()}

    def items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]:
        found = self._by_address("items", "item_hash", "body", session_id, addresses)
        return {k: bytes(v) for k, v in found.items()}

    def chunks(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]:
        found = self._by_address("chunks", "chunk_hash", "refs", session_id, addresses)
        return {k: bytes(v) for k, v in found.items()}

    def add_items(self, session_id: str, at: datetime, rows: Sequence[ItemRow]) -> None:
        if not rows:
            return
        self._write(
            "INSERT INTO items (session_id, item_hash, kind, body, tokens, role, has_text,"
            " has_tool_use, has_tool_result, tool_name, is_error, position, first_seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                (
                    session_id,
                    r.address,
                    r.kind,
                    r.body,
                    r.tokens,
                    r.index.get("role"),
                    bool(r.index.get("has_text", False)),
                    bool(r.index.get("has_tool_use", False)),
                    bool(r.index.get("has_tool_result", False)),
                    r.index.get("tool_name"),
                    bool(r.index.get("is_error", False)),
                    r.position,
                    at,
                )
                for r in rows
            ],
        )

    def add_chunks(self, session_id: str, chunks: dict[bytes, bytes]) -> None:
        if not chunks:
            return
        self._write(
            "INSERT INTO chunks (session_id, chunk_hash, refs) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(session_id, address, refs) for address, refs in chunks.items()],
        )

    def add_snapshot(self, snapshot: Snapshot, manifest: bytes) -> None:
        s = snapshot
        self._write(
            "INSERT INTO snapshots (id, account_id, session_id, task_id, label, source, model,"
            " token_total, parent_snapshot_id, rollback_of, forked_from, bundle_hash,"
            " stored_bytes, captured_at, created_at, manifest, usage_input_tokens,"
            " usage_output_tokens, usage_cache_read_tokens, usage_cache_write_tokens,"
            " usage_latency_ms, usage_cost_usd)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.id,
                    s.account_id,
                    s.session_id,
                    s.task_id,
                    s.label,
                    s.source.value,
                    s.model,
                    s.token_total,
                    s.parent_snapshot_id,
                    s.rollback_of,
                    s.forked_from,
                    s.bundle_hash,
                    s.stored_bytes,
                    s.captured_at,
                    s.created_at,
                    manifest,
                    *_usage_columns(s.usage),
                )
            ],
        )
        self._write("UPDATE tasks SET head_snapshot_id = ? WHERE id = ?", [(s.id, s.task_id)])

    def add_revision(self, revision: Revision, manifest: bytes) -> None:
        r = revision
        self._write(
            "INSERT INTO snapshot_revisions (snapshot_id, seq, session_id, bundle_hash,"
            " token_total, model, stored_bytes, created_at, manifest)"
            " SELECT ?, ?, session_id, ?, ?, ?, ?, ?, ? FROM snapshots WHERE id = ?",
            [
                (
                    r.snapshot_id,
                    r.seq,
                    r.bundle_hash,
                    r.token_total,
                    r.model,
                    r.stored_bytes,
                    r.created_at,
                    manifest,
                    r.snapshot_id,
                )
            ],
        )

    def add_event(self, event: Event) -> None:
        self._write(_OUTBOX_INSERT, [_outbox_row(event, self._json)])

    def set_v2_manifest(
        self, snapshot_id: str, seq: int, manifest: bytes, bundle_hash: str
    ) -> None:
        """The v1 -> v2 upgrade of a sealed row (allowed once, while its manifest is NULL)."""
        if seq == 0:
            self._write(
                "UPDATE snapshots SET manifest = ?, bundle_hash = ? WHERE id = ?"
                " AND manifest IS NULL",
                [(manifest, bundle_hash, snapshot_id)],
            )
        else:
            self._write(
                "UPDATE snapshot_revisions SET manifest = ?, bundle_hash = ?"
                " WHERE snapshot_id = ? AND seq = ? AND manifest IS NULL",
                [(manifest, bundle_hash, snapshot_id, seq)],
            )

    def add_task(self, task: Task) -> None:
        self._write(
            f"INSERT INTO tasks ({SqlStore._TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    task.id,
                    task.account_id,
                    task.session_id,
                    task.parent_task_id,
                    task.name,
                    task.status.value,
                    task.created_at,
                    task.updated_at,
                )
            ],
        )


class SqlStore(abc.ABC):
    """The ``Store`` port on a DB-API database; subclasses supply ``_tx`` and ``migrate``."""

    @abc.abstractmethod
    def _tx(self, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction: committed when the block ends, rolled back when it raises."""

    @abc.abstractmethod
    def migrate(self) -> list[str]: ...

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        with self._tx() as tx:
            rows = tx.q(sql, [_plain(p) for p in params])
        return rows[0] if rows else None

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._tx() as tx:
            return tx.q(sql, [_plain(p) for p in params])

    # -- accounts and keys ----------------------------------------------------------------

    def insert_account(self, account: Account) -> None:
        with self._tx() as tx:
            tx.q(
                "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)",
                [account.id, account.name, account.created_at],
            )

    def get_account(self, account_id: str) -> Account | None:
        row = self._one("SELECT id, name, created_at FROM accounts WHERE id = ?", [account_id])
        return Account(**row) if row else None

    _KEY_COLUMNS = "id, account_id, label, prefix, created_at, revoked_at"

    def insert_api_key(self, key: ApiKey, key_hash: str) -> None:
        with self._tx() as tx:
            tx.q(
                "INSERT INTO api_keys (id, account_id, label, prefix, key_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [key.id, key.account_id, key.label, key.prefix, key_hash, key.created_at],
            )

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self._one(f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", [key_hash])
        return ApiKey(**row) if row else None

    def list_api_keys(self, account_id: str) -> list[ApiKey]:
        rows = self._all(
            f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE account_id = ?"
            " ORDER BY created_at, id",
            [account_id],
        )
        return [ApiKey(**r) for r in rows]

    def revoke_api_key(self, account_id: str, key_id: str, at: datetime) -> bool:
        rows = self._all(
            "UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND id = ?"
            " AND revoked_at IS NULL RETURNING id",
            [at, account_id, key_id],
        )
        return bool(rows)

    # -- sessions ---------------------------------------------------------------------------

    _SESSION_COLUMNS = "id, account_id, name, description, metadata, status, created_at, updated_at"

    def insert_session(self, session: Session, event: Event | None = None) -> None:
        with self._tx() as tx:
            if event is not None:
                tx.q(_OUTBOX_INSERT, list(_outbox_row(event, self._json)))
            tx.q(
                f"INSERT INTO sessions ({self._SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    session.id,
                    session.account_id,
                    session.name,
                    session.description,
                    self._json(session.metadata),
                    session.status.value,
                    session.created_at,
                    session.updated_at,
                ],
            )

    def get_session(self, account_id: str, session_id: str) -> Session | None:
        row = self._one(
            f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE account_id = ? AND id = ?",
            [account_id, session_id],
        )
        return Session(**row) if row else None

    def list_sessions(
        self,
        account_id: str,
        status: SessionStatus | None,
        limit: int,
        after: tuple[str, str] | None,
        newest_first: bool = False,
    ) -> list[Session]:
        sql = f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE account_id = ?"
        params: list[Any] = [account_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql, params = self._after(sql, params, after, before=newest_first)
        order = "created_at DESC, id DESC" if newest_first else "created_at, id"
        rows = self._all(sql + f" ORDER BY {order} LIMIT ?", [*params, limit])
        return [Session(**r) for r in rows]

    def update_session(
        self, account_id: str, session_id: str, changes: dict[str, Any], event_id: str | None = None
    ) -> Session | None:
        allowed = {"name", "description", "metadata", "status", "updated_at"}
        return self._update("sessions", allowed, account_id, session_id, changes, Session, event_id)

    # -- tasks ------------------------------------------------------------------------------

    _TASK_COLUMNS = (
        "id, account_id, session_id, parent_task_id, name, status, created_at, updated_at"
    )

    def insert_task(self, task: Task, event: Event | None = None) -> None:
        with self._tx() as tx:
            if event is not None:
                tx.q(_OUTBOX_INSERT, list(_outbox_row(event, self._json)))
            tx.q(
                f"INSERT INTO tasks ({self._TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    task.id,
                    task.account_id,
                    task.session_id,
                    task.parent_task_id,
                    task.name,
                    task.status.value,
                    task.created_at,
                    task.updated_at,
                ],
            )

    def get_task(self, account_id: str, task_id: str) -> Task | None:
        row = self._one(
            f"SELECT {self._TASK_COLUMNS} FROM tasks WHERE account_id = ? AND id = ?",
            [account_id, task_id],
        )
        return Task(**row) if row else None

    def list_tasks(self, account_id: str, session_id: str) -> list[Task]:
        rows = self._all(
            f"SELECT {self._TASK_COLUMNS} FROM tasks WHERE account_id = ? AND session_id = ?"
            " ORDER BY created_at, id",
            [account_id, session_id],
        )
        return [Task(**r) for r in rows]

    def update_task(
        self, account_id: str, task_id: str, changes: dict[str, Any], event_id: str | None = None
    ) -> Task | None:
        allowed = {"name", "status", "updated_at"}
        return self._update("tasks", allowed, account_id, task_id, changes, Task, event_id)

    # -- snapshots --------------------------------------------------------------------------

    _lock_clause = ""  # how a unit locks the task row it writes to (PostgreSQL: FOR UPDATE)

    @contextmanager
    def unit(self, write: bool = True) -> Iterator[SqlUnit]:
        """One transaction over the snapshot aggregate (``SnapshotUnit``)."""
        with self._tx(write=write) as tx:
            unit = SqlUnit(tx, self._lock_clause if write else "", self._json)
            yield unit
            unit.flush()

    def snapshot_exists(self, snapshot_id: str) -> bool:
        return self._one("SELECT 1 AS x FROM snapshots WHERE id = ?", [snapshot_id]) is not None

    def get_snapshot(self, account_id: str, snapshot_id: str) -> Snapshot | None:
        row = self._one(
            _SNAPSHOT_SELECT + " WHERE s.account_id = ? AND s.id = ?", [account_id, snapshot_id]
        )
        return _snapshot(row) if row else None

    def latest_snapshot(self, account_id: str, task_id: str) -> Snapshot | None:
        row = self._one(
            _SNAPSHOT_SELECT + " JOIN tasks t ON t.head_snapshot_id = s.id"
            " WHERE s.account_id = ? AND t.id = ?",
            [account_id, task_id],
        )
        return _snapshot(row) if row else None

    def list_snapshots(
        self, account_id: str, session_id: str, limit: int, after: tuple[str, str] | None
    ) -> list[Snapshot]:
        sql = _SNAPSHOT_SELECT + " WHERE s.account_id = ? AND s.session_id = ?"
        sql, params = self._after(sql, [account_id, session_id], after, table="s.")
        rows = self._all(sql + " ORDER BY s.created_at, s.id LIMIT ?", [*params, limit])
        return [_snapshot(r) for r in rows]

    def list_revisions(self, account_id: str, snapshot_id: str) -> list[Revision]:
        """Every state of the snapshot: seq 0 is the bundle as first written."""
        rows = self._all(
            "SELECT id AS snapshot_id, 0 AS seq, bundle_hash, token_total, model, created_at,"
            " stored_bytes FROM snapshots WHERE account_id = ? AND id = ?"
            " UNION ALL"
            " SELECT r.snapshot_id, r.seq, r.bundle_hash, r.token_total, r.model, r.created_at,"
            " r.stored_bytes"
            " FROM snapshot_revisions r JOIN snapshots s ON s.id = r.snapshot_id"
            " WHERE s.account_id = ? AND r.snapshot_id = ?"
            " ORDER BY seq",
            [account_id, snapshot_id, account_id, snapshot_id],
        )
        return [Revision(**r) for r in rows]

    # -- the v1 engine's rows, read once by the upgrade ------------------------------------

    def v1_rows(self) -> list[dict[str, Any]]:
        """Snapshots and revisions written by the v1 engine (no manifest yet), oldest first."""
        rows = self._all(
            "SELECT id AS snapshot_id, 0 AS seq, account_id, session_id, bundle_hash, created_at"
            " FROM snapshots WHERE manifest IS NULL"
            " UNION ALL"
            " SELECT r.snapshot_id, r.seq, s.account_id, s.session_id, r.bundle_hash, r.created_at"
            " FROM snapshot_revisions r JOIN snapshots s ON s.id = r.snapshot_id"
            " WHERE r.manifest IS NULL ORDER BY created_at, snapshot_id, seq"
        )
        for row in rows:
            row["created_at"] = _as_time(row["created_at"])
        return rows

    def v1_chain(self, session_id: str, head: str) -> list[str]:
        """Item hashes of a v1 list, head to tail (each step a primary-key lookup)."""
        rows = self._all(
            """
            WITH RECURSIVE chain (parent_hash, item_hash, position) AS (
                SELECT parent_hash, item_hash, position
                  FROM chain_nodes WHERE session_id = ? AND node_hash = ?
                UNION ALL
                SELECT n.parent_hash, n.item_hash, n.position
                  FROM chain c JOIN chain_nodes n
                    ON n.session_id = ? AND n.node_hash = c.parent_hash
            )
            SELECT item_hash FROM chain ORDER BY position
            """,
            [session_id, head, session_id],
        )
        return [r["item_hash"] for r in rows]

    # -- purge ------------------------------------------------------------------------------

    def purge_session(self, account_id: str, session_id: str, event: Event | None = None) -> bool:
        with self._tx() as tx:
            owned = tx.q(
                "SELECT id FROM sessions WHERE account_id = ? AND id = ?", [account_id, session_id]
            )
            if not owned:
                return False
            if event is not None:
                tx.q(_OUTBOX_INSERT, list(_outbox_row(event, self._json)))
            tx.q("INSERT INTO session_purges (session_id) VALUES (?)", [session_id])
            for table in (
                "snapshot_revisions",
                "snapshots",
                "chunks",
                "items",
                "chain_nodes",
                "session_traces",
                "session_aliases",
                "tasks",
            ):
                tx.q(f"DELETE FROM {table} WHERE session_id = ?", [session_id])
            tx.q("DELETE FROM sessions WHERE id = ?", [session_id])
            tx.q("DELETE FROM session_purges WHERE session_id = ?", [session_id])
        return True

    def inactive_sessions(
        self, cutoff: datetime, account_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Sessions with no activity since ``cutoff``, least recently touched first.

        Activity is the latest of the session's ``updated_at``, its tasks' ``updated_at``, its
        snapshots' and their revisions' ``created_at``. Each row: ``account_id``,
        ``session_id``, ``name``, ``last_activity``, ``snapshots`` (count).
        """
        # revisions are reached through their snapshot: (snapshot_id, seq) is their only index
        revisions = (
            "FROM snapshot_revisions r JOIN snapshots p ON p.id = r.snapshot_id"
            " WHERE p.session_id = s.id"
        )
        sql = (
            "SELECT s.account_id, s.id AS session_id, s.name, s.updated_at,"
            " (SELECT MAX(t.updated_at) FROM tasks t WHERE t.session_id = s.id) AS task_at,"
            " (SELECT MAX(p.created_at) FROM snapshots p WHERE p.session_id = s.id)"
            " AS snapshot_at,"
            f" (SELECT MAX(r.created_at) {revisions}) AS revision_at,"
            " (SELECT COUNT(*) FROM snapshots p WHERE p.session_id = s.id) AS snapshots"
            " FROM sessions s WHERE s.updated_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.session_id = s.id"
            " AND t.updated_at >= ?)"
            " AND NOT EXISTS (SELECT 1 FROM snapshots p WHERE p.session_id = s.id"
            " AND p.created_at >= ?)"
            f" AND NOT EXISTS (SELECT 1 {revisions} AND r.created_at >= ?)"
        )
        params: list[Any] = [cutoff, cutoff, cutoff, cutoff]
        if account_id is not None:
            sql += " AND s.account_id = ?"
            params.append(account_id)
        rows = self._all(sql + " ORDER BY s.updated_at, s.id LIMIT ?", [*params, limit])
        found = []
        for row in rows:
            times = [row.pop(k) for k in ("updated_at", "task_at", "snapshot_at", "revision_at")]
            row["last_activity"] = max(_as_time(t) for t in times if t is not None)
            row["snapshots"] = int(row["snapshots"])
            found.append(row)
        return found

    # -- queries and aggregates ------------------------------------------------------------

    def query_objects(
        self, account_id: str, where: ObjectFilter, limit: int, after: tuple[str, str] | None
    ) -> list[dict[str, Any]]:
        """Distinct messages or tool calls, each once, in the order they first appeared."""
        sql = (
            "SELECT i.session_id, i.item_hash, i.kind, i.body, i.tokens, i.is_error,"
            " i.first_seen_at, i.position"
            " FROM items i JOIN sessions s ON s.id = i.session_id"
            # a literal: kinds are our own constants
            f" WHERE s.account_id = ? AND i.kind = '{_INDEXED[where.kind]}'"
        )
        params: list[Any] = [account_id]
        conditions = [
            ("i.session_id = ?", where.session_id),
            ("i.role = ?", where.role),
            ("i.tool_name = ?", where.tool_name),
            ("i.is_error = ?", where.is_error),
            ("i.first_seen_at > ?", where.created_after),
            ("i.first_seen_at < ?", where.created_before),
        ]
        if where.content_type is not None:
            column = {
                "text": "has_text",
                "tool_use": "has_tool_use",
                "tool_result": "has_tool_result",
            }[where.content_type]
            conditions.append((f"i.{column} = ?", True))
        for condition, value in conditions:
            if value is not None:
                sql += f" AND {condition}"
                params.append(value)
        if after is not None:  # the cursor's id part is "<position>:<address hex>"
            at = datetime.fromisoformat(after[0])
            position, _, digest = after[1].partition(":")
            sql += (
                " AND (i.first_seen_at > ? OR (i.first_seen_at = ?"
                " AND (i.position > ? OR (i.position = ? AND i.item_hash > ?))))"
            )
            try:
                address = bytes.fromhex(digest)
                params += [at, at, int(position), int(position), address]
            except ValueError as error:
                raise InvalidInput("cursor is not valid") from error
        order = " ORDER BY i.first_seen_at, i.position, i.item_hash LIMIT ?"
        rows = self._all(sql + order, [*params, limit])
        for row in rows:
            row["object_hash"] = bytes(row.pop("item_hash")).hex()
            row["body"] = bytes(row["body"])
            row["is_error"] = bool(row["is_error"])
            row["first_seen_at"] = _as_time(row["first_seen_at"])
        return rows

    def session_stats(self, account_id: str, session_id: str) -> dict[str, Any]:
        with self._tx() as tx:
            objects = tx.q(
                "SELECT i.kind, i.is_error, COUNT(*) AS n"
                " FROM items i JOIN sessions s ON s.id = i.session_id"
                " WHERE s.account_id = ? AND i.session_id = ?"
                " AND i.kind = 'message' GROUP BY i.kind, i.is_error",
                [account_id, session_id],
            )
            # A call is stored once per state it was seen in (pending, then with its output):
            # count calls by id, in their last state.
            tool_rows = tx.q(
                "SELECT i.body FROM items i JOIN sessions s ON s.id = i.session_id"
                " WHERE s.account_id = ? AND i.session_id = ? AND i.kind = 'tool_call'"
                " ORDER BY i.first_seen_at, i.position",
                [account_id, session_id],
            )
            snaps = tx.q(
                "SELECT COUNT(*) AS n, COALESCE(SUM(token_total), 0) AS tokens,"
                " MAX(created_at) AS last_snapshot_at, "
                + _USAGE_SUMS
                + " FROM snapshots WHERE account_id = ? AND session_id = ?",
                [account_id, session_id],
            )
            context = tx.q(
                "SELECT COALESCE(SUM(COALESCE(r.token_total, s.token_total)), 0) AS tokens"
                " FROM tasks t JOIN snapshots s ON s.id = t.head_snapshot_id"
                " LEFT JOIN snapshot_revisions r ON r.snapshot_id = s.id AND r.seq ="
                " (SELECT MAX(seq) FROM snapshot_revisions m WHERE m.snapshot_id = s.id)"
                " WHERE t.account_id = ? AND t.session_id = ?",
                [account_id, session_id],
            )
        counts = {(r["kind"], bool(r["is_error"])): int(r["n"]) for r in objects}
        states: dict[str, str] = {}
        for row in tool_rows:
            call = json.loads(bytes(row["body"]))
            state = str(call.get("status") or "success")
            if states.get(str(call.get("id"))) != "error":
                states[str(call.get("id"))] = state
        tool_states = list(states.values())
        return {
            "total_messages": counts.get(("message", False), 0) + counts.get(("message", True), 0),
            "tool_calls_success": tool_states.count("success"),
            "tool_calls_error": tool_states.count("error"),
            "tool_calls_pending": tool_states.count("pending"),
            "total_snapshots": int(snaps[0]["n"]),
            "snapshot_tokens": int(snaps[0]["tokens"]),
            "context_tokens": int(context[0]["tokens"]),
            "last_snapshot_at": (
                _as_time(snaps[0]["last_snapshot_at"]) if snaps[0]["last_snapshot_at"] else None
            ),
            # usage per LLM call, each counted once: the snapshots recording a call carry it
            # (a rollback, a fork or a tool's snapshot restates a call, it does not make one)
            "usage": _usage_totals(snaps[0]),
        }

    def usage(self, account_id: str, month_start: datetime) -> dict[str, Any]:
        with self._tx() as tx:
            sessions = tx.q(
                "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0"
                " END), 0) AS active FROM sessions WHERE account_id = ?",
                [account_id],
            )[0]
            snaps = tx.q(
                "SELECT COUNT(*) AS total, COALESCE(SUM(token_total), 0) AS tokens,"
                " COALESCE(SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), 0) AS month,"
                " COALESCE(SUM(CASE WHEN created_at >= ? THEN token_total ELSE 0 END), 0)"
                " AS month_tokens FROM snapshots WHERE account_id = ?",
                [month_start, month_start, account_id],
            )[0]
            calls = tx.q(
                "SELECT " + _USAGE_SUMS + " FROM snapshots WHERE account_id = ?", [account_id]
            )[0]
            month_calls = tx.q(
                "SELECT "
                + _USAGE_SUMS
                + " FROM snapshots WHERE account_id = ? AND created_at >= ?",
                [account_id, month_start],
            )[0]
            stored = tx.q(
                "SELECT (SELECT COALESCE(SUM(stored_bytes), 0) FROM snapshots"
                " WHERE account_id = ?) + (SELECT COALESCE(SUM(r.stored_bytes), 0)"
                " FROM snapshot_revisions r JOIN sessions s ON s.id = r.session_id"
                " WHERE s.account_id = ?) AS bytes",
                [account_id, account_id],
            )[0]
        return {
            "total_sessions": int(sessions["total"]),
            "active_sessions": int(sessions["active"]),
            "total_snapshots": int(snaps["total"]),
            "total_tokens_stored": int(snaps["tokens"]),
            "snapshots_this_month": int(snaps["month"]),
            "tokens_this_month": int(snaps["month_tokens"]),
            "stored_bytes": int(stored["bytes"]),
            "usage": _usage_totals(calls),
            "usage_this_month": _usage_totals(month_calls),
        }

    # -- traces -----------------------------------------------------------------------------

    def link_trace(self, account_id: str, session_id: str, trace_id: str, at: datetime) -> str:
        """Link ``trace_id`` to the session; returns the session the trace is linked to."""
        with self._tx() as tx:
            tx.q(
                "INSERT INTO session_traces (account_id, trace_id, session_id, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [account_id, trace_id, session_id, at],
            )
            row = tx.q(
                "SELECT session_id FROM session_traces WHERE account_id = ? AND trace_id = ?",
                [account_id, trace_id],
            )
        return str(row[0]["session_id"])

    def session_for_trace(self, account_id: str, trace_id: str) -> str | None:
        row = self._one(
            "SELECT session_id FROM session_traces WHERE account_id = ? AND trace_id = ?",
            [account_id, trace_id],
        )
        return str(row["session_id"]) if row else None

    def list_traces(self, account_id: str, session_id: str) -> list[str]:
        rows = self._all(
            "SELECT trace_id FROM session_traces WHERE account_id = ? AND session_id = ?"
            " ORDER BY created_at, trace_id",
            [account_id, session_id],
        )
        return [r["trace_id"] for r in rows]

    # -- thread state -----------------------------------------------------------------------

    _THREAD_COLUMNS = "account_id, thread_id, user_data, version, updated_at"

    def put_thread_state(
        self, account_id: str, thread_id: str, user_data: str, at: datetime
    ) -> ThreadState:
        row = self._one(
            f"INSERT INTO thread_states ({self._THREAD_COLUMNS}) VALUES (?, ?, ?, 1, ?)"
            " ON CONFLICT (account_id, thread_id) DO UPDATE SET user_data = excluded.user_data,"
            " version = thread_states.version + 1, updated_at = excluded.updated_at"
            f" RETURNING {self._THREAD_COLUMNS}",
            [account_id, thread_id, user_data, at],
        )
        assert row is not None
        return ThreadState(**row)

    def get_thread_state(self, account_id: str, thread_id: str) -> ThreadState | None:
        row = self._one(
            f"SELECT {self._THREAD_COLUMNS} FROM thread_states"
            " WHERE account_id = ? AND thread_id = ?",
            [account_id, thread_id],
        )
        return ThreadState(**row) if row else None

    def delete_thread_state(self, account_id: str, thread_id: str) -> bool:
        rows = self._all(
            "DELETE FROM thread_states WHERE account_id = ? AND thread_id = ? RETURNING thread_id",
            [account_id, thread_id],
        )
        return bool(rows)

    # -- spans ------------------------------------------------------------------------------

    def insert_spans(self, spans: Sequence[tuple[str, dict[str, Any]]], at: datetime) -> None:
        """Store (account_id, span) pairs not seen before, all in one transaction."""
        with self._tx() as tx:
            tx.many(
                "INSERT INTO spans (account_id, trace_id, span_id, parent_span_id, kind,"
                " header_session_id, start_ns, end_ns, body, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (
                        account_id,
                        r["trace_id"],
                        r["span_id"],
                        r.get("parent_span_id"),
                        r["kind"],
                        r.get("header_session_id"),
                        r["start_time_unix_nano"],
                        r["end_time_unix_nano"],
                        self._json(r),
                        at,
                    )
                    for account_id, r in spans
                ],
            )

    def trace_spans(
        self, traces: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The spans of each (account_id, trace_id), in start order, read in one transaction."""
        found: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in traces}
        with self._tx() as tx:
            for account_id, chunk in _by_account(traces):
                marks = ", ".join("?" for _ in chunk)
                rows = tx.q(
                    "SELECT trace_id, body, kind, header_session_id, done FROM spans"
                    f" WHERE account_id = ? AND trace_id IN ({marks})"
                    " ORDER BY trace_id, start_ns, span_id",
                    [account_id, *chunk],
                )
                for r in rows:
                    found[(account_id, r["trace_id"])].append(
                        {
                            **r["body"],
                            "kind": r["kind"],
                            "header_session_id": r["header_session_id"],
                            "done": bool(r["done"]),
                        }
                    )
        return found

    def trace_sessions(self, traces: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The session each linked (account_id, trace_id) is linked to; unlinked ones absent."""
        found: dict[tuple[str, str], str] = {}
        with self._tx() as tx:
            for account_id, chunk in _by_account(traces):
                marks = ", ".join("?" for _ in chunk)
                rows = tx.q(
                    "SELECT trace_id, session_id FROM session_traces"
                    f" WHERE account_id = ? AND trace_id IN ({marks})",
                    [account_id, *chunk],
                )
                found.update(((account_id, r["trace_id"]), str(r["session_id"])) for r in rows)
        return found

    def sessions_named(self, names: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The session each (account_id, name) names: a session id of the account, else an
        alias of one; names that match neither are absent. One transaction."""
        found: dict[tuple[str, str], str] = {}
        with self._tx() as tx:
            for account_id, chunk in _by_account(names):
                marks = ", ".join("?" for _ in chunk)
                aliases = tx.q(
                    "SELECT alias AS name, session_id FROM session_aliases"
                    f" WHERE account_id = ? AND alias IN ({marks})",
                    [account_id, *chunk],
                )
                ids = tx.q(
                    "SELECT id AS name, id AS session_id FROM sessions"
                    f" WHERE account_id = ? AND id IN ({marks})",
                    [account_id, *chunk],
                )
                for r in aliases + ids:  # a session id wins over an alias
                    found[(account_id, r["name"])] = str(r["session_id"])
        return found

    def ensure_tasks(self, tasks: Sequence[Task], events: Sequence[Event] = ()) -> list[Event]:
        """Insert the tasks (parents before children) that do not exist yet, in one transaction,
        with the events of those that were new."""
        announced: list[Event] = []
        with self._tx() as tx:
            if events:
                existing: set[str] = set()
                for account_id, ids in _by_account((t.account_id, t.id) for t in tasks):
                    marks = ", ".join("?" for _ in ids)
                    rows = tx.q(
                        f"SELECT id FROM tasks WHERE account_id = ? AND id IN ({marks})",
                        [account_id, *ids],
                    )
                    existing.update(r["id"] for r in rows)
                announced = [e for t, e in zip(tasks, events, strict=True) if t.id not in existing]
                tx.many(_OUTBOX_INSERT, [_outbox_row(e, self._json) for e in announced])
            tx.many(
                f"INSERT INTO tasks ({self._TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [
                    (
                        t.id,
                        t.account_id,
                        t.session_id,
                        t.parent_task_id,
                        t.name,
                        t.status.value,
                        t.created_at,
                        t.updated_at,
                    )
                    for t in tasks
                ],
            )
        return announced

    def mark_spans_done(self, spans: Sequence[tuple[str, str, str]]) -> None:
        """Mark each (account_id, trace_id, span_id) processed, in one transaction."""
        with self._tx() as tx:
            tx.many(
                "UPDATE spans SET done = ? WHERE account_id = ? AND trace_id = ? AND span_id = ?",
                [(True, account_id, trace_id, span_id) for account_id, trace_id, span_id in spans],
            )

    def session_for_alias(self, account_id: str, alias: str) -> str | None:
        row = self._one(
            "SELECT session_id FROM session_aliases WHERE account_id = ? AND alias = ?",
            [account_id, alias],
        )
        return str(row["session_id"]) if row else None

    def add_alias(self, account_id: str, alias: str, session_id: str) -> str:
        """Name the session by ``alias`` unless the alias is taken; returns its session."""
        with self._tx() as tx:
            tx.q(
                "INSERT INTO session_aliases (account_id, alias, session_id) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [account_id, alias, session_id],
            )
            row = tx.q(
                "SELECT session_id FROM session_aliases WHERE account_id = ? AND alias = ?",
                [account_id, alias],
            )
        return str(row[0]["session_id"])

    # -- rate limits ------------------------------------------------------------------------

    def hit_rate_limit(self, key_id: str, kind: str, window_start: int) -> int:
        with self._tx() as tx:
            rows = tx.q(
                "INSERT INTO rate_limits (key_id, kind, window_start, hits) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (key_id, kind, window_start) DO UPDATE"
                " SET hits = rate_limits.hits + 1 RETURNING hits",
                [key_id, kind, window_start],
            )
            tx.q(
                "DELETE FROM rate_limits WHERE key_id = ? AND kind = ? AND window_start < ?",
                [key_id, kind, window_start],
            )
        return int(rows[0]["hits"])

    # -- live feed connections --------------------------------------------------------------

    def open_connection(self, connection_id: str, at: datetime, expires_at: datetime) -> None:
        with self._tx() as tx:
            tx.q(
                "INSERT INTO live_connections"
                " (id, account_id, authenticated, connected_at, expires_at)"
                " VALUES (?, NULL, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                [connection_id, False, at, expires_at],
            )

    def get_connection(self, connection_id: str, now: datetime) -> LiveConnection | None:
        row = self._one(
            "SELECT id, account_id, authenticated, connected_at, expires_at"
            " FROM live_connections WHERE id = ? AND expires_at > ?",
            [connection_id, now],
        )
        if row is None:
            return None
        return LiveConnection(
            id=row["id"],
            account_id=row["account_id"],
            authenticated=bool(row["authenticated"]),
            connected_at=_as_time(row["connected_at"]),
            expires_at=_as_time(row["expires_at"]),
        )

    def authenticate_connection(self, connection_id: str, account_id: str) -> bool:
        rows = self._all(
            "UPDATE live_connections SET account_id = ?, authenticated = ?"
            " WHERE id = ? AND (account_id IS NULL OR account_id = ?) RETURNING id",
            [account_id, True, connection_id, account_id],
        )
        return bool(rows)

    def subscribe(self, connection_id: str, account_id: str, session_id: str) -> None:
        with self._tx() as tx:
            tx.q(
                "INSERT INTO live_subscriptions (connection_id, account_id, session_id)"
                " VALUES (?, ?, ?) ON CONFLICT (connection_id, session_id) DO NOTHING",
                [connection_id, account_id, session_id],
            )

    def unsubscribe(self, connection_id: str, session_id: str) -> bool:
        rows = self._all(
            "DELETE FROM live_subscriptions WHERE connection_id = ? AND session_id = ?"
            " RETURNING session_id",
            [connection_id, session_id],
        )
        return bool(rows)

    def subscribers(self, account_id: str, session_id: str, now: datetime) -> list[str]:
        rows = self._all(
            "SELECT s.connection_id FROM live_subscriptions s"
            " JOIN live_connections c ON c.id = s.connection_id"
            " WHERE s.account_id = ? AND s.session_id = ? AND c.account_id = ?"
            " AND c.authenticated = ? AND c.expires_at > ? ORDER BY s.connection_id",
            [account_id, session_id, account_id, True, now],
        )
        return [r["connection_id"] for r in rows]

    def claim_deliveries(
        self, event_id: str, connection_ids: Sequence[str], at: datetime
    ) -> list[str]:
        claimed: list[str] = []
        with self._tx() as tx:
            for part in _chunked(connection_ids):
                values = ", ".join("(?, ?, ?)" for _ in part)
                params = [v for c in part for v in (event_id, c, at)]
                rows = tx.q(
                    "INSERT INTO live_deliveries (event_id, connection_id, delivered_at)"
                    f" VALUES {values} ON CONFLICT (event_id, connection_id) DO NOTHING"
                    " RETURNING connection_id",
                    params,
                )
                claimed.extend(r["connection_id"] for r in rows)
        order = {c: i for i, c in enumerate(connection_ids)}
        return sorted(claimed, key=order.__getitem__)

    def release_delivery(self, event_id: str, connection_id: str) -> None:
        with self._tx() as tx:
            tx.q(
                "DELETE FROM live_deliveries WHERE event_id = ? AND connection_id = ?",
                [event_id, connection_id],
            )

    def remove_connection(self, connection_id: str) -> bool:
        with self._tx() as tx:
            tx.q("DELETE FROM live_subscriptions WHERE connection_id = ?", [connection_id])
            tx.q("DELETE FROM live_deliveries WHERE connection_id = ?", [connection_id])
            rows = tx.q("DELETE FROM live_connections WHERE id = ? RETURNING id", [connection_id])
        return bool(rows)

    def remove_expired_connections(self, now: datetime, delivered_before: datetime) -> int:
        with self._tx() as tx:
            expired = [
                r["id"]
                for r in tx.q("SELECT id FROM live_connections WHERE expires_at <= ?", [now])
            ]
            for part in _chunked(expired):
                marks = ", ".join("?" for _ in part)
                for table, column in (
                    ("live_subscriptions", "connection_id"),
                    ("live_deliveries", "connection_id"),
                    ("live_connections", "id"),
                ):
                    tx.q(f"DELETE FROM {table} WHERE {column} IN ({marks})", list(part))
            tx.q("DELETE FROM live_deliveries WHERE delivered_at < ?", [delivered_before])
        return len(expired)

    # -- helpers ----------------------------------------------------------------------------

    def _json(self, value: Any) -> Any:
        """How a JSON document is passed as a parameter (overridden per driver)."""
        return value

    def _after(
        self,
        sql: str,
        params: list[Any],
        after: tuple[str, str] | None,
        table: str = "",
        before: bool = False,
    ) -> tuple[str, list[Any]]:
        """Rows after the cursor ``(created_at, id)`` in the listing's order (``before``: a
        newest-first listing, so the rows older than the cursor)."""
        if after is None:
            return sql, params
        created_at = datetime.fromisoformat(after[0])
        op = "<" if before else ">"
        sql += f" AND ({table}created_at {op} ? OR ({table}created_at = ? AND {table}id {op} ?))"
        return sql, [*params, created_at, created_at, after[1]]

    def _update(
        self,
        table: str,
        allowed: set[str],
        account_id: str,
        row_id: str,
        changes: dict[str, Any],
        model: Any,
        event_id: str | None = None,
    ) -> Any:
        """Update one row; with ``event_id``, its ``<table>.updated`` event goes to the outbox
        in the same transaction."""
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} of {table}")
        columns = self._SESSION_COLUMNS if table == "sessions" else self._TASK_COLUMNS
        values = [self._json(v) if k == "metadata" else _plain(v) for k, v in changes.items()]
        assignments = ", ".join(f"{k} = ?" for k in changes)
        with self._tx() as tx:
            rows = tx.q(
                f"UPDATE {table} SET {assignments} WHERE account_id = ? AND id = ?"
                f" RETURNING {columns}",
                [*values, account_id, row_id],
            )
            if not rows:
                return None
            row = model(**rows[0])
            if event_id is not None:
                data = row.model_dump(mode="json", exclude={"account_id"})
                session_id = row.id if table == "sessions" else row.session_id
                type_ = "session.updated" if table == "sessions" else "task.updated"
                at = changes.get("updated_at") or datetime.now(UTC)
                event = Event(event_id, type_, account_id, session_id, data, at)
                tx.q(_OUTBOX_INSERT, list(_outbox_row(event, self._json)))
        return row

    # -- the outbox -------------------------------------------------------------------------

    def unpublished(self, before: datetime, limit: int) -> list[Event]:
        rows = self._all(
            "SELECT id, type, account_id, session_id, data, created_at FROM outbox"
            " WHERE created_at < ? ORDER BY created_at, id LIMIT ?",
            [before, limit],
        )
        return [_event(r) for r in rows]

    def get_events(self, event_ids: Sequence[str]) -> list[Event]:
        if not event_ids:
            return []
        marks = ", ".join("?" for _ in event_ids)
        rows = self._all(
            "SELECT id, type, account_id, session_id, data, created_at FROM outbox"
            f" WHERE id IN ({marks}) ORDER BY created_at, id",
            list(event_ids),
        )
        return [_event(r) for r in rows]

    def delete_events(self, event_ids: Sequence[str]) -> None:
        if not event_ids:
            return
        with self._tx() as tx:
            for part in _chunked(event_ids):
                marks = ", ".join("?" for _ in part)
                # a published event has nothing left to do: its row goes (the table stays small)
                tx.q(f"DELETE FROM outbox WHERE id IN ({marks})", list(part))
