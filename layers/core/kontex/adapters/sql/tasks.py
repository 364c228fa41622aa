"""Tasks (``TaskRepository``): the tree of a session's units of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kontex.adapters.sql.base import Repository, update_sql
from kontex.domain.models import Task

COLUMNS = "id, account_id, session_id, parent_task_id, name, status, created_at, updated_at"
INSERT_SQL = f"INSERT INTO tasks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
ADD_MISSING_SQL = INSERT_SQL + " ON CONFLICT DO NOTHING RETURNING id"
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
        return self.add_missing_later(tasks)()

    def add_missing_later(self, tasks: Sequence[Task]) -> Callable[[], list[Task]]:
        """The tasks inserted where missing, with ``RETURNING`` the ids it made: no read of
        its own before the insert, and the answer travels with the unit's next round trip."""
        if not tasks:
            return list
        answer = self._work.ask(ADD_MISSING_SQL, [row_of(t) for t in tasks])

        def added() -> list[Task]:
            made = {r["id"] for r in answer()}
            return [t for t in tasks if t.id in made]

        return added

    def get(self, account_id: str, task_id: str) -> Task | None:
        row = self._work.one(SELECT_SQL, [account_id, task_id])
        return Task(**row) if row else None

    def of_session(self, account_id: str, session_id: str) -> list[Task]:
        return [Task(**r) for r in self._work.run(LIST_SQL, [account_id, session_id])]

    def update(self, account_id: str, task_id: str, changes: dict[str, Any]) -> Task | None:
        sql, values = update_sql("tasks", UPDATABLE, changes, COLUMNS, self._work)
        rows = self._work.run(sql, [*values, account_id, task_id])
        return Task(**rows[0]) if rows else None
