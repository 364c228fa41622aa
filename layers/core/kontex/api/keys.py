from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api import shapes
from kontex.api.auth import caller
from kontex.api.shapes import CreateKey, answers, key_json
from kontex.services import keys

router = APIGatewayHttpRouter()


@router.post("/v1/keys", tags=["keys"], responses=answers(shapes.CreatedKey))
def create_key(body: CreateKey) -> tuple[dict[str, Any], int]:
    deps, me = caller()
    key, plaintext = keys.create_key(deps, body.label, me.account_id)
    return {
        "id": key.id,
        "key": plaintext,
        "label": key.label,
        "created_at": key.created_at.isoformat(),
    }, 201


@router.get("/v1/keys", tags=["keys"], responses=answers(shapes.ApiKeyList))
def list_keys() -> dict[str, Any]:
    deps, me = caller()
    return {"data": [key_json(k) for k in keys.list_keys(deps, me.account_id)]}


@router.delete("/v1/keys/<key_id>", tags=["keys"])
def revoke_key(key_id: str) -> Response[None]:
    deps, me = caller()
    keys.revoke_key(deps, me.account_id, key_id)
    return Response(status_code=204)
