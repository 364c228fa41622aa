"""OTLP spans as received (``SpanRepository``), kept until the span worker made them
snapshots."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from kontex.adapters.sql.base import Repository, by_account, marks
from kontex.otlp.span import body as span_body

INSERT_SQL = (
    "INSERT INTO spans (account_id, trace_id, span_id, parent_span_id, kind,"
    " header_session_id, start_ns, end_ns, body, received_at, done)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
OF_TRACES_SQL = (
    "SELECT trace_id, body, kind, header_session_id, done FROM spans"
    " WHERE account_id = ? AND trace_id IN ({marks}) ORDER BY trace_id, start_ns, span_id"
)
MARK_DONE_SQL = "UPDATE spans SET done = ? WHERE account_id = ? AND trace_id = ? AND span_id = ?"


class SqlSpans(Repository):
    def add(
        self,
        spans: Sequence[tuple[str, dict[str, Any]]],
        at: datetime,
        done: Collection[tuple[str, str, str]] = (),
        bodies: Sequence[str] | None = None,
    ) -> None:
        if bodies is None:
            bodies = [span_body(r) for _, r in spans]
        self._work.later(
            INSERT_SQL,
            [
                (
                    account_id,
                    r["trace_id"],
                    r["span_id"],
                    r.get("parent_span_id"),
                    r["kind"],
                    r.get("header_session_id"),
                    r["start_time_unix_nano"],
                    r["end_time_unix_nano"],
                    text,
                    at,
                    (account_id, r["trace_id"], r["span_id"]) in done,
                )
                for (account_id, r), text in zip(spans, bodies, strict=True)
            ],
        )

    def of_traces(
        self, traces: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        found: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in traces}
        for account_id, chunk in by_account(traces):
            rows = self._work.run(OF_TRACES_SQL.format(marks=marks(chunk)), [account_id, *chunk])
            for r in rows:
                body = r["body"]  # JSON text (SQLite's KJSON column reads back decoded)
                found[(account_id, r["trace_id"])].append(
                    {
                        **(json.loads(body) if isinstance(body, str) else body),
                        "kind": r["kind"],
                        "header_session_id": r["header_session_id"],
                        "done": bool(r["done"]),
                    }
                )
        return found

    def mark_done(self, spans: Sequence[tuple[str, str, str]]) -> None:
        self._work.run_many(
            MARK_DONE_SQL,
            [(True, account_id, trace_id, span_id) for account_id, trace_id, span_id in spans],
        )
