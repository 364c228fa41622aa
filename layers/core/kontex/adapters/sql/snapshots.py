"""Snapshots (``SnapshotRepository``): sealed rows, their revisions and each task's head."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kontex.adapters.sql import content, tasks
from kontex.adapters.sql.base import CHUNK, Repository, after_cursor, as_bytes, as_time
from kontex.domain.models import Snapshot, Task, Usage
from kontex.ports import Revision

# A snapshot as it stands: its latest revision's bundle over the original's
SELECT_SQL = """
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
HEAD_SQL = (
    SELECT_SQL + " JOIN tasks t ON t.head_snapshot_id = s.id WHERE t.account_id = ? AND t.id = ?"
)
BY_ID_SQL = SELECT_SQL + " WHERE s.account_id = ? AND s.id = ?"
LIST_SQL = SELECT_SQL + " WHERE s.account_id = ? AND s.session_id = ?"
LOCK_HEAD_SQL = (
    "SELECT "
    + ", ".join(f"t.{c.strip()}" for c in tasks.COLUMNS.split(","))
    + ", t.head_snapshot_id, h.manifest AS head_manifest FROM tasks t"
    " LEFT JOIN snapshots h ON h.id = t.head_snapshot_id WHERE t.account_id = ? AND t.id = ?"
)
INSERT_SQL = (
    "INSERT INTO snapshots (id, account_id, session_id, task_id, label, source, model,"
    " token_total, parent_snapshot_id, rollback_of, forked_from, bundle_hash,"
    " stored_bytes, captured_at, created_at, manifest, usage_input_tokens,"
    " usage_output_tokens, usage_cache_read_tokens, usage_cache_write_tokens,"
    " usage_latency_ms, usage_cost_usd)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SET_HEAD_SQL = "UPDATE tasks SET head_snapshot_id = ? WHERE id = ?"
INSERT_REVISION_SQL = (
    "INSERT INTO snapshot_revisions (snapshot_id, seq, session_id, bundle_hash,"
    " token_total, model, stored_bytes, created_at, manifest)"
    " SELECT ?, ?, session_id, ?, ?, ?, ?, ?, ? FROM snapshots WHERE id = ?"
)
# The usage a revision's manifest carries, for the sums (adapters/sql/queries.py): only for
# the snapshot of a call (a fork's or a rollback's restates a call, it does not make one)
INSERT_REVISION_USAGE_SQL = (
    "INSERT INTO revision_usage (snapshot_id, seq, session_id, input_tokens, output_tokens,"
    " cache_read_tokens, cache_write_tokens, latency_ms, cost_usd)"
    " SELECT ?, ?, session_id, ?, ?, ?, ?, ?, ? FROM snapshots"
    " WHERE id = ? AND forked_from IS NULL AND rollback_of IS NULL"
)
ORIGINAL_SQL = (
    "SELECT id AS snapshot_id, 0 AS seq, bundle_hash, token_total, model, created_at,"
    " stored_bytes, manifest FROM snapshots WHERE account_id = ? AND id = ?"
)
REVISION_SQL = (
    "SELECT r.snapshot_id, r.seq, r.bundle_hash, r.token_total, r.model, r.created_at,"
    " r.stored_bytes, r.manifest FROM snapshot_revisions r"
    " JOIN snapshots s ON s.id = r.snapshot_id"
    " WHERE s.account_id = ? AND r.snapshot_id = ? AND r.seq = ?"
)
REVISIONS_SQL = (
    "SELECT id AS snapshot_id, 0 AS seq, bundle_hash, token_total, model, created_at,"
    " stored_bytes FROM snapshots WHERE account_id = ? AND id = ?"
    " UNION ALL"
    " SELECT r.snapshot_id, r.seq, r.bundle_hash, r.token_total, r.model, r.created_at,"
    " r.stored_bytes"
    " FROM snapshot_revisions r JOIN snapshots s ON s.id = r.snapshot_id"
    " WHERE s.account_id = ? AND r.snapshot_id = ?"
    " ORDER BY seq"
)
REVISION_COUNT_SQL = "SELECT COUNT(*) AS n FROM snapshot_revisions WHERE snapshot_id = ?"

Locked = tuple[Task, str | None, bytes | None]


def usage_of(manifest: Any) -> Usage | None:
    """The ``usage`` scalar of a manifest (the snapshot of one captured LLM call)."""
    if manifest is None:
        return None
    header = bytes(manifest).partition(b"\n")[0]  # JSON scalars, then the packed slices
    if b'"usage"' not in header:
        return None
    found = json.loads(header).get("usage")
    return Usage.model_validate(found) if found else None


def snapshot_of(row: dict[str, Any]) -> Snapshot:
    fields = {k: v for k, v in row.items() if k != "manifest"}
    return Snapshot(
        **fields, enriched=row["enriched_at"] is not None, usage=usage_of(row.get("manifest"))
    )


def usage_columns(usage: Usage | None) -> tuple[Any, ...]:
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


def _locked(rows: list[dict[str, Any]]) -> Locked | None:
    if not rows:
        return None
    head = rows[0].pop("head_snapshot_id")
    manifest = as_bytes(rows[0].pop("head_manifest"))
    return Task(**rows[0]), head, manifest


class SqlSnapshots(Repository):
    def _lock_sql(self, account_id: str, task_id: str) -> tuple[str, list[Any]]:
        return LOCK_HEAD_SQL + self._work.lock_clause, [account_id, task_id]

    def lock_head(self, account_id: str, task_id: str) -> Locked | None:
        return _locked(self._work.run(*self._lock_sql(account_id, task_id)))

    def lock_head_and_read(
        self, account_id: str, task_id: str, snapshot_id: str | None
    ) -> tuple[Locked, tuple[Snapshot, bytes | None] | None] | None:
        """Sent together: the lock, then the snapshot (the head when None) as it stands."""
        if snapshot_id is None:
            read: tuple[str, list[Any]] = (HEAD_SQL, [account_id, task_id])
        else:
            read = (BY_ID_SQL, [account_id, snapshot_id])
        task_rows, snapshot_rows = self._work.run_together(
            [self._lock_sql(account_id, task_id), read]
        )
        locked = _locked(task_rows)
        if locked is None:
            return None
        if not snapshot_rows:
            return locked, None
        row = snapshot_rows[0]
        return locked, (snapshot_of(row), as_bytes(row["manifest"]))

    def lock_head_and_lookup(
        self, account_id: str, task_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[Locked, dict[bytes, int], dict[bytes, bytes]] | None:
        """Sent together (one round trip on PostgreSQL: the lock is taken by the first
        statement, before the lookup runs)."""
        if not items and not chunks or len(items) + len(chunks) > CHUNK:
            locked = self.lock_head(account_id, task_id)
            if locked is None:
                return None
            return locked, *content.SqlContent(self._work).lookup(
                locked[0].session_id, items, chunks
            )
        lookup = content.lookup_sql(
            "(SELECT session_id FROM tasks WHERE account_id = ? AND id = ?)",
            [account_id, task_id],
            items,
            chunks,
        )
        task_rows, found_rows = self._work.run_together(
            [self._lock_sql(account_id, task_id), lookup]
        )
        locked = _locked(task_rows)
        if locked is None:
            return None
        return locked, *content.found(found_rows)

    def exists(self, snapshot_id: str) -> bool:
        return (
            self._work.one("SELECT 1 AS x FROM snapshots WHERE id = ?", [snapshot_id]) is not None
        )

    def get(self, account_id: str, snapshot_id: str) -> Snapshot | None:
        row = self._work.one(BY_ID_SQL, [account_id, snapshot_id])
        return snapshot_of(row) if row else None

    def stored(self, account_id: str, snapshot_id: str) -> tuple[Snapshot, bytes | None] | None:
        row = self._work.one(BY_ID_SQL, [account_id, snapshot_id])
        return (snapshot_of(row), as_bytes(row["manifest"])) if row else None

    def head(self, account_id: str, task_id: str) -> tuple[Snapshot, bytes | None] | None:
        row = self._work.one(HEAD_SQL, [account_id, task_id])
        return (snapshot_of(row), as_bytes(row["manifest"])) if row else None

    def page(
        self, account_id: str, session_id: str, limit: int, after: tuple[str, str] | None
    ) -> list[Snapshot]:
        sql, params = after_cursor(LIST_SQL, [account_id, session_id], after, table="s.")
        rows = self._work.run(sql + " ORDER BY s.created_at, s.id LIMIT ?", [*params, limit])
        return [snapshot_of(r) for r in rows]

    def revisions(self, account_id: str, snapshot_id: str) -> list[Revision]:
        """Every state of the snapshot: seq 0 is the bundle as first written."""
        rows = self._work.run(REVISIONS_SQL, [account_id, snapshot_id, account_id, snapshot_id])
        return [Revision(**r) for r in rows]

    def revision(self, account_id: str, snapshot_id: str, seq: int) -> Revision | None:
        if seq == 0:
            row = self._work.one(ORIGINAL_SQL, [account_id, snapshot_id])
        else:
            row = self._work.one(REVISION_SQL, [account_id, snapshot_id, seq])
        if row is None:
            return None
        row["manifest"] = as_bytes(row["manifest"])
        row["created_at"] = as_time(row["created_at"])
        return Revision(**row)

    def revision_count(self, snapshot_id: str) -> int:
        return int(self._work.run(REVISION_COUNT_SQL, [snapshot_id])[0]["n"])

    def add(self, snapshot: Snapshot, manifest: bytes) -> None:
        s = snapshot
        row = (
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
            *usage_columns(s.usage),
        )
        self._work.later(INSERT_SQL, [row])
        self._work.later(SET_HEAD_SQL, [(s.id, s.task_id)])

    def add_revision(self, revision: Revision, manifest: bytes) -> None:
        r = revision
        self._work.later(
            INSERT_REVISION_SQL,
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
        usage = usage_of(manifest)
        if usage is not None:
            self._work.later(
                INSERT_REVISION_USAGE_SQL,
                [(r.snapshot_id, r.seq, *usage_columns(usage), r.snapshot_id)],
            )
