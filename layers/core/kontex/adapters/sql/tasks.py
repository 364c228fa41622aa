"""Tasks (``TaskRepository``): the tree of a session's units of work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kontex.adapters.sql.base import Repository, by_account, marks, update_sql
from kontex.domain.models import Task

COLUMNS = "id, account_id, session_id, parent_task_id, name, status, created_at, updated_at"
INSERT_SQL = f"INSERT INTO tasks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
SELECT_SQL = f"SELECT {COLUMNS} FROM tasks WHERE account_id = ? AND id = ?"
LIST_SQL = (
    f"SELECT {COLUMNS} FROM tasks WHERE account_id = ? AND session_id = ? ORDER BY created_at, id"
)
UPDATABLE = {"name", "status", "updated_at"}


def row_of(task: Task) -> tuple[Any, ...]:
    t = task
    return (
        t.id,
        t.account_id,
        t.session_id,
        t.parent_task_id,
        t.name,
        t.status.value,
        t.created_at,
        t.updated_at,
    )


class SqlTasks(Repository):
    def add(self, task: Task) -> None:
        self._work.run(INSERT_SQL, row_of(task))

    def add_missing(self, tasks: Sequence[Task]) -> list[Task]:
        existing: set[str] = set()
        for account_id, ids in by_account((t.account_id, t.id) for t in tasks):
            rows = self._work.run(
                f"SELECT id FROM tasks WHERE account_id = ? AND id IN ({marks(ids)})",
                [account_id, *ids],
            )
            existing.update(r["id"] for r in rows)
        new = [t for t in tasks if t.id not in existing]
        self._work.later(INSERT_SQL + " ON CONFLICT DO NOTHING", [row_of(t) for t in new])
        return new

    def get(self, account_id: str, task_id: str) -> Task | None:
        row = self._work.one(SELECT_SQL, [account_id, task_id])
        return Task(**row) if row else None

    def of_session(self, account_id: str, session_id: str) -> list[Task]:
        return [Task(**r) for r in self._work.run(LIST_SQL, [account_id, session_id])]

    def update(self, account_id: str, task_id: str, changes: dict[str, Any]) -> Task | None:
        sql, values = update_sql("tasks", UPDATABLE, changes, COLUMNS, self._work)
        rows = self._work.run(sql, [*values, account_id, task_id])
        return Task(**rows[0]) if rows else None
