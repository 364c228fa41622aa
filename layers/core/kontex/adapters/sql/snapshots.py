"""Snapshots (``SnapshotRepository``): sealed rows, their revisions and each task's head."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from kontex.adapters.sql import content, tasks
from kontex.adapters.sql.base import (
    CHUNK,
    Repository,
    after_cursor,
    as_bytes,
    as_time,
    by_account,
    chunked,
    marks,
)
from kontex.domain import seal
from kontex.domain.errors import IntegrityError
from kontex.domain.models import Snapshot, Task, Usage, sha256_hex
from kontex.ports import Revision

# A snapshot as it stands: its latest revision's bundle over the original's. Both rows come whole
# (each with its seal), so a read checks every field it serves (``snapshot_of``).
USAGE_NAMES = seal.SNAPSHOT_FIELDS[-6:]
USAGE_COLUMNS = ", ".join(USAGE_NAMES)
SELECT_SQL = f"""
SELECT s.id, s.account_id, s.session_id, s.task_id, s.label, s.source, s.model, s.token_total,
       s.parent_snapshot_id, s.rollback_of, s.forked_from, s.bundle_hash, s.stored_bytes,
       s.captured_at, s.created_at, s.manifest, s.seal,
       {", ".join("s." + c for c in USAGE_NAMES)},
       r.seq AS r_seq, r.model AS r_model, r.token_total AS r_token_total,
       r.bundle_hash AS r_bundle_hash, r.stored_bytes AS r_stored_bytes,
       r.created_at AS r_created_at, r.manifest AS r_manifest, r.seal AS r_seal
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
    f" stored_bytes, captured_at, created_at, {USAGE_COLUMNS}, manifest, seal)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
LOCK_HEADS_SQL = LOCK_HEAD_SQL.replace("t.id = ?", "t.id IN ({marks})")
# each task's new head: one statement for a batch's tasks ({pairs}: (task id, head) rows)
SET_HEADS_SQL = (
    "UPDATE tasks SET head_snapshot_id = v.column2 FROM (VALUES {pairs}) AS v"
    " WHERE tasks.id = v.column1"
)
EXISTING_SQL = "SELECT id FROM snapshots WHERE id IN ({marks})"
INSERT_REVISION_SQL = (
    "INSERT INTO snapshot_revisions (snapshot_id, seq, session_id, bundle_hash,"
    " token_total, model, stored_bytes, created_at, manifest, seal)"
    " SELECT ?, ?, session_id, ?, ?, ?, ?, ?, ?, ? FROM snapshots WHERE id = ?"
)
# The usage a revision's manifest carries, for the sums (adapters/sql/queries.py): only for
# the snapshot of a call (a fork's or a rollback's restates a call, it does not make one)
INSERT_REVISION_USAGE_SQL = (
    "INSERT INTO revision_usage (snapshot_id, seq, session_id, input_tokens, output_tokens,"
    " cache_read_tokens, cache_write_tokens, latency_ms, cost_usd)"
    " SELECT ?, ?, session_id, ?, ?, ?, ?, ?, ? FROM snapshots"
    " WHERE id = ? AND forked_from IS NULL AND rollback_of IS NULL"
)
REVISION_SQL = (
    "SELECT r.snapshot_id, r.seq, r.bundle_hash, r.token_total, r.model, r.created_at,"
    " r.stored_bytes, r.manifest, r.seal FROM snapshot_revisions r"
    " JOIN snapshots s ON s.id = r.snapshot_id"
    " WHERE s.account_id = ? AND r.snapshot_id = ?"
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


def _revision_of(row: dict[str, Any]) -> Revision:
    """A revision row, checked against its seal."""
    seal.check_revision(row, row.get("seal"))
    return Revision(
        snapshot_id=row["snapshot_id"],
        seq=int(row["seq"]),
        bundle_hash=row["bundle_hash"],
        token_total=int(row["token_total"]),
        model=row["model"],
        created_at=as_time(row["created_at"]),
        stored_bytes=int(row["stored_bytes"]),
        manifest=as_bytes(row.get("manifest")),
    )


def _original_of(row: dict[str, Any]) -> Revision:
    """Revision 0 of a snapshot (as first written) from its ``SELECT_SQL`` row, checked."""
    seal.check_snapshot(row, row["seal"])
    return Revision(
        snapshot_id=row["id"],
        seq=0,
        bundle_hash=row["bundle_hash"],
        token_total=int(row["token_total"]),
        model=row["model"],
        created_at=as_time(row["created_at"]),
        stored_bytes=int(row["stored_bytes"]),
        manifest=as_bytes(row["manifest"]),
    )


def stored_of(row: dict[str, Any]) -> tuple[Snapshot, bytes | None]:
    """A ``SELECT_SQL`` row as the snapshot stands and its manifest, every field it serves
    checked: the row's and its latest revision's against their seals, the manifest (which
    holds the usage) against its hash when the usage is read from it. ``IntegrityError`` when
    any was altered (a bundle read checks the manifest again, with everything it names)."""
    original = _original_of(row)
    latest = original
    if row["r_seq"] is not None:
        revision = {k[2:]: v for k, v in row.items() if k.startswith("r_")}
        latest = _revision_of({**revision, "snapshot_id": row["id"]})
    manifest = latest.manifest
    usage = usage_of(manifest)  # the one field a row read serves from the manifest: checked
    if usage is not None and sha256_hex(manifest or b"") != latest.bundle_hash:
        raise IntegrityError(f"the manifest of snapshot {row['id']} does not match its hash")
    snapshot = Snapshot(
        id=row["id"],
        account_id=row["account_id"],
        session_id=row["session_id"],
        task_id=row["task_id"],
        label=row["label"],
        source=row["source"],
        model=latest.model,
        token_total=latest.token_total,
        parent_snapshot_id=row["parent_snapshot_id"],
        rollback_of=row["rollback_of"],
        forked_from=row["forked_from"],
        bundle_hash=latest.bundle_hash,
        stored_bytes=original.stored_bytes,
        captured_at=as_time(row["captured_at"]),
        created_at=original.created_at,
        enriched=latest is not original,
        enriched_at=latest.created_at if latest is not original else None,
        usage=usage,
    )
    return snapshot, manifest


def snapshot_of(row: dict[str, Any]) -> Snapshot:
    return stored_of(row)[0]


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


def _row(s: Snapshot, manifest: bytes) -> tuple[Any, ...]:
    """The sealed row of a snapshot (``INSERT_SQL``'s parameters)."""
    columns: dict[str, Any] = {
        "id": s.id,
        "account_id": s.account_id,
        "session_id": s.session_id,
        "task_id": s.task_id,
        "label": s.label,
        "source": s.source.value,
        "model": s.model,
        "token_total": s.token_total,
        "parent_snapshot_id": s.parent_snapshot_id,
        "rollback_of": s.rollback_of,
        "forked_from": s.forked_from,
        "bundle_hash": s.bundle_hash,
        "stored_bytes": s.stored_bytes,
        "captured_at": s.captured_at,
        "created_at": s.created_at,
        **dict(zip(USAGE_NAMES, usage_columns(s.usage), strict=True)),
    }
    return (*columns.values(), manifest, seal.snapshot_seal(columns))


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
        return locked, stored_of(row)

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

    def lock_heads_and_lookup(
        self,
        snapshot_ids: Sequence[str],
        tasks: Sequence[tuple[str, str]],
        content_of: dict[str, tuple[Sequence[bytes], Sequence[bytes]]],
    ) -> tuple[
        set[str],
        dict[tuple[str, str], Locked],
        dict[str, tuple[dict[bytes, int], dict[bytes, bytes]]],
    ]:
        """A batch's writes prepared in one round trip on PostgreSQL: which of
        ``snapshot_ids`` are stored, the (account_id, task_id) ``tasks`` locked (in id order,
        so two batches never wait for each other crosswise) with their heads, and per session
        the items and chunks it has of ``content_of`` (session -> item and chunk addresses)."""
        statements: list[tuple[str, list[Any]]] = []
        ids = list(dict.fromkeys(snapshot_ids))
        for part in chunked(ids):
            statements.append((EXISTING_SQL.format(marks=marks(part)), part))
        n_existing = len(statements)
        for account_id, task_ids in by_account(tasks):
            sql = LOCK_HEADS_SQL.format(marks=marks(task_ids)) + " ORDER BY t.id"
            statements.append((sql + self._work.lock_clause, [account_id, *task_ids]))
        n_locks = len(statements)
        sessions: list[str] = []
        for session_id, (items, chunks) in content_of.items():
            for statement in content.lookup_statements(session_id, items, chunks):
                statements.append(statement)
                sessions.append(session_id)
        answers = self._work.run_together(statements) if statements else []
        stored = {r["id"] for rows in answers[:n_existing] for r in rows}
        locked: dict[tuple[str, str], Locked] = {}
        for rows in answers[n_existing:n_locks]:
            for row in rows:
                task, head, manifest = _locked([row])  # type: ignore[misc]
                locked[(task.account_id, task.id)] = (task, head, manifest)
        looked_up: dict[str, tuple[dict[bytes, int], dict[bytes, bytes]]] = {
            session_id: ({}, {}) for session_id in content_of
        }
        for session_id, rows in zip(sessions, answers[n_locks:], strict=True):
            content.found(rows, looked_up[session_id])
        return stored, locked, looked_up

    def exists(self, snapshot_id: str) -> bool:
        return (
            self._work.one("SELECT 1 AS x FROM snapshots WHERE id = ?", [snapshot_id]) is not None
        )

    def existing(self, snapshot_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for ids in chunked(list(dict.fromkeys(snapshot_ids))):
            rows = self._work.run(f"SELECT id FROM snapshots WHERE id IN ({marks(ids)})", ids)
            found.update(r["id"] for r in rows)
        return found

    def get(self, account_id: str, snapshot_id: str) -> Snapshot | None:
        row = self._work.one(BY_ID_SQL, [account_id, snapshot_id])
        return snapshot_of(row) if row else None

    def stored(self, account_id: str, snapshot_id: str) -> tuple[Snapshot, bytes | None] | None:
        row = self._work.one(BY_ID_SQL, [account_id, snapshot_id])
        return stored_of(row) if row else None

    def head(self, account_id: str, task_id: str) -> tuple[Snapshot, bytes | None] | None:
        row = self._work.one(HEAD_SQL, [account_id, task_id])
        return stored_of(row) if row else None

    def page(
        self, account_id: str, session_id: str, limit: int, after: tuple[str, str] | None
    ) -> list[Snapshot]:
        sql, params = after_cursor(LIST_SQL, [account_id, session_id], after, table="s.")
        rows = self._work.run(sql + " ORDER BY s.created_at, s.id LIMIT ?", [*params, limit])
        return [snapshot_of(r) for r in rows]

    def revisions(self, account_id: str, snapshot_id: str) -> list[Revision]:
        """Every state of the snapshot: seq 0 is the bundle as first written."""
        original, later = self._work.run_together(
            [
                (BY_ID_SQL, [account_id, snapshot_id]),
                (REVISION_SQL + " ORDER BY r.seq", [account_id, snapshot_id]),
            ]
        )
        if not original:
            return []
        return [_original_of(original[0]), *(_revision_of(r) for r in later)]

    def revision(self, account_id: str, snapshot_id: str, seq: int) -> Revision | None:
        if seq == 0:
            row = self._work.one(BY_ID_SQL, [account_id, snapshot_id])
            return _original_of(row) if row else None
        row = self._work.one(REVISION_SQL + " AND r.seq = ?", [account_id, snapshot_id, seq])
        return _revision_of(row) if row else None

    def revision_count(self, snapshot_id: str) -> int:
        return int(self._work.run(REVISION_COUNT_SQL, [snapshot_id])[0]["n"])

    def add(self, snapshot: Snapshot, manifest: bytes) -> None:
        self.add_many([(snapshot, manifest)])

    def add_many(self, snapshots: Sequence[tuple[Snapshot, bytes]]) -> None:
        """Insert sealed rows (parents before children) and make the last of each task its
        head: one statement per table (up to ``CHUNK`` tasks' heads a statement), whatever
        their number."""
        rows: list[Sequence[Any]] = [_row(s, manifest) for s, manifest in snapshots]
        heads = list({s.task_id: s.id for s, _ in snapshots}.items())  # the last of each task
        self._work.later(INSERT_SQL, rows)
        for part in chunked(heads):
            pairs = ", ".join("(?, ?)" for _ in part)
            self._work.later(
                SET_HEADS_SQL.format(pairs=pairs), [[v for pair in part for v in pair]]
            )

    def add_revision(self, revision: Revision, manifest: bytes) -> None:
        r = revision
        columns = dataclasses.asdict(r)
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
                    seal.revision_seal(columns),
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
