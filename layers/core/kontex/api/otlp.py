"""HTTP glue of the OTLP ingest Lambda: API Gateway event in, OTLP/HTTP answer out.

``POST /ingest/v1/traces``, ``/ingest/v1/logs`` and ``/ingest/v1/metrics``, each answered as
OTLP/HTTP requires: protobuf or JSON (gzip allowed), 400/413/415 for bad requests, and the
Export*ServiceResponse in the request's content type with ``partial_success`` when some items
were rejected."""

from __future__ import annotations

import base64
import json
from typing import Any

from kontex import observability
from kontex.api.auth import authorize, presented_key
from kontex.bootstrap import container
from kontex.domain.errors import KontexError, NotFound
from kontex.http.errors import MethodNotAllowed, status_of
from kontex.otlp.decode import JSON, PROTOBUF, encode_response, encode_signal_response
from kontex.services import ingest

SIGNALS = ("traces", "logs", "metrics")


def _answer(status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None):
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **(headers or {})},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def handle(event: dict[str, Any]) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    method = event.get("requestContext", {}).get("http", {}).get("method", "POST")
    path = event.get("rawPath", "")
    signal = path.rstrip("/").removeprefix("/ingest/v1/")
    try:
        if signal not in SIGNALS:
            raise NotFound("the OTLP receivers are at /ingest/v1/traces, /logs and /metrics")
        if method != "POST":
            raise MethodNotAllowed(f"{method} is not allowed: the OTLP receiver takes POST")
        key = authorize(presented_key(headers))
        export = ingest.Export(
            key,
            body,
            headers.get("content-type"),
            headers.get("content-encoding"),
            headers.get("x-kontex-session-id"),
        )
        if signal == "metrics":
            result = ingest.accept_metrics(container().deps, export)
        else:
            accept = ingest.accept if signal == "traces" else ingest.accept_logs
            result = accept(container().deps, container().queue, export)
    except KontexError as error:
        status, extra = status_of(error)
        if isinstance(error, MethodNotAllowed):
            extra = {"Allow": "POST"}
        shape = {"error": error.code, "message": error.message, "details": error.details}
        return _answer(status, JSON, json.dumps(shape).encode(), extra)
    if signal == "traces":
        observability.count("SpansAccepted", result.accepted)
        observability.count("SpansRefused", result.rejected)
    content_type = PROTOBUF if result.media_type == PROTOBUF else JSON
    if signal == "traces":
        answer = encode_response(result.media_type, result.rejected, result.message)
    else:
        answer = encode_signal_response(signal, result.media_type, result.rejected, result.message)
    return _answer(200, content_type, answer)
