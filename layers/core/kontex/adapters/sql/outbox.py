"""The outbox (``OutboxRepository``): events written in the transaction of the change they
announce (``UnitOfWork.announce``), removed once published."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kontex.adapters.sql.base import Repository, as_time, chunked, marks
from kontex.ports import Event

COLUMNS = "id, type, account_id, session_id, data, created_at"
INSERT_SQL = (
    "INSERT INTO outbox (id, account_id, session_id, type, data, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
UNPUBLISHED_SQL = (
    f"SELECT {COLUMNS} FROM outbox WHERE created_at < ? ORDER BY created_at, id LIMIT ?"
)
BY_IDS_SQL = f"SELECT {COLUMNS} FROM outbox WHERE id IN ({{marks}}) ORDER BY created_at, id"
DELETE_SQL = "DELETE FROM outbox WHERE id IN ({marks})"


def event_of(row: dict[str, Any]) -> Event:
    data = row["data"]
    return Event(
        id=row["id"],
        type=row["type"],
        account_id=row["account_id"],
        session_id=row["session_id"],
        data=json.loads(data) if isinstance(data, str | bytes) else data,
        created_at=as_time(row["created_at"]),
    )


class SqlOutbox(Repository):
    def add(self, event: Event) -> None:
        e = event
        data = e.data_json  # JSON text (a TEXT column), encoded once by its maker
        if data is None:
            data = json.dumps(e.data, separators=(",", ":"))
        row = (e.id, e.account_id, e.session_id, e.type, data, e.created_at)
        self._work.later(INSERT_SQL, [row])

    def unpublished(self, before: datetime, limit: int) -> list[Event]:
        return [event_of(r) for r in self._work.run(UNPUBLISHED_SQL, [before, limit])]

    def get(self, event_ids: Sequence[str]) -> list[Event]:
        found: list[Event] = []
        for part in chunked(event_ids):
            found += map(event_of, self._work.run(BY_IDS_SQL.format(marks=marks(part)), part))
        return found

    def delete(self, event_ids: Sequence[str]) -> None:
        # a published event has nothing left to do: its row goes (the table stays small)
        for part in chunked(event_ids):
            self._work.run(DELETE_SQL.format(marks=marks(part)), part)
