"""The REST surface: a Powertools resolver with one router per resource."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

from kontex import __version__
from kontex.adapters.routed_store import reading_from_replica
from kontex.api import (
    auth,
    checkpoints,
    errors,
    keys,
    queries,
    search,
    sessions,
    snapshots,
    tasks,
    threads,
)
from kontex.api.auth import admit, current_key
from kontex.api.guard import check_request
from kontex.api.openapi import render as complete_openapi
from kontex.bootstrap import container
from kontex.domain.errors import KontexError
from kontex.domain.models import ApiKey
from kontex.services import health as health_report

OPENAPI = {
    "title": "Kontex API",
    "version": __version__,
    "description": "Immutable snapshots of AI agent runs: sessions, task trees, rollback, diffs.",
    "security_schemes": {
        "bearer": HTTPBearer(description="Authorization: Bearer kontex_..."),
        "api_key": APIKey(name="X-Kontex-Api-Key", **{"in": APIKeyIn.header}),
    },
    "security": [{"bearer": []}, {"api_key": []}],
}


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    errors.register(app)
    for module in (keys, sessions, tasks, snapshots, queries, threads, checkpoints, search):
        app.include_router(module.router)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        """Public and cheap; ``?detail=true`` adds each pipeline's lag, for a caller with a
        key (the figures are the deployment's, not one account's)."""
        if app.current_event.get_query_string_value("detail", "") not in ("true", "1"):
            return {"status": "ok", "version": __version__}
        auth.authorize(auth.presented_key(dict(app.current_event.headers or {})), "/health")
        return health_report.report(container().pipelines)

    @app.get("/v1/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(status_code=200, content_type="application/json", body=openapi_json(app))

    app.enable_swagger(path="/v1/docs", **OPENAPI)  # type: ignore[arg-type]
    return app


def openapi_json(app: APIGatewayHttpResolver) -> str:
    """``/v1/openapi.json``, also made in process (clients/python/scripts/gen_models.py)."""
    return complete_openapi(app.get_openapi_json_schema(**OPENAPI))  # type: ignore[arg-type]


MCP_PATH = "/mcp"  # the MCP SDK's streamable HTTP transport (kontex/mcp), not a resolver route


def _path(event: dict[str, Any]) -> str:
    return str(event.get("rawPath") or event.get("requestContext", {}).get("http", {}).get("path"))


def _error(error: KontexError) -> dict[str, Any]:
    status, headers = errors.status_of(error)
    body = {"error": error.code, "message": error.message, "details": error.details}
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **headers},
        "body": json.dumps(body, default=str),
        "isBase64Encoded": False,
    }


McpHandler = Callable[[dict[str, Any], ApiKey], dict[str, Any]]

# A GET with this header reads from the writer: read-your-writes at any replica lag
CONSISTENCY_HEADER = "kontex-consistency"


def _reads_from_replica(event: dict[str, Any]) -> bool:
    """A GET may read from the reader (docs/design.md, "Reads on readers"), unless the client
    asks for ``Kontex-Consistency: strong``."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    if str(method).upper() not in ("GET", "HEAD"):
        return False
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return headers.get(CONSISTENCY_HEADER, "").strip().lower() != "strong"


def _resolve_read(app: APIGatewayHttpResolver, event: dict[str, Any], context: Any) -> Any:
    """Read units on the reader; a 404 from the reader (perhaps a row it has not replayed yet)
    is asked of the writer once more, so a client finds what it just created."""
    with reading_from_replica() as routing:
        result = app.resolve(event, context)
    if result.get("statusCode") == 404 and routing.read_replica and not routing.wrote:
        return app.resolve(event, context)
    return result


def handle(
    app: APIGatewayHttpResolver,
    event: dict[str, Any],
    context: Any,
    mcp: McpHandler | None = None,
) -> dict[str, Any]:
    """Admit the caller, then route; routes read the key with ``auth.caller()``. ``/mcp`` goes
    to ``mcp`` (the MCP server, ``kontex.mcp``, which the function hands in), with the same
    admission and limits; without it ``/mcp`` is no route."""
    try:
        key = admit(event)
        check_request(event)
    except KontexError as error:
        return _error(error)
    if key is not None and mcp is not None and _path(event) == MCP_PATH:
        try:
            return mcp(event, key)
        except KontexError as error:
            return _error(error)
    token = current_key.set(key) if key is not None else None
    try:
        if _reads_from_replica(event):
            return _resolve_read(app, event, context)
        return app.resolve(event, context)
    finally:
        if token is not None:
            current_key.reset(token)
