from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller
from kontex.api.shapes import answers
from kontex.domain.models import JsonTime
from kontex.ports import ObjectFilter
from kontex.services import queries, views

router = APIGatewayHttpRouter()
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query()]
When = Annotated[JsonTime | None, Query()]


def _answer(query: Any, where: ObjectFilter, limit: int, cursor: str | None) -> dict[str, Any]:
    deps, me = caller()
    page = query(deps, me.account_id, where, limit, cursor)
    return {"data": page.items, "next_cursor": page.next_cursor}


@router.get("/v1/messages", tags=["queries"], responses=answers(shapes.MessageRecordPage))
def list_messages(
    session_id: Annotated[str | None, Query()] = None,
    role: Annotated[Literal["system", "user", "assistant", "tool"] | None, Query()] = None,
    content_type: Annotated[Literal["text", "tool_use", "tool_result"] | None, Query()] = None,
    created_after: When = None,
    created_before: When = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    where = ObjectFilter(
        "message", session_id, role, content_type, None, None, created_after, created_before
    )
    return _answer(queries.messages, where, limit, cursor)


@router.get("/v1/tool-calls", tags=["queries"], responses=answers(shapes.ToolCallRecordPage))
def list_tool_calls(
    session_id: Annotated[str | None, Query()] = None,
    tool_name: Annotated[str | None, Query()] = None,
    is_error: Annotated[bool | None, Query()] = None,
    created_after: When = None,
    created_before: When = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    where = ObjectFilter(
        "tool_call", session_id, None, None, tool_name, is_error, created_after, created_before
    )
    return _answer(queries.tool_calls, where, limit, cursor)


@router.get("/v1/usage", tags=["queries"], responses=answers(shapes.AccountUsage))
def usage() -> dict[str, Any]:
    deps, me = caller()
    return views.usage(deps, me.account_id)
