"""Query APIs over the distinct messages and tool calls a session stored."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kontex.domain.errors import IntegrityError, InvalidInput
from kontex.ports import ObjectFilter, Page
from kontex.services import bundles
from kontex.services.deps import Deps
from kontex.services.sessions import check_limit, decode_cursor, encode_cursor, get_session

CONTENT_TYPES = ("text", "tool_use", "tool_result")


def _page(
    deps: Deps, account_id: str, where: ObjectFilter, limit: int, cursor: str | None, shape: Any
) -> Page:
    if where.session_id is not None:
        get_session(deps, account_id, where.session_id)
    where = replace(  # a time without a zone is UTC, so both bounds compare
        where,
        created_after=_aware(where.created_after),
        created_before=_aware(where.created_before),
    )
    limit = check_limit(limit)
    after = _object_cursor(decode_cursor(cursor))
    if where.created_after and where.created_before and where.created_after >= where.created_before:
        return Page([], None)  # an empty range (created_after is exclusive): nothing in it
    with deps.store.unit(write=False) as uow:
        rows = uow.queries.objects(account_id, where, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for row in rows:
        if bundles.item_address(row["kind"], row["body"]).hex() != row["object_hash"]:
            raise IntegrityError("a stored item does not match its address")
        items.append(shape(row, json.loads(row["body"])))
    next_cursor = None
    if more:
        last = rows[-1]
        key = f"{last['position']}:{last['key_hash']}:{last['session_id']}"
        next_cursor = encode_cursor(_iso(last["first_seen_at"]), key)
    return Page(items, next_cursor)


_OBJECT_POSITION = re.compile(r"^[0-9]{1,18}:(?:[0-9a-f]{2})*(?::[A-Za-z0-9_-]{0,100})?$")


def _object_cursor(after: tuple[str, str] | None) -> tuple[str, str] | None:
    """A cursor of this listing: its id is ``position:item hash:session id`` (what ``_page``
    writes; a cursor of before the session part has none), the position within a BIGINT."""
    if after is not None and not _OBJECT_POSITION.match(after[1]):
        raise InvalidInput("cursor is not valid")
    return after


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def messages(
    deps: Deps, account_id: str, where: ObjectFilter, limit: int = 50, cursor: str | None = None
) -> Page:
    """The distinct messages ``where`` selects (``where.kind`` is ``message``)."""
    if where.role is not None and where.role not in ("system", "user", "assistant", "tool"):
        raise InvalidInput("role must be one of: system, user, assistant, tool")
    if where.content_type is not None and where.content_type not in CONTENT_TYPES:
        raise InvalidInput(f"content_type must be one of: {', '.join(CONTENT_TYPES)}")

    def shape(row: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["object_hash"],
            "session_id": row["session_id"],
            "created_at": _iso(row["first_seen_at"]),
            "token_count": row["tokens"],
            **body,
        }

    return _page(deps, account_id, replace(where, kind="message"), limit, cursor, shape)


def tool_calls(
    deps: Deps, account_id: str, where: ObjectFilter, limit: int = 50, cursor: str | None = None
) -> Page:
    """The tool calls ``where`` selects, each once in its latest state (a call is stored once
    per state it was seen in: pending, then with its output), in the order they were first
    seen, with the time they were first seen. Filters apply to the latest state."""

    def shape(row: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        return {
            **body,
            "session_id": row["session_id"],
            "is_error": row["is_error"],
            "created_at": _iso(row["first_seen_at"]),
        }

    return _page(deps, account_id, replace(where, kind="tool_call"), limit, cursor, shape)
