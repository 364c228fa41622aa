"""Content (``ContentRepository``): each distinct item of a session and the chunks of its
lists, stored once per session and addressed by hash."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kontex.adapters.sql.base import CHUNK, Repository, chunked, marks
from kontex.ports import ItemRow

INSERT_ITEMS_SQL = (
    "INSERT INTO items (session_id, item_hash, kind, body, tokens, role, has_text,"
    " has_tool_use, has_tool_result, tool_name, is_error, position, first_seen_at, call_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
INSERT_CHUNKS_SQL = (
    "INSERT INTO chunks (session_id, chunk_hash, refs) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
)


def lookup_sql(
    session: str, session_params: list[Any], items: Sequence[bytes], chunks: Sequence[bytes]
) -> tuple[str, list[Any]]:
    """One statement answering which items (``k`` 0, their tokens) and chunks (``k`` 1, their
    refs) the session (an SQL expression and its parameters) has."""
    parts, params = [], []
    if items:
        parts.append(
            "SELECT 0 AS k, item_hash AS h, tokens AS n, NULL AS refs FROM items"
            f" WHERE session_id = {session} AND item_hash IN ({marks(items)})"
        )
        params += [*session_params, *items]
    if chunks:
        parts.append(
            "SELECT 1 AS k, chunk_hash AS h, 0 AS n, refs FROM chunks"
            f" WHERE session_id = {session} AND chunk_hash IN ({marks(chunks)})"
        )
        params += [*session_params, *chunks]
    return " UNION ALL ".join(parts), params


def lookup_statements(
    session_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
) -> list[tuple[str, list[Any]]]:
    """``lookup_sql`` for a session, cut into statements of at most ``CHUNK`` addresses."""
    statements = []
    items, chunks = list(items), list(chunks)
    while items or chunks:
        part_items, items = items[:CHUNK], items[CHUNK:]
        room = CHUNK - len(part_items)
        part_chunks, chunks = chunks[:room], chunks[room:]
        statements.append(lookup_sql("?", [session_id], part_items, part_chunks))
    return statements


def found(
    rows: list[dict[str, Any]],
    into: tuple[dict[bytes, int], dict[bytes, bytes]] | None = None,
) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
    """The items (their tokens) and chunks (their refs) of a lookup's rows (added to ``into``
    when given)."""
    found_items, found_chunks = into if into is not None else ({}, {})
    for r in rows:
        if r["k"] == 0:
            found_items[bytes(r["h"])] = int(r["n"])
        else:
            found_chunks[bytes(r["h"])] = bytes(r["refs"])
    return found_items, found_chunks


def _call_id(row: ItemRow) -> str | None:
    """A tool call's id (the tool-call query lists each call once): from the row's index, else
    from its body."""
    if row.kind != "tool_call":
        return None
    found = row.index.get("call_id")
    return str(found if found is not None else json.loads(row.body).get("id"))


class SqlContent(Repository):
    def lookup(
        self, session_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
        if not items and not chunks:
            return {}, {}
        if len(items) + len(chunks) > CHUNK:
            return self.known_items(session_id, items), self.chunks(session_id, chunks)
        return found(self._work.run(*lookup_sql("?", [session_id], items, chunks)))

    def _by_address(
        self, table: str, key: str, value: str, session_id: str, addresses: Sequence[bytes]
    ) -> dict[bytes, Any]:
        """``value`` of the session's rows of ``table`` whose ``key`` is one of ``addresses``
        (our own table and column names, never input)."""
        result: dict[bytes, Any] = {}
        for part in chunked(addresses):
            rows = self._work.run(
                f"SELECT {key} AS k, {value} AS v FROM {table}"
                f" WHERE session_id = ? AND {key} IN ({marks(part)})",
                [session_id, *part],
            )
            result.update((bytes(r["k"]), r["v"]) for r in rows)
        return result

    def known_items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, int]:
        got = self._by_address("items", "item_hash", "tokens", session_id, addresses)
        return {k: int(v) for k, v in got.items()}

    def items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]:
        got = self._by_address("items", "item_hash", "body", session_id, addresses)
        return {k: bytes(v) for k, v in got.items()}

    def chunks(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]:
        got = self._by_address("chunks", "chunk_hash", "refs", session_id, addresses)
        return {k: bytes(v) for k, v in got.items()}

    def add_items(self, session_id: str, at: datetime, rows: Sequence[ItemRow]) -> None:
        self._work.later(
            INSERT_ITEMS_SQL,
            [
                (
                    session_id,
                    r.address,
                    r.kind,
                    r.body,
                    r.tokens,
                    r.index.get("role"),
                    bool(r.index.get("has_text", False)),
                    bool(r.index.get("has_tool_use", False)),
                    bool(r.index.get("has_tool_result", False)),
                    r.index.get("tool_name"),
                    bool(r.index.get("is_error", False)),
                    r.position,
                    at,
                    _call_id(r),
                )
                for r in rows
            ],
        )

    def add_chunks(self, session_id: str, chunks: dict[bytes, bytes]) -> None:
        self._work.later(
            INSERT_CHUNKS_SQL, [(session_id, address, refs) for address, refs in chunks.items()]
        )
