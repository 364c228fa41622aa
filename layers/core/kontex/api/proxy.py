"""HTTP glue of the proxy Lambda: admit, forward, answer, then queue the capture.

``handle`` answers with the whole upstream body (API Gateway + Lambda buffer responses);
``stream`` yields it chunk by chunk (the local stack streams SSE as it arrives). Both queue
the capture only after the answer is complete, and a failure to queue it is logged, never
passed to the caller.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from kontex.api.auth import authorize
from kontex.api.errors import status_of
from kontex.bootstrap import container
from kontex.domain.errors import InvalidInput, KontexError, NotFound
from kontex.proxy.assemble import reply_of
from kontex.proxy.upstream import UpstreamError, UpstreamResponse, post_messages
from kontex.services import capture, sessions

logger = Logger(service="kontex-proxy", child=True)


@dataclass
class Call:
    account_id: str
    headers: dict[str, str]
    body: bytes
    request: dict[str, Any]
    session_id: str | None
    task_id: str | None
    trigger: str
    n: int


def _error(error: KontexError) -> dict[str, Any]:
    status, headers = status_of(error)
    if isinstance(error, UpstreamError):
        status = error.status
    body = {"error": error.code, "message": error.message, "details": error.details}
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **headers},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def admit(event: dict[str, Any]) -> Call:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    if event.get("rawPath", "").rstrip("/") != "/proxy/v1/messages":
        raise NotFound("the proxy serves POST /proxy/v1/messages")
    key = authorize(headers.get("x-kontex-api-key"))  # Authorization belongs to the upstream
    deps = container().deps
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(request, dict):
        raise InvalidInput("the request body must be a JSON object")
    session_id = headers.get("x-kontex-session-id") or None
    task_id = headers.get("x-kontex-task-id") or None
    if session_id:
        sessions.get_session(deps, key.account_id, session_id)
    if task_id:
        task = deps.store.get_task(key.account_id, task_id)
        if task is None or task.session_id != session_id:
            raise NotFound(f"task {task_id} not found in the session")
    trigger, n = capture.parse_trigger(
        headers.get("x-kontex-snapshot-trigger"), headers.get("x-kontex-snapshot-n")
    )
    return Call(key.account_id, headers, body, request, session_id, task_id, trigger, n)


def _forward(call: Call) -> UpstreamResponse:
    settings = container().settings
    return post_messages(
        settings.anthropic_api_url, call.body, call.headers, settings.kontex_proxy_timeout_seconds
    )


def _queue_capture(call: Call, status: int, raw: bytes, is_stream: bool) -> None:
    if call.session_id is None or status != 200:
        return
    reply = reply_of(raw, is_stream)
    if reply is None:
        return
    job = capture.CaptureJob(
        id=str(uuid.uuid4()),
        account_id=call.account_id,
        session_id=call.session_id,
        task_id=call.task_id,
        trigger=call.trigger,
        n=call.n,
        request=call.request,
        reply=reply,
    )
    try:
        container().queue.send(capture.CAPTURE_QUEUE, [job.to_json()])
    except Exception:  # capture must never break the answer
        logger.exception("could not queue the capture", extra={"session_id": call.session_id})


def handle(event: dict[str, Any]) -> dict[str, Any]:
    try:
        call = admit(event)
        upstream = _forward(call)
        raw = b"".join(upstream.chunks)
    except KontexError as error:
        return _error(error)
    _queue_capture(call, upstream.status, raw, upstream.is_stream)
    return {
        "statusCode": upstream.status,
        "headers": upstream.headers,
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def stream(event: dict[str, Any]) -> tuple[int, dict[str, str], Iterator[bytes]]:
    """Status, headers and the body as it arrives (for servers that can stream)."""
    try:
        call = admit(event)
        upstream = _forward(call)
    except KontexError as error:
        answer = _error(error)
        return answer["statusCode"], answer["headers"], iter([answer["body"].encode()])

    def body() -> Iterator[bytes]:
        seen: list[bytes] = []
        try:
            for chunk in upstream.chunks:
                seen.append(chunk)
                yield chunk
        except UpstreamError:
            logger.warning("the upstream stream broke off", extra={"bytes": sum(map(len, seen))})
            return
        _queue_capture(call, upstream.status, b"".join(seen), upstream.is_stream)

    return upstream.status, upstream.headers, body()
