"""HTTP glue of the proxy: API Gateway event in, the upstream's answer out (services/proxy).

``stream`` yields the body chunk by chunk (the local stack and the Lambda Web Adapter server
stream it to the client as it arrives); ``handle`` answers with the whole body (a buffered
Lambda integration). Both queue the capture once the body is complete.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from kontex.api.auth import authorize
from kontex.api.errors import status_of
from kontex.bootstrap import container
from kontex.domain.errors import KontexError
from kontex.proxy.upstream import KONTEX_KEY, UpstreamError
from kontex.services import proxy
from kontex.services.keys import Credential

Streamed = tuple[int, dict[str, str], Iterator[bytes]]


def _error(error: KontexError) -> tuple[int, dict[str, str], bytes]:
    status, headers = status_of(error)
    if isinstance(error, UpstreamError):
        status = error.status
    body = {"error": error.code, "message": error.message, "details": error.details}
    return status, {"content-type": "application/json", **headers}, json.dumps(body).encode()


# what a refusal shows: the upstream's own key stays where it is
PROXY_HEADERS = "`X-Kontex-Api-Key: kontex_...` (the upstream's key stays in its own header)"


def presented_key(headers: dict[str, str]) -> Credential:
    """``X-Kontex-Api-Key``; else a Kontex key sent where the upstream's key goes (it is then
    the caller's Kontex key, and never forwarded)."""
    if headers.get("x-kontex-api-key", "").strip():
        return Credential(headers["x-kontex-api-key"].strip(), expected=PROXY_HEADERS)
    for name in ("authorization", "x-api-key"):
        found = KONTEX_KEY.search(headers.get(name, ""))
        if found:
            return Credential(found.group(0), expected=PROXY_HEADERS)
    return Credential(expected=PROXY_HEADERS)


def _start(event: dict[str, Any]) -> tuple[proxy.Call, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    method = event.get("requestContext", {}).get("http", {}).get("method", "POST")
    path = event.get("rawPath") or event.get("requestContext", {}).get("http", {}).get("path", "")
    proxy.upstream_path(path)  # 404 before anything else for a path that is not ours
    key = authorize(presented_key(headers))  # X-Kontex-Api-Key; Authorization is upstream's
    made = container()
    call = proxy.admit(
        made.deps, key.account_id, method, path, event.get("rawQueryString") or "", headers, body
    )
    settings = made.settings
    response = proxy.forward(
        made.upstream, settings.anthropic_api_url, settings.kontex_proxy_timeout_seconds, call
    )
    return call, response


def stream(event: dict[str, Any]) -> Streamed:
    """Status, headers and the body as it arrives."""
    try:
        call, response = _start(event)
    except KontexError as error:
        status, headers, body = _error(error)
        return status, headers, iter([body])
    made = container()
    return response.status, response.headers, proxy.relay(made.deps, made.queue, call, response)


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """The same call with the whole body in one answer."""
    status, headers, chunks = stream(event)
    body = b"".join(chunks)
    return {
        "statusCode": status,
        "headers": headers,
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
