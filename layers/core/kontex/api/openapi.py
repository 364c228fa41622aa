"""The OpenAPI document as clients need it: the real status codes (not Powertools' 200/422),
the error schema on every error, the constraints, a summary per operation, and the two routes
other functions serve (OTLP ingest, the Anthropic proxy)."""

from __future__ import annotations

import json
from typing import Any

from kontex.api.guard import MAX_DEPTH, MAX_NUMBER
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
    ("delete", "/v1/sessions/{session_id}"): ["204"],
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


# -- what the database stores (api/guard.py), said in the schemas --------------------------------

NO_NUL = "^[^\\x00]*$"  # PostgreSQL stores no NUL character (U+0000) in text or JSONB
NUMBERS = {"minimum": -MAX_NUMBER, "maximum": MAX_NUMBER}  # what the guard lets through
JSON_REF = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE = {
    "title": "JsonValue",
    "description": "Any JSON value the database can store: no NUL character (U+0000) in a"
    " string or key, numbers within ±(2^53-1) (I-JSON), nested at most"
    f" {MAX_DEPTH} levels (a request with other values is a 400 validation_error).",
    # one schema, not an anyOf: each keyword applies to its own type
    "type": ["null", "boolean", "number", "string", "array", "object"],
    "pattern": NO_NUL,
    **NUMBERS,
    "items": JSON_REF,
    "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": JSON_REF,
}
_TYPED = {"type", "$ref", "anyOf", "allOf", "oneOf", "enum", "const", "properties", "items"}


def storable(schema: Any, outer: dict[str, Any] | None = None) -> None:
    """Say in ``schema`` (in place) what the API refuses before routing: a NUL in a string or
    key, a number beyond ±(2^53-1), in any value (``api/guard.py``). A string gets a pattern,
    a number those bounds (or its own, which ``outer``, the schema of its ``anyOf``, may hold),
    a free-form value or object member ``JsonValue``."""
    if not isinstance(schema, dict):
        return
    if not _TYPED & set(schema):  # any JSON value
        schema.update(JSON_REF)
        return
    kind = schema.get("type")
    if kind == "string" and not {"pattern", "enum", "const", "format"} & set(schema):
        schema["pattern"] = NO_NUL
    if kind in ("integer", "number"):
        for bound, value in NUMBERS.items():
            schema.setdefault(bound, (outer or {}).get(bound, value))
    if schema.get("additionalProperties") is True:
        schema["additionalProperties"] = dict(JSON_REF)
        schema["propertyNames"] = {"pattern": NO_NUL}
    for inner in schema.get("properties", {}).values():
        storable(inner)
    for key in ("items", "additionalProperties"):
        storable(schema.get(key))
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for inner in schema.get(key, []):
            storable(inner, schema)


# Query parameters as the routes take them, where a type alone says too little.
CURSOR = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_-]*$",
    "description": "A page's `next_cursor`, as answered (empty: the first page). Opaque: a"
    " position in the listing (base64url); a value that is not one is a 400.",
}
# The cursors' formats, by the listings they page (each listing orders by its own keys).
CURSOR_FORMATS = {
    "/v1/checkpoints": "checkpoint-cursor",
    "/v1/messages": "object-cursor",
    "/v1/tool-calls": "object-cursor",
}
FILTER = {
    "application/json": {
        "schema": {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": JSON_REF,
        }
    }
}


def _query(path: str, parameter: dict[str, Any]) -> None:
    name = parameter.get("name", "")
    if parameter.get("in") != "query":
        return
    if name == "cursor":
        kind = CURSOR_FORMATS.get(path, "cursor")
        parameter["schema"] = {**CURSOR, "format": kind, "title": "Cursor"}
    elif name == "filter" and path == "/v1/checkpoints":
        parameter.pop("schema", None)  # JSON text: a parameter with content, not a schema
        parameter["content"] = FILTER


# Links from what an operation made to the operations that take it (the stateful tests of
# schemathesis follow them): (method, path, status) -> [(name, method, path, parameters)].
_SESSION: dict[str, Any] = {"session_id": "$response.body#/id"}
_TASK = {"task_id": "$response.body#/id"}
_SNAPSHOT = {"snapshot_id": "$response.body#/id"}
_NEXT = {"cursor": "$response.body#/next_cursor"}
LINKS: dict[tuple[str, str, str], list[tuple[str, str, str, dict[str, Any]]]] = {
    ("post", "/v1/sessions", "201"): [
        ("GetSession", "get", "/v1/sessions/{session_id}", _SESSION),
        ("PatchSession", "patch", "/v1/sessions/{session_id}", _SESSION),
        ("DeleteSession", "delete", "/v1/sessions/{session_id}", {**_SESSION, "purge": True}),
        ("CreateTask", "post", "/v1/sessions/{session_id}/tasks", _SESSION),
        ("TaskTree", "get", "/v1/sessions/{session_id}/tasks", _SESSION),
        ("ListSnapshots", "get", "/v1/sessions/{session_id}/snapshots", _SESSION),
        ("Timeline", "get", "/v1/sessions/{session_id}/snapshots/timeline", _SESSION),
        ("Graph", "get", "/v1/sessions/{session_id}/graph", _SESSION),
        ("Stats", "get", "/v1/sessions/{session_id}/stats", _SESSION),
        ("LinkTrace", "post", "/v1/sessions/{session_id}/link-trace", _SESSION),
    ],
    ("get", "/v1/sessions", "200"): [("NextPage", "get", "/v1/sessions", _NEXT)],
    ("post", "/v1/sessions/{session_id}/tasks", "201"): [
        ("GetTask", "get", "/v1/tasks/{task_id}", _TASK),
        ("PatchTask", "patch", "/v1/tasks/{task_id}", _TASK),
        ("CreateSnapshot", "post", "/v1/tasks/{task_id}/snapshots", _TASK),
        ("LatestSnapshot", "get", "/v1/tasks/{task_id}/snapshots/latest", _TASK),
    ],
    ("post", "/v1/tasks/{task_id}/snapshots", "201"): [
        ("GetSnapshot", "get", "/v1/snapshots/{snapshot_id}", _SNAPSHOT),
        ("GetBundle", "get", "/v1/snapshots/{snapshot_id}/bundle", _SNAPSHOT),
        ("Revisions", "get", "/v1/snapshots/{snapshot_id}/revisions", _SNAPSHOT),
        ("Rollback", "post", "/v1/snapshots/{snapshot_id}/rollback", _SNAPSHOT),
        ("Fork", "post", "/v1/snapshots/{snapshot_id}/fork", _SNAPSHOT),
        ("Enrich", "post", "/v1/snapshots/{snapshot_id}/enrich", _SNAPSHOT),
    ],
    ("post", "/v1/keys", "201"): [
        ("RevokeKey", "delete", "/v1/keys/{key_id}", {"key_id": "$response.body#/id"})
    ],
    ("put", "/v1/threads/{thread_id}/state", "200"): [
        (name, method, "/v1/threads/{thread_id}/state", {"thread_id": "$response.body#/thread_id"})
        for name, method in (("GetThreadState", "get"), ("DeleteThreadState", "delete"))
    ],
    ("post", "/v1/checkpoints", "201"): [
        (name, method, path, {"thread_id": "$response.body#/thread_id"})
        for name, method, path in (
            ("GetTuple", "get", "/v1/checkpoints/tuple"),
            ("ListCheckpoints", "get", "/v1/checkpoints"),
            ("DeleteThread", "delete", "/v1/checkpoints"),
        )
    ],
}


def _links(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for (method, path, code), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(code)
        if response is None:
            continue
        response["links"] = {
            name: {
                "operationId": paths[target][target_method]["operationId"],
                "parameters": parameters,
            }
            for name, target_method, target, parameters in links
            if target_method in paths.get(target, {})
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
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        if name not in ("Error", "LiveEvent"):
            storable(schema)
    schemas["JsonValue"] = JSON_VALUE
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
                _query(path, parameter)
                storable(parameter.get("schema"))
    _links(document)
    document["paths"].update(_other_functions())
    _one_schema(document, "LogEvent")
    return document


def render(raw: str) -> str:
    return json.dumps(complete(json.loads(raw)))
