"""The read model of the query and usage views (``QueryRepository``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kontex.adapters.sql.base import Repository, as_time
from kontex.domain.errors import InvalidInput
from kontex.ports import ObjectFilter

CONTENT_COLUMN = {"text": "has_text", "tool_use": "has_tool_use", "tool_result": "has_tool_result"}
OBJECTS_SQL = (
    "SELECT i.session_id, i.item_hash, i.kind, i.body, i.tokens, i.is_error,"
    " i.first_seen_at, i.position, i.item_hash AS key_hash"
    " FROM items i JOIN sessions s ON s.id = i.session_id"
    " WHERE s.account_id = ? AND i.kind = 'message'"
)


def _seen(a: str, op: str, b: str) -> str:
    """Item ``a`` was first seen before (``op`` ``<``) or after (``>``) item ``b``: by time,
    then position in its list, then address."""
    return (
        f"({a}.first_seen_at {op} {b}.first_seen_at OR ({a}.first_seen_at = {b}.first_seen_at"
        f" AND ({a}.position {op} {b}.position OR ({a}.position = {b}.position"
        f" AND {a}.item_hash {op} {b}.item_hash))))"
    )


def _other_state(of: str, op: str) -> str:
    """Another state of the call ``of`` is, seen before (``<``) or after (``>``) it."""
    return (
        "EXISTS (SELECT 1 FROM items o WHERE o.session_id = {of}.session_id"
        " AND o.kind = 'tool_call' AND o.call_id = {of}.call_id AND {seen})"
    ).format(of=of, seen=_seen("o", op, of))


# A tool call is stored once per state it was seen in (pending, then with its output; its id
# in ``call_id``). One row per call of a session: its latest state (``l``), in the place and
# with the time of its first (``f``), so a call completed later keeps its place in the pages.
CALLS_SQL = (
    "SELECT f.session_id, l.item_hash, l.kind, l.body, l.tokens, l.is_error,"
    " f.first_seen_at, f.position, f.item_hash AS key_hash"
    " FROM items f JOIN sessions s ON s.id = f.session_id"
    " JOIN items l ON l.session_id = f.session_id AND l.kind = 'tool_call'"
    " AND l.call_id = f.call_id"
    f" WHERE s.account_id = ? AND f.kind = 'tool_call' AND NOT {_other_state('f', '<')}"
    f" AND NOT {_other_state('l', '>')}"
)
# the cursor's id part is "<position>:<address hex>[:<session id>]" of the row's key item
OBJECTS_AFTER_SQL = (
    " AND ({k}.first_seen_at > ? OR ({k}.first_seen_at = ?"
    " AND ({k}.position > ? OR ({k}.position = ? AND ({k}.item_hash > ?"
    " OR ({k}.item_hash = ? AND {k}.session_id > ?))))))"
)
MESSAGE_COUNTS_SQL = (
    "SELECT i.kind, i.is_error, COUNT(*) AS n"
    " FROM items i JOIN sessions s ON s.id = i.session_id"
    " WHERE s.account_id = ? AND i.session_id = ?"
    " AND i.kind = 'message' GROUP BY i.kind, i.is_error"
)
TOOL_CALLS_SQL = CALLS_SQL + " AND f.session_id = ?"  # each call once, in its latest state
# Sums over the snapshots that are one captured LLM call each (usage set). A call's usage is
# its snapshot's latest revision's when a revision carries one (usage that came late), else
# the snapshot's own columns.
USAGE_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "latency_ms",
    "cost_usd",
)
CALLS_OF = (
    "(SELECT s.session_id, s.created_at, s.token_total, "
    + ", ".join(
        f"CASE WHEN u.snapshot_id IS NULL THEN s.usage_{c} ELSE u.{c} END AS usage_{c}"
        for c in USAGE_COLUMNS
    )
    + " FROM snapshots s LEFT JOIN revision_usage u ON u.snapshot_id = s.id AND u.seq ="
    " (SELECT MAX(m.seq) FROM revision_usage m WHERE m.snapshot_id = s.id)"
    " WHERE s.account_id = ?{more}) c"
)
USAGE_SUMS = (
    "COALESCE(SUM(CASE WHEN usage_input_tokens IS NOT NULL THEN 1 ELSE 0 END), 0) AS calls,"
    " COALESCE(SUM(usage_input_tokens), 0) AS input_tokens,"
    " COALESCE(SUM(usage_output_tokens), 0) AS output_tokens,"
    " COALESCE(SUM(usage_cache_read_tokens), 0) AS cache_read_tokens,"
    " COALESCE(SUM(usage_cache_write_tokens), 0) AS cache_write_tokens,"
    " COALESCE(SUM(usage_latency_ms), 0) AS latency_ms,"
    " SUM(usage_cost_usd) AS cost_usd,"
    " COALESCE(SUM(CASE WHEN usage_input_tokens IS NOT NULL AND usage_cost_usd IS NULL"
    " THEN 1 ELSE 0 END), 0) AS unpriced_calls"
)
SESSION_SNAPSHOTS_SQL = (
    "SELECT COUNT(*) AS n, COALESCE(SUM(token_total), 0) AS tokens,"
    " MIN(created_at) AS first_snapshot_at,"
    f" MAX(created_at) AS last_snapshot_at, {USAGE_SUMS}"
    f" FROM {CALLS_OF.format(more=' AND s.session_id = ?')}"
)


# Snapshots per slice of time, split at ``edges`` (one or more) times: one row, whatever the
# session's size.
def snapshot_counts_sql(edges: int) -> str:
    bounds = [" created_at < ?"]
    bounds += [" created_at >= ? AND created_at < ?"] * (edges - 1)
    bounds += [" created_at >= ?"]
    sums = [
        f"COALESCE(SUM(CASE WHEN{b} THEN 1 ELSE 0 END), 0) AS n{i}" for i, b in enumerate(bounds)
    ]
    return f"SELECT {', '.join(sums)} FROM snapshots WHERE account_id = ? AND session_id = ?"


CONTEXT_TOKENS_SQL = (
    "SELECT COALESCE(SUM(COALESCE(r.token_total, s.token_total)), 0) AS tokens"
    " FROM tasks t JOIN snapshots s ON s.id = t.head_snapshot_id"
    " LEFT JOIN snapshot_revisions r ON r.snapshot_id = s.id AND r.seq ="
    " (SELECT MAX(seq) FROM snapshot_revisions m WHERE m.snapshot_id = s.id)"
    " WHERE t.account_id = ? AND t.session_id = ?"
)
ACCOUNT_SESSIONS_SQL = (
    "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0"
    " END), 0) AS active FROM sessions WHERE account_id = ?"
)
ACCOUNT_SNAPSHOTS_SQL = (
    "SELECT COUNT(*) AS total, COALESCE(SUM(token_total), 0) AS tokens,"
    " COALESCE(SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), 0) AS month,"
    " COALESCE(SUM(CASE WHEN created_at >= ? THEN token_total ELSE 0 END), 0)"
    " AS month_tokens FROM snapshots WHERE account_id = ?"
)
ACCOUNT_CALLS_SQL = f"SELECT {USAGE_SUMS} FROM {CALLS_OF.format(more='')}"
ACCOUNT_MONTH_CALLS_SQL = ACCOUNT_CALLS_SQL + " WHERE c.created_at >= ?"
ACCOUNT_BYTES_SQL = (
    "SELECT (SELECT COALESCE(SUM(stored_bytes), 0) FROM snapshots"
    " WHERE account_id = ?) + (SELECT COALESCE(SUM(r.stored_bytes), 0)"
    " FROM snapshot_revisions r JOIN sessions s ON s.id = r.session_id"
    " WHERE s.account_id = ?) AS bytes"
)


def usage_totals(row: dict[str, Any]) -> dict[str, Any]:
    calls = int(row["calls"])
    cost = row["cost_usd"]
    tokens = [
        int(row[k])
        for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    ]
    return {
        "calls": calls,
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "cache_read_tokens": tokens[2],
        "cache_write_tokens": tokens[3],
        "total_tokens": sum(tokens),
        "cost_usd": round(float(cost), 8) if cost is not None else None,
        "unpriced_calls": int(row["unpriced_calls"]),
        "latency_ms_total": round(float(row["latency_ms"]), 3),
    }


class SqlQueries(Repository):
    def objects(
        self, account_id: str, where: ObjectFilter, limit: int, after: tuple[str, str] | None
    ) -> list[dict[str, Any]]:
        if where.kind == "message":
            sql, key, state = OBJECTS_SQL, "i", "i"
        else:  # a tool call: filtered on its latest state, placed by its first
            sql, key, state = CALLS_SQL, "f", "l"
        params: list[Any] = [account_id]
        conditions = [
            (f"{key}.session_id = ?", where.session_id),
            (f"{state}.role = ?", where.role),
            (f"{state}.tool_name = ?", where.tool_name),
            (f"{state}.is_error = ?", where.is_error),
            (f"{key}.first_seen_at > ?", where.created_after),
            (f"{key}.first_seen_at < ?", where.created_before),
        ]
        if where.content_type is not None:
            conditions.append((f"{state}.{CONTENT_COLUMN[where.content_type]} = ?", True))
        for condition, value in conditions:
            if value is not None:
                sql += f" AND {condition}"
                params.append(value)
        if after is not None:
            at = datetime.fromisoformat(after[0])
            position, _, rest = after[1].partition(":")
            digest, _, session_id = rest.partition(":")
            sql += OBJECTS_AFTER_SQL.format(k=key)
            try:
                address = bytes.fromhex(digest)
                params += [at, at, int(position), int(position), address, address, session_id]
            except ValueError as error:
                raise InvalidInput("cursor is not valid") from error
        order = (
            f" ORDER BY {key}.first_seen_at, {key}.position, {key}.item_hash, {key}.session_id"
            " LIMIT ?"
        )
        rows = self._work.run(sql + order, [*params, limit])
        for row in rows:
            row["object_hash"] = bytes(row.pop("item_hash")).hex()
            row["key_hash"] = bytes(row["key_hash"]).hex()
            row["body"] = bytes(row["body"])
            row["is_error"] = bool(row["is_error"])
            row["first_seen_at"] = as_time(row["first_seen_at"])
        return rows

    def session_stats(self, account_id: str, session_id: str) -> dict[str, Any]:
        both = [account_id, session_id]
        objects = self._work.run(MESSAGE_COUNTS_SQL, both)
        tool_rows = self._work.run(TOOL_CALLS_SQL, both)
        snaps = self._work.run(SESSION_SNAPSHOTS_SQL, both)[0]
        context = self._work.run(CONTEXT_TOKENS_SQL, both)[0]
        counts = {(r["kind"], bool(r["is_error"])): int(r["n"]) for r in objects}
        tool_states = [
            str(json.loads(bytes(row["body"])).get("status") or "success") for row in tool_rows
        ]
        first, last = snaps["first_snapshot_at"], snaps["last_snapshot_at"]
        return {
            "total_messages": counts.get(("message", False), 0) + counts.get(("message", True), 0),
            "tool_calls_success": tool_states.count("success"),
            "tool_calls_error": tool_states.count("error"),
            "tool_calls_pending": tool_states.count("pending"),
            "total_snapshots": int(snaps["n"]),
            "snapshot_tokens": int(snaps["tokens"]),
            "context_tokens": int(context["tokens"]),
            "first_snapshot_at": as_time(first) if first else None,
            "last_snapshot_at": as_time(last) if last else None,
            # usage per LLM call, each counted once: the snapshots recording a call carry it
            # (a rollback, a fork or a tool's snapshot restates a call, it does not make one)
            "usage": usage_totals(snaps),
        }

    def snapshot_counts(self, account_id: str, session_id: str, edges: list[datetime]) -> list[int]:
        params: list[Any] = [edges[0]]
        for low, high in zip(edges, edges[1:], strict=False):
            params += [low, high]
        params += [edges[-1], account_id, session_id]
        row = self._work.run(snapshot_counts_sql(len(edges)), params)[0]
        return [int(row[f"n{i}"]) for i in range(len(edges) + 1)]

    def usage(self, account_id: str, month_start: datetime) -> dict[str, Any]:
        run = self._work.run
        sessions = run(ACCOUNT_SESSIONS_SQL, [account_id])[0]
        snaps = run(ACCOUNT_SNAPSHOTS_SQL, [month_start, month_start, account_id])[0]
        calls = run(ACCOUNT_CALLS_SQL, [account_id])[0]
        month_calls = run(ACCOUNT_MONTH_CALLS_SQL, [account_id, month_start])[0]
        stored = run(ACCOUNT_BYTES_SQL, [account_id, account_id])[0]
        return {
            "total_sessions": int(sessions["total"]),
            "active_sessions": int(sessions["active"]),
            "total_snapshots": int(snaps["total"]),
            "total_tokens_stored": int(snaps["tokens"]),
            "snapshots_this_month": int(snaps["month"]),
            "tokens_this_month": int(snaps["month_tokens"]),
            "stored_bytes": int(stored["bytes"]),
            "usage": usage_totals(calls),
            "usage_this_month": usage_totals(month_calls),
        }
