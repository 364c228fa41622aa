"""The API Gateway event codec: plain HTTP requests in, the HTTP API (payload 2.0) and WebSocket
events a Lambda handler gets out; the handler's proxy response read back as HTTP; and the
parts of the Lambda context a handler reads.

Used wherever a handler is called outside API Gateway: the proxy's server behind the Lambda Web
Adapter (``functions/proxy/server.py``, deployed), and ``kontex dev`` (``kontex.local``, its
queue workers in ``kontex.adapters.local_queue``).
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

_TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")


def http_api_event(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str = "127.0.0.1",
    route_key: str = "$default",
) -> dict[str, Any]:
    path, _, query = raw_path.partition("?")
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    content_type = lowered.get("content-type", "")
    is_text = (not body) or (
        content_type.startswith(_TEXT_TYPES) and "content-encoding" not in lowered
    )
    if is_text:
        try:
            body_text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            body_text, encoded = base64.b64encode(body).decode(), True
    else:
        body_text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lowered.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if body:
        event["body"] = body_text
    return event


def response_parts(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body bytes of a Lambda proxy response."""
    status = int(result.get("statusCode", 200))
    headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    headers.extend(("Set-Cookie", c) for c in result.get("cookies") or [])
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return status, headers, body


@dataclass
class LocalContext:
    """The parts of ``LambdaContext`` that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: int = 30
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self.started)
        return max(0, int(left * 1000))


def websocket_event(
    route_key: str,
    connection_id: str,
    *,
    headers: list[tuple[str, str]] | None = None,
    body: str | bytes | None = None,
    source_ip: str = "127.0.0.1",
    connected_at: float | None = None,
    close_code: int | None = None,
) -> dict[str, Any]:
    """The event API Gateway's WebSocket API gives the Lambda of a route (``$connect``,
    ``$default`` with the message, ``$disconnect``)."""
    now = time.time()
    lowered = {k.lower(): v for k, v in headers or []}
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": str(uuid.uuid4()),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "messageDirection": "IN",
        "stage": "local",
        "connectedAt": int((connected_at or now) * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": source_ip, "userAgent": lowered.get("user-agent", "")},
        "requestId": str(uuid.uuid4()),
        "domainName": lowered.get("host", "localhost"),
        "connectionId": connection_id,
        "apiId": "local",
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if route_key == "$connect":
        event["headers"] = lowered
        event["multiValueHeaders"] = {k: [v] for k, v in lowered.items()}
    elif route_key == "$disconnect":
        context["disconnectStatusCode"] = close_code or 1005
        context["disconnectReason"] = ""
    else:
        context["messageId"] = base64.b64encode(uuid.uuid4().bytes[:12]).decode()
        if isinstance(body, bytes):
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = body or ""
    return event


def new_connection_id() -> str:
    """An id shaped like API Gateway's (12 random bytes, base64)."""
    return base64.b64encode(uuid.uuid4().bytes[:12]).decode()
