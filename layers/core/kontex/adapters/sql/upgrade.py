"""The v1 engine's rows (``UpgradeRepository``), read once by the upgrade to v2 manifests."""

from __future__ import annotations

from typing import Any

from kontex.adapters.sql import snapshots
from kontex.adapters.sql.base import Repository, as_time
from kontex.domain import seal
from kontex.domain.models import ThreadState

V1_ROWS_SQL = (
    "SELECT id AS snapshot_id, 0 AS seq, account_id, session_id, bundle_hash, created_at"
    " FROM snapshots WHERE manifest IS NULL"
    " UNION ALL"
    " SELECT r.snapshot_id, r.seq, s.account_id, s.session_id, r.bundle_hash, r.created_at"
    " FROM snapshot_revisions r JOIN snapshots s ON s.id = r.snapshot_id"
    " WHERE r.manifest IS NULL ORDER BY created_at, snapshot_id, seq"
)
# Item hashes of a v1 list, head to tail; {step} joins each node to its parent
_V1_CHAIN = """
WITH RECURSIVE chain (parent_hash, item_hash, position) AS (
    SELECT parent_hash, item_hash, position
      FROM chain_nodes WHERE session_id = ? AND node_hash = ?
    UNION ALL
    SELECT n.parent_hash, n.item_hash, n.position FROM chain c {step}
)
SELECT item_hash FROM chain ORDER BY position
"""
V1_CHAIN_SQL = _V1_CHAIN.format(
    step="JOIN chain_nodes n ON n.session_id = ? AND n.node_hash = c.parent_hash"
)
# PostgreSQL plans the plain join as a scan of the session's nodes per step (quadratic): there
# each step is a LATERAL primary-key lookup
V1_CHAIN_SQL_POSTGRES = _V1_CHAIN.format(
    step="CROSS JOIN LATERAL (SELECT parent_hash, item_hash, position FROM chain_nodes"
    " WHERE session_id = ? AND node_hash = c.parent_hash LIMIT 1) n"
)
# the upgrade of a sealed row: allowed once, while its manifest is NULL
SET_MANIFEST_SQL = (
    "UPDATE snapshots SET manifest = ?, bundle_hash = ? WHERE id = ? AND manifest IS NULL"
)
SET_REVISION_MANIFEST_SQL = (
    "UPDATE snapshot_revisions SET manifest = ?, bundle_hash = ?"
    " WHERE snapshot_id = ? AND seq = ? AND manifest IS NULL"
)

# rows written before 0009_seal (the seal NULL; v1 rows get theirs after their manifest)
UNSEALED_SNAPSHOTS_SQL = (
    "SELECT id, account_id, session_id, task_id, label, source, model, token_total,"
    " parent_snapshot_id, rollback_of, forked_from, bundle_hash, stored_bytes, captured_at,"
    f" created_at, {snapshots.USAGE_COLUMNS} FROM snapshots"
    " WHERE seal IS NULL AND manifest IS NOT NULL ORDER BY id LIMIT ?"
)
UNSEALED_REVISIONS_SQL = (
    "SELECT snapshot_id, seq, bundle_hash, token_total, model, stored_bytes, created_at"
    " FROM snapshot_revisions WHERE seal IS NULL AND manifest IS NOT NULL"
    " ORDER BY snapshot_id, seq LIMIT ?"
)
SET_SEAL_SQL = "UPDATE snapshots SET seal = ? WHERE id = ? AND seal IS NULL"
SET_REVISION_SEAL_SQL = (
    "UPDATE snapshot_revisions SET seal = ? WHERE snapshot_id = ? AND seq = ? AND seal IS NULL"
)

# thread-state documents of the LangGraph saver before the checkpoint API ({"kind": "langgraph"})
LANGGRAPH_DOCUMENTS_SQL = (
    "SELECT account_id, thread_id, user_data, version, updated_at FROM thread_states"
    " WHERE thread_id LIKE ? AND user_data LIKE ? ORDER BY account_id, thread_id"
)
LANGGRAPH_PATTERNS = ["thrd_lg-%", '%"kind": "langgraph"%']  # parameters: no % in the SQL text
TASK_SNAPSHOTS_SQL = "SELECT id, label FROM snapshots WHERE task_id = ? ORDER BY created_at, id"


class SqlUpgrade(Repository):
    def v1_rows(self) -> list[dict[str, Any]]:
        """Snapshots and revisions written by the v1 engine (no manifest yet), oldest first."""
        rows = self._work.run(V1_ROWS_SQL)
        for row in rows:
            row["created_at"] = as_time(row["created_at"])
        return rows

    def v1_chain(self, session_id: str, head: str) -> list[str]:
        sql = V1_CHAIN_SQL_POSTGRES if self._work.dialect == "postgres" else V1_CHAIN_SQL
        return [r["item_hash"] for r in self._work.run(sql, [session_id, head, session_id])]

    def set_v2_manifest(
        self, snapshot_id: str, seq: int, manifest: bytes, bundle_hash: str
    ) -> None:
        if seq == 0:
            self._work.later(SET_MANIFEST_SQL, [(manifest, bundle_hash, snapshot_id)])
        else:
            self._work.later(SET_REVISION_MANIFEST_SQL, [(manifest, bundle_hash, snapshot_id, seq)])

    def seal_unsealed(self, limit: int) -> int:
        """Seal up to ``limit`` snapshot and revision rows written before seals existed, as
        they stand; returns how many."""
        rows = self._work.run(UNSEALED_SNAPSHOTS_SQL, [limit])
        revisions = self._work.run(UNSEALED_REVISIONS_SQL, [limit])
        self._work.later(SET_SEAL_SQL, [(seal.snapshot_seal(r), r["id"]) for r in rows])
        self._work.later(
            SET_REVISION_SEAL_SQL,
            [(seal.revision_seal(r), r["snapshot_id"], r["seq"]) for r in revisions],
        )
        return len(rows) + len(revisions)

    def langgraph_documents(self) -> list[ThreadState]:
        return [
            ThreadState(**r) for r in self._work.run(LANGGRAPH_DOCUMENTS_SQL, LANGGRAPH_PATTERNS)
        ]

    def task_snapshots(self, task_id: str) -> list[tuple[str, str]]:
        return [(r["id"], r["label"]) for r in self._work.run(TASK_SNAPSHOTS_SQL, [task_id])]
