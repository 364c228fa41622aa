"""Sessions (``SessionRepository``): rows, updates, the purge and the retention read."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from kontex.adapters.sql.base import Repository, after_cursor, as_time, update_sql
from kontex.domain.models import Session

if TYPE_CHECKING:  # (kontex.port_pages: made by the listing that calls page)
    from kontex.ports import SessionListing

COLUMNS = "id, account_id, name, description, metadata, status, created_at, updated_at"
INSERT_SQL = f"INSERT INTO sessions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# A session read answers its last activity as updated_at: its own last change or its newest
# snapshot, whichever is later (one step down the snapshots_session index per row)
_LAST_SNAPSHOT = (
    "(SELECT MAX(p.created_at) FROM snapshots p WHERE p.session_id = sessions.id)"
    " AS last_snapshot_at"
)
SELECT_SQL = f"SELECT {COLUMNS}, {_LAST_SNAPSHOT} FROM sessions WHERE account_id = ? AND id = ?"
LIST_SQL = f"SELECT {COLUMNS}, {_LAST_SNAPSHOT} FROM sessions WHERE account_id = ?"
UPDATABLE = {"name", "description", "metadata", "status", "updated_at"}
# What a session holds, children before parents; session_purges marks one being purged (the
# seal triggers let its rows go)
PURGED_TABLES = (
    "checkpoint_writes",
    "checkpoints",
    "checkpoint_threads",
    "revision_usage",
    "snapshot_revisions",
    "snapshots",
    "chunks",
    "items",
    "chain_nodes",
    "session_traces",
    "session_aliases",
    "tasks",
)
# revisions are reached through their snapshot: (snapshot_id, seq) is their only index
_REVISIONS = (
    "FROM snapshot_revisions r JOIN snapshots p ON p.id = r.snapshot_id WHERE p.session_id = s.id"
)
INACTIVE_SQL = (
    "SELECT s.account_id, s.id AS session_id, s.name, s.updated_at,"
    " (SELECT MAX(t.updated_at) FROM tasks t WHERE t.session_id = s.id) AS task_at,"
    " (SELECT MAX(p.created_at) FROM snapshots p WHERE p.session_id = s.id) AS snapshot_at,"
    f" (SELECT MAX(r.created_at) {_REVISIONS}) AS revision_at,"
    " (SELECT COUNT(*) FROM snapshots p WHERE p.session_id = s.id) AS snapshots"
    " FROM sessions s WHERE s.updated_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.session_id = s.id AND t.updated_at >= ?)"
    " AND NOT EXISTS (SELECT 1 FROM snapshots p WHERE p.session_id = s.id"
    " AND p.created_at >= ?)"
    f" AND NOT EXISTS (SELECT 1 {_REVISIONS} AND r.created_at >= ?)"
)


def _active(row: dict[str, Any]) -> Session:
    """A session row whose ``updated_at`` is its last activity (``_LAST_SNAPSHOT``)."""
    last = row.pop("last_snapshot_at")
    if last is not None:
        row["updated_at"] = max(as_time(row["updated_at"]), as_time(last))
    return Session(**row)


class SqlSessions(Repository):
    def add(self, session: Session) -> None:
        s = session
        self._work.run(
            INSERT_SQL,
            [
                s.id,
                s.account_id,
                s.name,
                s.description,
                self._work.json(s.metadata),
                s.status.value,
                s.created_at,
                s.updated_at,
            ],
        )

    def get(self, account_id: str, session_id: str) -> Session | None:
        row = self._work.one(SELECT_SQL, [account_id, session_id])
        return _active(row) if row else None

    def page(self, account_id: str, listing: SessionListing) -> list[Session]:
        sql, params = LIST_SQL, list[Any]([account_id])
        if listing.status is not None:
            sql += " AND status = ?"
            params.append(listing.status)
        sql, params = after_cursor(sql, params, listing.after, before=listing.newest_first)
        order = "created_at DESC, id DESC" if listing.newest_first else "created_at, id"
        rows = self._work.run(sql + f" ORDER BY {order} LIMIT ?", [*params, listing.limit])
        return [_active(r) for r in rows]

    def update(self, account_id: str, session_id: str, changes: dict[str, Any]) -> Session | None:
        sql, values = update_sql("sessions", UPDATABLE, changes, COLUMNS, self._work)
        rows = self._work.run(sql, [*values, account_id, session_id])
        return Session(**rows[0]) if rows else None  # updated_at is now: later than any snapshot

    def purge(self, account_id: str, session_id: str) -> bool:
        if (
            self._work.one(
                "SELECT id FROM sessions WHERE account_id = ? AND id = ?", [account_id, session_id]
            )
            is None
        ):
            return False
        run = self._work.run
        run("INSERT INTO session_purges (session_id) VALUES (?)", [session_id])
        for table in PURGED_TABLES:
            run(f"DELETE FROM {table} WHERE session_id = ?", [session_id])
        run("DELETE FROM sessions WHERE id = ?", [session_id])
        run("DELETE FROM session_purges WHERE session_id = ?", [session_id])
        return True

    def inactive(
        self, cutoff: datetime, account_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Sessions with no activity since ``cutoff``, least recently touched first.

        Activity is the latest of the session's ``updated_at``, its tasks' ``updated_at``, its
        snapshots' and their revisions' ``created_at``. Each row: ``account_id``,
        ``session_id``, ``name``, ``last_activity``, ``snapshots`` (count).
        """
        sql, params = INACTIVE_SQL, list[Any]([cutoff, cutoff, cutoff, cutoff])
        if account_id is not None:
            sql += " AND s.account_id = ?"
            params.append(account_id)
        rows = self._work.run(sql + " ORDER BY s.updated_at, s.id LIMIT ?", [*params, limit])
        for row in rows:
            times = [row.pop(k) for k in ("updated_at", "task_at", "snapshot_at", "revision_at")]
            row["last_activity"] = max(as_time(t) for t in times if t is not None)
            row["snapshots"] = int(row["snapshots"])
        return rows
