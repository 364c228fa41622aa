from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller
from kontex.api.shapes import SaveThreadState, answers
from kontex.services import threads

router = APIGatewayHttpRouter()


def _json(state: Any) -> dict[str, Any]:
    return state.model_dump(mode="json", exclude={"account_id"})


@router.put(
    "/v1/threads/<thread_id>/state", tags=["threads"], responses=answers(shapes.ThreadStateOut)
)
def save(thread_id: str, body: SaveThreadState) -> dict[str, Any]:
    deps, me = caller()
    return _json(threads.save(deps, me.account_id, thread_id, body.user_data))


@router.get(
    "/v1/threads/<thread_id>/state", tags=["threads"], responses=answers(shapes.ThreadStateOut)
)
def get(thread_id: str) -> dict[str, Any]:
    deps, me = caller()
    return _json(threads.get(deps, me.account_id, thread_id))


@router.delete("/v1/threads/<thread_id>/state", tags=["threads"])
def delete(thread_id: str) -> Response[None]:
    deps, me = caller()
    threads.delete(deps, me.account_id, thread_id)
    return Response(status_code=204)
