from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller
from kontex.api.shapes import (
    CreateSession,
    CreateTask,
    LinkTrace,
    PatchSession,
    answers,
    session_json,
    task_json,
)
from kontex.domain.errors import InvalidInput
from kontex.services import sessions

# The archive, snapshot and view services (with the bundle code and tiktoken behind them) load
# with the first call of a route that uses them, not with a session listing (cold start:
# docs/benchmarks.md, "Cold start, third round (issue 25)"). The import and export routes, with
# the archive's models, are kontex.api.session_archive's: included with the first request to one of
# their paths (kontex.api.rest; docs/benchmarks.md, "Cold start of the api, sixth round"), as
# are the snapshot listing and the views (kontex.api.session_views), with their answers, and
# the session listing (kontex.api.session_listing: a GET /v1/sessions loads it alone).

router = APIGatewayHttpRouter()


@router.post("/v1/sessions", tags=["sessions"], responses=answers(shapes.SessionOut))
def create_session(body: CreateSession) -> tuple[dict[str, Any], int]:
    deps, me = caller()
    made = sessions.create_session(deps, me.account_id, body.name, body.description, body.metadata)
    return session_json(made), 201


@router.get("/v1/sessions/<session_id>", tags=["sessions"], responses=answers(shapes.SessionOut))
def get_session(session_id: str) -> dict[str, Any]:
    deps, me = caller()
    return session_json(sessions.get_session(deps, me.account_id, session_id))


@router.patch("/v1/sessions/<session_id>", tags=["sessions"], responses=answers(shapes.SessionOut))
def patch_session(session_id: str, body: PatchSession) -> dict[str, Any]:
    deps, me = caller()
    changes = body.model_dump(exclude_unset=True)
    return session_json(sessions.update_session(deps, me.account_id, session_id, **changes))


@router.delete(
    "/v1/sessions/<session_id>",
    tags=["sessions"],
    description="Remove the session with everything in it (tasks, snapshots, checkpoints, "
    "blobs), for good: later reads of it are a 404. `purge=true` is required, so a request "
    "meant to end the session (this route's meaning before) removes nothing: to end a session, "
    "`PATCH` it with `status: completed`.",
)
def delete_session(
    session_id: str,
    purge: Annotated[
        bool,
        Query(
            description="Must be true: the session is removed for good.",
            json_schema_extra={"const": True},
        ),
    ],
) -> Response[None]:
    if not purge:
        raise InvalidInput(
            "DELETE removes the session for good: pass purge=true (to end it, PATCH status)"
        )
    deps, me = caller()
    sessions.purge_session(deps, me.account_id, session_id)
    return Response(status_code=204)


@router.post(
    "/v1/sessions/<session_id>/link-trace", tags=["sessions"], responses=answers(shapes.LinkedTrace)
)
def link_trace(session_id: str, body: LinkTrace) -> dict[str, Any]:
    deps, me = caller()
    traces = sessions.link_trace(deps, me.account_id, session_id, body.trace_id)
    # the span processing (and the OTLP decoding behind it) loads with this route's first call
    from kontex.services import spans

    made = spans.process_trace(deps, me.account_id, body.trace_id.lower())  # pending spans
    return {"session_id": session_id, "trace_ids": traces, "snapshots_created": made}


@router.post("/v1/sessions/<session_id>/tasks", tags=["tasks"], responses=answers(shapes.TaskOut))
def create_task(session_id: str, body: CreateTask) -> tuple[dict[str, Any], int]:
    deps, me = caller()
    task = sessions.create_task(deps, me.account_id, session_id, body.name, body.parent_task_id)
    return task_json(task), 201


@router.get("/v1/sessions/<session_id>/tasks", tags=["tasks"], responses=answers(shapes.TaskTree))
def task_tree(session_id: str) -> dict[str, Any]:
    deps, me = caller()
    tree = sessions.task_tree(deps, me.account_id, session_id)

    def public(node: dict[str, Any]) -> dict[str, Any]:
        node.pop("account_id", None)
        node["children"] = [public(child) for child in node["children"]]
        return node

    return {"data": [public(node) for node in tree]}
