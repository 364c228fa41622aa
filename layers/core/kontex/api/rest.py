"""The REST surface: a Powertools resolver with one router per resource.

Each resource's router (and the pydantic models, services and their imports behind it) is
included on the first request whose path falls under its prefix (the session archive's and the
session views' routers only for their own paths, a session listing's alone for a ``GET
/v1/sessions``: ``routers_of``), and the OpenAPI document and
the Swagger page load only when they are asked for: a cold start pays only for what its first
request needs (docs/benchmarks.md, "Cold start of the api function (issue 25)", "Cold start of
the api, sixth round (issue 25)", "Cold start of the api, seventh round (issue 25)").
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from kontex import __version__
from kontex.adapters.routed_store import reading_from_replica
from kontex.api import auth, errors
from kontex.api.auth import admit, current_key
from kontex.api.guard import check_request
from kontex.bootstrap import container
from kontex.domain.errors import KontexError
from kontex.domain.models import ApiKey
from kontex.services import health as health_report

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Route
    from aws_lambda_powertools.utilities.typing import LambdaContext

# The routers in the order the eager resolver included them: the OpenAPI document lists the
# routes in this order, whichever resource was asked for first.
ROUTERS = (
    "keys",
    "sessions",
    "session_listing",
    "session_archive",
    "session_views",
    "tasks",
    "snapshots",
    "queries",
    "threads",
    "checkpoints",
    "search",
)
# The first path segment after /v1/ -> the router whose routes all lie under it
PREFIXES = {
    "keys": "keys",
    "sessions": "sessions",
    "tasks": "tasks",
    "snapshots": "snapshots",
    "messages": "queries",
    "tool-calls": "queries",
    "usage": "queries",
    "threads": "threads",
    "checkpoints": "checkpoints",
    "search": "search",
}
# The session routes in the document's order: the archive's import and export routes
# (kontex.api.session_archive) and the snapshot listing and views (kontex.api.session_views),
# routers of their own so that a session listing does not load their models, keep their place
# among them, as when they were one router.
SESSION_ROUTES = (
    "create_session",
    "list_sessions",
    "import_session",
    "get_session",
    "patch_session",
    "delete_session",
    "export_session",
    "link_trace",
    "create_task",
    "task_tree",
    "list_snapshots",
    "timeline",
    "diff",
    "graph",
    "stats",
)
DOCS_PATH = "/v1/docs"


def openapi_options() -> dict[str, Any]:
    """The document's title, security schemes and so on (Powertools' OpenAPI models: imported
    only when the document or the Swagger page is made)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

    return {
        "title": "Kontex API",
        "version": __version__,
        "description": (
            "Immutable snapshots of AI agent runs: sessions, task trees, rollback, diffs."
        ),
        "security_schemes": {
            "bearer": HTTPBearer(description="Authorization: Bearer kontex_..."),
            "api_key": APIKey(name="X-Kontex-Api-Key", **{"in": APIKeyIn.header}),
        },
        "security": [{"bearer": []}, {"api_key": []}],
    }


def router_of(path: str) -> str | None:
    """The router serving ``path`` (``/v1/<segment>`` or below), None when none does."""
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[0] or parts[1] != "v1":
        return None
    return PREFIXES.get(parts[2])


# /v1/sessions/<id>/<segment>... -> the router of the session routes under it, beside the
# sessions router's own
SESSION_SEGMENTS = {
    "export": "session_archive",
    "snapshots": "session_views",
    "diff": "session_views",
    "graph": "session_views",
    "stats": "session_views",
}


LISTING_PATH = "/v1/sessions"


def routers_of(path: str, method: str = "") -> tuple[str, ...]:
    """The routers a request ``method path`` needs: its prefix's, and for the archive's paths
    (``/v1/sessions/import``, ``/v1/sessions/<id>/export``) and the snapshot listing's and the
    views' (``/v1/sessions/<id>/snapshots``, ``.../diff``...) also theirs (with the session
    routes still there, every other method on those paths answers as before). A session listing
    (``GET /v1/sessions``) needs only its own router (``kontex.api.session_listing``); any other
    method on that path gets it beside the session routes (so a wrong method is still a 405)."""
    name = router_of(path)
    if name is None:
        return ()
    if name == "sessions":
        parts = path.rstrip("/").split("/")
        if len(parts) == 3:
            if path == LISTING_PATH and method.upper() == "GET":
                return ("session_listing",)
            return ("sessions", "session_listing")
        if parts[3:] == ["import"]:
            return ("sessions", "session_archive")
        if len(parts) >= 5 and parts[4] in SESSION_SEGMENTS:
            return ("sessions", SESSION_SEGMENTS[parts[4]])
    return (name,)


def _rank(route: Route) -> tuple[int, int]:
    """A route's place in the eager order: its router's (the archive's routes among the session
    routes, ``SESSION_ROUTES``), then the resolver's own routes."""
    name = router_of(route.path)
    if name is None:
        return len(ROUTERS), 0
    if name == "sessions":
        handler = route.func.__name__
        place = SESSION_ROUTES.index(handler) if handler in SESSION_ROUTES else len(SESSION_ROUTES)
        return ROUTERS.index(name), place
    return ROUTERS.index(name), 0


class RestResolver(APIGatewayHttpResolver):
    """Includes a resource's router on the first request under its prefix, once."""

    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        self.included: set[str] = set()
        self._swagger = False
        self._lock = threading.Lock()

    def include(self, *names: str) -> None:
        """Include these routers (kontex.api.<name>) if not yet, keeping the eager order of the
        routes (routing does not depend on it: the prefixes are disjoint; the document does)."""
        if all(name in self.included for name in names):
            return
        with self._lock:
            for name in names:
                if name not in self.included:
                    module = importlib.import_module(f"kontex.api.{name}")
                    self.include_router(module.router)
                    self.included.add(name)
            self._static_routes = sorted(self._static_routes, key=_rank)
            self._dynamic_routes = sorted(self._dynamic_routes, key=_rank)

    def include_all(self) -> None:
        self.include(*ROUTERS)

    def include_swagger(self) -> None:
        """``/v1/docs``: the Swagger page of the whole document."""
        self.include_all()
        with self._lock:
            if not self._swagger:
                self.enable_swagger(path=DOCS_PATH, **openapi_options())
                self._swagger = True

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        path = _path(event)
        if path == DOCS_PATH:
            self.include_swagger()
        elif names := routers_of(path, _method(event)):
            self.include(*names)
        return super().resolve(event, context)


def build_resolver() -> RestResolver:
    app = RestResolver()
    errors.register(app)

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

    return app


def openapi_json(app: RestResolver) -> str:
    """``/v1/openapi.json``, also made in process (clients/python/scripts/gen_models.py)."""
    from kontex.api.openapi import render as complete_openapi

    app.include_all()
    return complete_openapi(app.get_openapi_json_schema(**openapi_options()))


MCP_PATH = "/mcp"  # the MCP SDK's streamable HTTP transport (kontex/mcp), not a resolver route


def _path(event: Mapping[str, Any]) -> str:
    return str(event.get("rawPath") or event.get("requestContext", {}).get("http", {}).get("path"))


def _method(event: Mapping[str, Any]) -> str:
    return str(event.get("requestContext", {}).get("http", {}).get("method") or "")


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


def _resolve_read(app: RestResolver, event: dict[str, Any], context: Any) -> Any:
    """Read units on the reader; a 404 from the reader (perhaps a row it has not replayed yet)
    is asked of the writer once more, so a client finds what it just created."""
    with reading_from_replica() as routing:
        result = app.resolve(event, context)
    if result.get("statusCode") == 404 and routing.read_replica and not routing.wrote:
        return app.resolve(event, context)
    return result


def handle(
    app: RestResolver,
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
