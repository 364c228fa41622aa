"""The OpenAPI document as clients need it: the real status codes (not Powertools' 200/422),
the error schema on every error, the constraints, a summary per operation, and the two routes
other functions serve (OTLP ingest, the Anthropic proxy)."""

from __future__ import annotations

import json
from typing import Any

from kontex.api.shapes import LiveEvent
from kontex.domain.models import THREAD_ID_RE

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["error", "message", "details"],
    "properties": {
        "error": {"type": "string", "description": "snake_case code", "example": "not_found"},
        "message": {"type": "string"},
        "details": {"description": "what was wrong, when known (validation errors: a list)"},
    },
}
ERRORS = {
    "400": "validation_error: the request is not valid",
    "401": "unauthorized: no key, or an unknown or revoked one",
    "404": "not_found: no such resource in the caller's account",
    "409": "conflict / enrich_window_expired",
    "413": "payload_too_large",
    "415": "unsupported_media_type",
    "429": "rate_limit_exceeded (see Retry-After)",
    "500": "integrity_error: stored content no longer matches its hash (never served)",
    "503": "unavailable: a dependency is down for now (see Retry-After)",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
# Success codes other than 200, by (method, path).
SUCCESS: dict[tuple[str, str], list[str]] = {
    ("post", "/v1/keys"): ["201"],
    ("delete", "/v1/keys/{key_id}"): ["204"],
    ("post", "/v1/sessions"): ["201"],
    ("post", "/v1/sessions/import"): ["201"],
    ("delete", "/v1/sessions/{session_id}"): ["200", "204"],
    ("post", "/v1/sessions/{session_id}/tasks"): ["201"],
    ("post", "/v1/tasks/{task_id}/snapshots"): ["201"],
    ("post", "/v1/snapshots/{snapshot_id}/rollback"): ["201"],
    ("post", "/v1/snapshots/{snapshot_id}/fork"): ["201"],
    ("delete", "/v1/threads/{thread_id}/state"): ["204"],
    ("post", "/v1/checkpoints"): ["201"],
    ("post", "/v1/checkpoints/writes"): ["204"],
    ("delete", "/v1/checkpoints"): ["204"],
    ("post", "/v1/checkpoints/copy"): ["201"],
}
SUMMARIES = {
    "get": "Get",
    "save": "Save thread state",
    "delete": "Delete thread state",
    "diff": "Diff two snapshots",
    "graph": "Session graph",
    "stats": "Session statistics",
    "usage": "Usage this month",
    "timeline": "Snapshot timeline",
    "task_tree": "Task tree",
    "enrich": "Enrich a snapshot",
    "fork": "Fork a snapshot into a new task",
    "rollback": "Roll back to a snapshot (writes a new one)",
    "search": "Search snapshots (hybrid: dense and lexical)",
    "export_session": "Export a session as an archive",
    "import_session": "Import an archive as a session",
}
PARAMETER_SCHEMAS = {
    "thread_id": {
        "type": "string",
        "pattern": THREAD_ID_RE.pattern,
        "minLength": 32,
        "maxLength": 64,
    }
}


def _summary(operation: dict[str, Any], method: str, path: str) -> str:
    name = operation.get("operationId", "").split("_v1_")[0]
    if name == "get" and "threads" in path:
        return "Get thread state"
    return SUMMARIES.get(name) or name.replace("_", " ").capitalize() or f"{method.upper()} {path}"


def _errors() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, description in ERRORS.items():
        out[code] = {
            "description": description,
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        if code in ("429", "503"):
            out[code]["headers"] = RETRY_AFTER
    return out


def _other_functions() -> dict[str, Any]:
    errors = _errors()
    otlp = {
        "post": {
            "operationId": "ingest_traces",
            "summary": "OTLP/HTTP trace receiver",
            "description": "ExportTraceServiceRequest as application/x-protobuf or application/"
            "json, optionally gzip. Answers ExportTraceServiceResponse in the request's type; "
            "spans that cannot be stored are refused in partial_success.",
            "tags": ["ingest"],
            "parameters": [
                {
                    "name": "X-Kontex-Session-Id",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "200": {
                    "description": "accepted (partial_success lists refused spans)",
                    "content": {
                        "application/x-protobuf": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                **{c: errors[c] for c in ("400", "401", "404", "413", "415", "429", "503")},
                "405": {
                    "description": "method_not_allowed: POST only",
                    "content": {"application/json": {"schema": ERROR_REF}},
                },
            },
        }
    }
    proxy = {
        "post": {
            "operationId": "proxy_messages",
            "summary": "Anthropic Messages API, relayed and captured",
            "description": "Forwards the request to ANTHROPIC_API_URL unchanged (x-api-key, "
            "authorization, anthropic-version, anthropic-beta) and answers with the upstream's "
            "answer (SSE streams pass through); the call is captured as a snapshot. The Kontex "
            "key goes in X-Kontex-Api-Key.",
            "tags": ["proxy"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {
                    "description": "the upstream's answer",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **{c: errors[c] for c in ("400", "401", "404", "413", "429", "503")},
                "502": {
                    "description": "upstream_error",
                    "content": {"application/json": {"schema": ERROR_REF}},
                },
            },
        }
    }
    return {"/ingest/v1/traces": otlp, "/proxy/v1/messages": proxy}


def _one_schema(document: dict[str, Any], name: str) -> None:
    """``name``'s written and read schemas as one: its serializer (a function, documented as
    any object) only leaves out the fields that are absent."""
    schemas = document["components"]["schemas"]
    if f"{name}-Input" not in schemas:
        return
    schemas[name] = schemas.pop(f"{name}-Input")
    schemas.pop(f"{name}-Output", None)
    text = json.dumps(document)
    for side in ("Input", "Output"):
        text = text.replace(
            f'"#/components/schemas/{name}-{side}"', f'"#/components/schemas/{name}"'
        )
    document.clear()
    document.update(json.loads(text))


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools' document, with the real codes, errors, constraints and summaries."""
    document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        document["components"]["schemas"].pop(name, None)
    # pushed by the live feed, not answered by a route: documented for the generated clients
    document["components"]["schemas"]["LiveEvent"] = LiveEvent.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            ok = responses.pop("200", {"description": "Successful Response"})
            for code in SUCCESS.get((method, path), ["200"]):
                if code == "204":
                    responses[code] = {"description": "No Content"}
                else:
                    responses[code] = {**ok, "description": ok.get("description", "OK")}
            responses.update(_errors())
            operation["summary"] = _summary(operation, method, path)
            for parameter in operation.get("parameters", []):
                schema = PARAMETER_SCHEMAS.get(parameter.get("name", ""))
                if schema and parameter.get("in") == "path":
                    parameter["schema"] = {**parameter.get("schema", {}), **schema}
    document["paths"].update(_other_functions())
    _one_schema(document, "LogEvent")
    return document


def render(raw: str) -> str:
    return json.dumps(complete(json.loads(raw)))
