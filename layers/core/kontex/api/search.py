"""``GET /v1/search``: hybrid search over the caller's snapshots (services/search.py)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api.auth import caller
from kontex.services import search as service

router = APIGatewayHttpRouter()


@router.get("/v1/search", tags=["search"])
def search(
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=service.MAX_QUERY_CHARS,
            description="words, an identifier (parse_jwt_claims), an error code, a file path",
        ),
    ],
    session_id: Annotated[str | None, Query(description="only this session")] = None,
    task_id: Annotated[str | None, Query(description="only this task")] = None,
    source: Annotated[
        service.Source | None,
        Query(description="only matches in this part of a snapshot"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 10,
) -> service.SearchResults:
    """The caller's snapshots that best match ``q`` (dense and lexical rankings fused), each
    with its best matching snippet; equal scores newest first. 503 while the vector store or
    the embedder is unavailable."""
    deps, me = caller()
    return service.search(
        deps,
        me.account_id,
        q,
        session_id=session_id,
        task_id=task_id,
        source=source,
        limit=limit,
    )
