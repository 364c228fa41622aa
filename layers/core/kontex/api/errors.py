"""Domain errors mapped to HTTP once, in the error shape every route shares."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from kontex.domain.errors import (
    KontexError,
)
from kontex.http.errors import (  # noqa: F401  (status_of: the mapping, shared by every surface)
    STATUS,
    MethodNotAllowed,
    UnsupportedMediaType,
    status_of,
)

logger = Logger(service="kontex-api", child=True)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": code, "message": message, "details": details}
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, default=str),
        headers=headers,
    )


def _clean(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors without echoing whole request bodies back."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


def register(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def invalid(error: RequestValidationError) -> Response:
        details = _clean(list(error.errors()))
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "validation_error", "the request body is not valid JSON")
        return error_response(400, "validation_error", "the request is not valid", details)

    @app.exception_handler(KontexError)
    def domain(error: KontexError) -> Response:
        status, headers = status_of(error)
        if status == 500:
            logger.error("internal error", extra={"error": str(error), "code": error.code})
            return error_response(500, error.code, "internal error")
        return error_response(status, error.code, error.message, error.details, headers)

    @app.not_found
    def missing(_: Exception) -> Response:
        """404 for a path no route has; 405 with ``Allow`` for one that routes take with other
        methods (the routes' compiled rules: Powertools keeps them on ``_static_routes`` and
        ``_dynamic_routes``; tests/api/test_routes.py checks this answer)."""
        path = app.current_event.path
        routes = [*getattr(app, "_static_routes", []), *getattr(app, "_dynamic_routes", [])]
        allowed = sorted({r.method for r in routes if r.rule.match(path)})
        if allowed:
            method = app.current_event.http_method
            return error_response(
                405,
                "method_not_allowed",
                f"{method} is not allowed here: {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return error_response(404, "not_found", "no such route")
