"""The live feed's WebSocket connections, subscriptions and deliveries
(``ConnectionRepository``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kontex.adapters.sql.base import Repository, as_time, by_account, chunked, marks
from kontex.ports import LiveConnection

OPEN_SQL = (
    "INSERT INTO live_connections (id, account_id, authenticated, connected_at, expires_at)"
    " VALUES (?, NULL, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
SELECT_SQL = (
    "SELECT id, account_id, authenticated, connected_at, expires_at"
    " FROM live_connections WHERE id = ? AND expires_at > ?"
)
AUTHENTICATE_SQL = (
    "UPDATE live_connections SET account_id = ?, authenticated = ?"
    " WHERE id = ? AND (account_id IS NULL OR account_id = ?) RETURNING id"
)
SUBSCRIBE_SQL = (
    "INSERT INTO live_subscriptions (connection_id, account_id, session_id)"
    " VALUES (?, ?, ?) ON CONFLICT (connection_id, session_id) DO NOTHING"
)
UNSUBSCRIBE_SQL = (
    "DELETE FROM live_subscriptions WHERE connection_id = ? AND session_id = ? RETURNING session_id"
)
SUBSCRIBERS_SQL = (
    "SELECT s.connection_id FROM live_subscriptions s"
    " JOIN live_connections c ON c.id = s.connection_id"
    " WHERE s.account_id = ? AND s.session_id = ? AND c.account_id = ?"
    " AND c.authenticated = ? AND c.expires_at > ? ORDER BY s.connection_id"
)
SUBSCRIBED_SQL = (
    "SELECT DISTINCT s.account_id, s.session_id FROM live_subscriptions s"
    " JOIN live_connections c ON c.id = s.connection_id"
    " WHERE s.account_id = ? AND s.session_id IN ({marks}) AND c.account_id = s.account_id"
    " AND c.authenticated = ? AND c.expires_at > ?"
)
CLAIM_SQL = (
    "INSERT INTO live_deliveries (event_id, connection_id, delivered_at)"
    " VALUES {values} ON CONFLICT (event_id, connection_id) DO NOTHING RETURNING connection_id"
)
RELEASE_SQL = "DELETE FROM live_deliveries WHERE event_id = ? AND connection_id = ?"
# what a connection owns, children first
OWNED = (
    ("live_subscriptions", "connection_id"),
    ("live_deliveries", "connection_id"),
    ("live_connections", "id"),
)


class SqlConnections(Repository):
    def open(self, connection_id: str, at: datetime, expires_at: datetime) -> None:
        self._work.run(OPEN_SQL, [connection_id, False, at, expires_at])

    def get(self, connection_id: str, now: datetime) -> LiveConnection | None:
        row = self._work.one(SELECT_SQL, [connection_id, now])
        if row is None:
            return None
        return LiveConnection(
            id=row["id"],
            account_id=row["account_id"],
            authenticated=bool(row["authenticated"]),
            connected_at=as_time(row["connected_at"]),
            expires_at=as_time(row["expires_at"]),
        )

    def authenticate(self, connection_id: str, account_id: str) -> bool:
        return bool(self._work.run(AUTHENTICATE_SQL, [account_id, True, connection_id, account_id]))

    def subscribe(self, connection_id: str, account_id: str, session_id: str) -> None:
        self._work.run(SUBSCRIBE_SQL, [connection_id, account_id, session_id])

    def unsubscribe(self, connection_id: str, session_id: str) -> bool:
        return bool(self._work.run(UNSUBSCRIBE_SQL, [connection_id, session_id]))

    def subscribers(self, account_id: str, session_id: str, now: datetime) -> list[str]:
        rows = self._work.run(SUBSCRIBERS_SQL, [account_id, session_id, account_id, True, now])
        return [r["connection_id"] for r in rows]

    def subscribed(
        self, sessions: Sequence[tuple[str, str]], now: datetime
    ) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for account_id, ids in by_account(sessions):
            rows = self._work.run(
                SUBSCRIBED_SQL.format(marks=marks(ids)), [account_id, *ids, True, now]
            )
            found.update((r["account_id"], r["session_id"]) for r in rows)
        return found

    def claim_deliveries(
        self, event_id: str, connection_ids: Sequence[str], at: datetime
    ) -> list[str]:
        claimed: list[str] = []
        for part in chunked(connection_ids):
            values = ", ".join("(?, ?, ?)" for _ in part)
            params = [v for c in part for v in (event_id, c, at)]
            rows = self._work.run(CLAIM_SQL.format(values=values), params)
            claimed.extend(r["connection_id"] for r in rows)
        order = {c: i for i, c in enumerate(connection_ids)}
        return sorted(claimed, key=order.__getitem__)

    def release_delivery(self, event_id: str, connection_id: str) -> None:
        self._work.run(RELEASE_SQL, [event_id, connection_id])

    def remove(self, connection_id: str) -> bool:
        removed = False
        for table, column in OWNED:
            rows = self._work.run(
                f"DELETE FROM {table} WHERE {column} = ? RETURNING {column}", [connection_id]
            )
            removed = bool(rows)  # the last: the connection itself
        return removed

    def remove_expired(self, now: datetime, delivered_before: datetime) -> int:
        expired = [
            r["id"]
            for r in self._work.run("SELECT id FROM live_connections WHERE expires_at <= ?", [now])
        ]
        for part in chunked(expired):
            for table, column in OWNED:
                self._work.run(f"DELETE FROM {table} WHERE {column} IN ({marks(part)})", part)
        self._work.run("DELETE FROM live_deliveries WHERE delivered_at < ?", [delivered_before])
        return len(expired)
