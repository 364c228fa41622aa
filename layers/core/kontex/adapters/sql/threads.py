"""Thread state (``ThreadRepository``): a small document per thread, versioned on each put."""

from __future__ import annotations

from datetime import datetime

from kontex.adapters.sql.base import Repository
from kontex.domain.models import ThreadState

COLUMNS = "account_id, thread_id, user_data, version, updated_at"
UPSERT_SQL = (
    f"INSERT INTO thread_states ({COLUMNS}) VALUES (?, ?, ?, 1, ?)"
    " ON CONFLICT (account_id, thread_id) DO UPDATE SET user_data = excluded.user_data,"
    " version = thread_states.version + 1, updated_at = excluded.updated_at"
    f" RETURNING {COLUMNS}"
)
SELECT_SQL = f"SELECT {COLUMNS} FROM thread_states WHERE account_id = ? AND thread_id = ?"
INSERT_SQL = f"INSERT INTO thread_states ({COLUMNS}) VALUES (?, ?, ?, ?, ?)"
DELETE_SQL = "DELETE FROM thread_states WHERE account_id = ? AND thread_id = ? RETURNING thread_id"


class SqlThreads(Repository):
    def put(self, account_id: str, thread_id: str, user_data: str, at: datetime) -> ThreadState:
        return ThreadState(**self._work.run(UPSERT_SQL, [account_id, thread_id, user_data, at])[0])

    def add(self, state: ThreadState) -> None:
        """Insert a state as it was stored elsewhere (an import): its version and time kept."""
        s = state
        self._work.later(
            INSERT_SQL, [(s.account_id, s.thread_id, s.user_data, s.version, s.updated_at)]
        )

    def get(self, account_id: str, thread_id: str) -> ThreadState | None:
        row = self._work.one(SELECT_SQL, [account_id, thread_id])
        return ThreadState(**row) if row else None

    def delete(self, account_id: str, thread_id: str) -> bool:
        return bool(self._work.run(DELETE_SQL, [account_id, thread_id]))
