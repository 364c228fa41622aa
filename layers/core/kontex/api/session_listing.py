"""The session listing, ``GET /v1/sessions``: the REST function's usual first request.

A router of its own (kontex.api.rest includes it alone for a ``GET /v1/sessions``, beside the
other session routes for any other method on that path), so that the first answer declares one
route and creates one answer, ``SessionPage``, not the other session routes' bodies and answers
(``kontex.api.session_shapes``) nor those routes (``kontex.api.sessions``): docs/benchmarks.md,
"Cold start of the api, seventh round (issue 25)". The OpenAPI document keeps the route where
it was, among the session routes (``rest.SESSION_ROUTES``). Its annotations are objects, not
strings (no ``from __future__ import annotations``), so that Powertools has none to evaluate when
it reads the route's signature.
"""

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller
from kontex.api.shapes import answers, page_json, session_json
from kontex.domain.models import SessionStatus
from kontex.services import sessions

router = APIGatewayHttpRouter()
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/v1/sessions", tags=["sessions"], responses=answers(shapes.SessionPage))
def list_sessions(
    status: Annotated[SessionStatus | None, Query()] = None,
    limit: Limit = 20,
    cursor: Annotated[str | None, Query()] = None,
    order: Annotated[
        Literal["asc", "desc"], Query(description="desc (the default): newest first")
    ] = "desc",
) -> dict[str, Any]:
    deps, me = caller()
    page = sessions.list_sessions(
        deps, me.account_id, status, limit, cursor, newest_first=order == "desc"
    )
    return page_json(page, session_json)
