"""How spans find their session (``TraceRepository``): traces linked to sessions, and the
aliases a session is also known by."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kontex.adapters.sql.base import Repository, by_account, marks

LINK_SQL = (
    "INSERT INTO session_traces (account_id, trace_id, session_id, created_at)"
    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
SESSION_OF_TRACE_SQL = "SELECT session_id FROM session_traces WHERE account_id = ? AND trace_id = ?"
LIST_SQL = (
    "SELECT trace_id FROM session_traces WHERE account_id = ? AND session_id = ?"
    " ORDER BY created_at, trace_id"
)
SESSIONS_OF_TRACES_SQL = (
    "SELECT trace_id, session_id FROM session_traces WHERE account_id = ? AND trace_id IN ({marks})"
)
ALIASES_SQL = (
    "SELECT alias AS name, session_id FROM session_aliases"
    " WHERE account_id = ? AND alias IN ({marks})"
)
IDS_SQL = (
    "SELECT id AS name, id AS session_id FROM sessions WHERE account_id = ? AND id IN ({marks})"
)
ADD_ALIAS_SQL = (
    "INSERT INTO session_aliases (account_id, alias, session_id) VALUES (?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
ALIAS_SQL = "SELECT session_id FROM session_aliases WHERE account_id = ? AND alias = ?"


class SqlTraces(Repository):
    def link(self, account_id: str, session_id: str, trace_id: str, at: datetime) -> str:
        self._work.run(LINK_SQL, [account_id, trace_id, session_id, at])
        return str(self._work.run(SESSION_OF_TRACE_SQL, [account_id, trace_id])[0]["session_id"])

    def of_session(self, account_id: str, session_id: str) -> list[str]:
        return [r["trace_id"] for r in self._work.run(LIST_SQL, [account_id, session_id])]

    def sessions_of(self, traces: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for account_id, chunk in by_account(traces):
            rows = self._work.run(
                SESSIONS_OF_TRACES_SQL.format(marks=marks(chunk)), [account_id, *chunk]
            )
            found.update(((account_id, r["trace_id"]), str(r["session_id"])) for r in rows)
        return found

    def sessions_named(self, names: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for account_id, chunk in by_account(names):
            params = [account_id, *chunk]
            aliases = self._work.run(ALIASES_SQL.format(marks=marks(chunk)), params)
            ids = self._work.run(IDS_SQL.format(marks=marks(chunk)), params)
            for r in aliases + ids:  # a session id wins over an alias
                found[(account_id, r["name"])] = str(r["session_id"])
        return found

    def alias(self, account_id: str, alias: str) -> str | None:
        row = self._work.one(ALIAS_SQL, [account_id, alias])
        return str(row["session_id"]) if row else None

    def add_alias(self, account_id: str, alias: str, session_id: str) -> str:
        self._work.run(ADD_ALIAS_SQL, [account_id, alias, session_id])
        return str(self._work.run(ALIAS_SQL, [account_id, alias])[0]["session_id"])
