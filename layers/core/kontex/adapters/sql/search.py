"""Search changes (``SearchChangeRepository``): where each embedded point enters and leaves the
chains of snapshots, so a search hit (a point) maps back to the snapshots holding it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kontex.adapters.sql.base import Repository, as_time, chunked, marks
from kontex.adapters.sql.snapshots import SELECT_SQL, snapshot_of
from kontex.domain.models import Snapshot
from kontex.ports import HeldRange, SearchChange

COLUMNS = (
    "point_id, snapshot_id, account_id, session_id, task_id, created_at, entered, role, position"
)
INSERT_SQL = f"INSERT INTO search_changes ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
DELETE_SQL = "DELETE FROM search_changes WHERE snapshot_id = ?"
# a point no other session holds: nothing else maps to it once the session's rows are gone
ORPHANED_SQL = """
SELECT DISTINCT c.point_id FROM search_changes c
WHERE c.account_id = ? AND c.session_id = ? AND NOT EXISTS (
    SELECT 1 FROM search_changes o
    WHERE o.point_id = c.point_id AND o.account_id = c.account_id AND o.session_id <> c.session_id
)
"""
# a range of one task's chain, newest first; the session's index orders by (created_at, id)
RANGE_SQL = (
    SELECT_SQL + " WHERE s.account_id = ? AND s.session_id = ? AND s.task_id = ?"
    " AND (s.created_at > ? OR (s.created_at = ? AND s.id >= ?))"
)
RANGE_END_SQL = " AND (s.created_at < ? OR (s.created_at = ? AND s.id < ?))"
RANGE_ORDER_SQL = " ORDER BY s.created_at DESC, s.id DESC LIMIT ?"


def _change(row: dict[str, Any]) -> SearchChange:
    return SearchChange(
        point_id=row["point_id"],
        snapshot_id=row["snapshot_id"],
        account_id=row["account_id"],
        session_id=row["session_id"],
        task_id=row["task_id"],
        created_at=as_time(row["created_at"]),
        entered=bool(row["entered"]),
        role=row["role"],
        position=int(row["position"]),
    )


class SqlSearchChanges(Repository):
    def replace(self, snapshot_id: str, changes: Sequence[SearchChange]) -> None:
        self._work.later(DELETE_SQL, [(snapshot_id,)])
        self._work.later(
            INSERT_SQL,
            [
                (
                    c.point_id,
                    c.snapshot_id,
                    c.account_id,
                    c.session_id,
                    c.task_id,
                    c.created_at,
                    c.entered,
                    c.role,
                    c.position,
                )
                for c in changes
            ],
        )

    def points_of(
        self, account_id: str, session_id: str | None = None, task_id: str | None = None
    ) -> set[str]:
        sql = "SELECT DISTINCT point_id FROM search_changes WHERE account_id = ? AND entered"
        params: list[Any] = [account_id]
        if session_id is not None:
            sql += " AND session_id = ?"
            params.append(session_id)
        if task_id is not None:
            sql += " AND task_id = ?"
            params.append(task_id)
        return {r["point_id"] for r in self._work.run(sql, params)}

    def changes(
        self,
        account_id: str,
        point_ids: Sequence[str],
        session_id: str | None = None,
        task_id: str | None = None,
    ) -> list[SearchChange]:
        found: list[SearchChange] = []
        for part in chunked(list(dict.fromkeys(point_ids))):
            sql = (
                f"SELECT {COLUMNS} FROM search_changes"
                f" WHERE point_id IN ({marks(part)}) AND account_id = ?"
            )
            params: list[Any] = [*part, account_id]
            if session_id is not None:
                sql += " AND session_id = ?"
                params.append(session_id)
            if task_id is not None:
                sql += " AND task_id = ?"
                params.append(task_id)
            found += [_change(r) for r in self._work.run(sql, params)]
        found.sort(key=lambda c: (c.point_id, c.session_id, c.task_id, c.created_at, c.snapshot_id))
        return found

    def snapshots_in(
        self, account_id: str, ranges: Sequence[HeldRange], limit: int
    ) -> list[list[Snapshot]]:
        statements: list[tuple[str, list[Any]]] = []
        for r in ranges:
            sql = RANGE_SQL
            params: list[Any] = [account_id, r.session_id, r.task_id, *_bound(r.start)]
            if r.end is not None:
                sql += RANGE_END_SQL
                params += _bound(r.end)
            statements.append((sql + RANGE_ORDER_SQL, [*params, limit]))
        if not statements:
            return []
        answers = self._work.run_together(statements)
        return [[snapshot_of(row) for row in rows] for rows in answers]

    def child_of(self, account_id: str, task_id: str, snapshot_id: str) -> str | None:
        row = self._work.one(
            "SELECT id FROM snapshots WHERE task_id = ? AND parent_snapshot_id = ?"
            " AND account_id = ?",
            [task_id, snapshot_id, account_id],
        )
        return row["id"] if row else None

    def orphaned_by(self, account_id: str, session_id: str) -> list[str]:
        return [r["point_id"] for r in self._work.run(ORPHANED_SQL, [account_id, session_id])]

    def forget(self, account_id: str, session_id: str) -> None:
        self._work.run(
            "DELETE FROM search_changes WHERE session_id = ? AND account_id = ?",
            [session_id, account_id],
        )


def _bound(at: tuple[Any, str]) -> list[Any]:
    return [at[0], at[0], at[1]]
