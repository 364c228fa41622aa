"""The session's snapshot listing and views: ``GET /v1/sessions/{id}/snapshots``,
``.../snapshots/timeline``, ``.../diff``, ``.../graph`` and ``.../stats``.

A router of their own, so that their answers (``kontex.api.session_view_shapes``, with a
snapshot's content models behind them), which their declarations need, load with the first
request to one of these paths, not with a session listing (kontex.api.rest includes this
router for those paths only; the OpenAPI document keeps them where they were, after the other
session routes: ``rest.SESSION_ROUTES``).
"""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller
from kontex.api.shapes import answers, page_json, snapshot_json

router = APIGatewayHttpRouter()
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get(
    "/v1/sessions/<session_id>/snapshots",
    tags=["snapshots"],
    responses=answers(shapes.SnapshotPage),
)
def list_snapshots(
    session_id: str, limit: Limit = 20, cursor: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    deps, me = caller()
    from kontex.services import snapshots

    page = snapshots.list_snapshots(deps, me.account_id, session_id, limit, cursor)
    return page_json(page, snapshot_json)


@router.get(
    "/v1/sessions/<session_id>/snapshots/timeline",
    tags=["views"],
    responses=answers(shapes.Timeline),
)
def timeline(session_id: str) -> dict[str, Any]:
    from kontex.services import views

    deps, me = caller()
    return {"data": views.timeline(deps, me.account_id, session_id)}


@router.get("/v1/sessions/<session_id>/diff", tags=["views"], responses=answers(shapes.Diff))
def diff(
    session_id: str,
    from_: Annotated[str, Query(alias="from")],
    to: Annotated[str, Query()],
) -> dict[str, Any]:
    from kontex.services import views

    deps, me = caller()
    return views.diff(deps, me.account_id, session_id, from_, to)


@router.get("/v1/sessions/<session_id>/graph", tags=["views"], responses=answers(shapes.Graph))
def graph(session_id: str) -> dict[str, Any]:
    from kontex.services import views

    deps, me = caller()
    return views.graph(deps, me.account_id, session_id)


@router.get(
    "/v1/sessions/<session_id>/stats", tags=["views"], responses=answers(shapes.SessionStats)
)
def stats(session_id: str) -> dict[str, Any]:
    from kontex.services import views

    deps, me = caller()
    return views.stats(deps, me.account_id, session_id)
