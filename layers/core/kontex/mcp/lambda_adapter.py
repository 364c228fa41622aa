"""The MCP SDK's streamable HTTP app, driven in-process from API Gateway HTTP API (v2) events.

No web server runs: each event becomes one ASGI request to the SDK's Starlette app (stateless,
JSON responses), and its answer becomes the Lambda proxy response. The SDK's session manager
may run only once per process, and it needs a running event loop; so the first request starts
one event loop on a daemon thread with the manager running in it, and every later request of
the process (a warm Lambda environment, a `kontex dev` worker) is scheduled onto that loop.

The caller's API key is set in a context variable inside the request's own task: the SDK
starts the request's server task from it, and runs sync tools on worker threads with a copy of
its context, so every tool of a request sees that request's key, whatever runs beside it.

The SDK checks the ``Host`` header against ``KONTEX_MCP_ALLOWED_HOSTS`` (DNS rebinding
protection; 421 otherwise): loopback by default, the API's own host on AWS (set by the CDK
stack), ``*`` to turn the check off.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from functools import cached_property
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message

from kontex.api.auth import current_key
from kontex.domain.errors import Transient
from kontex.domain.models import ApiKey

MCP_PATH = "/mcp"
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
REQUEST_TIMEOUT_SECONDS = 28.0  # under API Gateway's 30 s (the function's own timeout is lower)


def security_settings(allowed_hosts: str | None) -> TransportSecuritySettings:
    """``Host`` and ``Origin`` checks for a comma-separated list of hosts (``host:*`` = any
    port); None means loopback only, ``*`` no check."""
    hosts = [h.strip() for h in (allowed_hosts or "").split(",") if h.strip()] or list(
        LOOPBACK_HOSTS
    )
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{h}" for h in hosts for scheme in ("https", "http")],
    )


def asgi_scope(event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The ASGI HTTP scope and body of an HTTP API (payload 2.0) event."""
    http = event.get("requestContext", {}).get("http", {})
    path = event.get("rawPath") or http.get("path") or "/"
    headers = {k.lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    if event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")
    host = headers.get("host", "localhost")
    scheme = headers.get("x-forwarded-proto", "https" if "execute-api" in host else "http")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": str(http.get("method", "POST")).upper(),
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode("utf-8"),
        "query_string": str(event.get("rawQueryString") or "").encode("latin-1"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": (http.get("sourceIp", "127.0.0.1"), 0),
        "server": (host.rsplit(":", 1)[0], 443 if scheme == "https" else 80),
    }
    return scope, body


class McpBridge:
    """One MCP server, its session manager running on one event loop thread, per process."""

    def __init__(self, server: MCPServer, allowed_hosts: str | None = None) -> None:
        self._server = server
        self._allowed_hosts = allowed_hosts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @cached_property
    def app(self) -> ASGIApp:
        return self._server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=security_settings(self._allowed_hosts),
        )

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                _ = self.app  # building the app makes the SDK's session manager
                manager = self._server.session_manager
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                failed: list[BaseException] = []

                async def run() -> None:
                    try:
                        async with manager.run():
                            ready.set()
                            await asyncio.Event().wait()  # for the life of the process
                    except BaseException as error:
                        failed.append(error)
                        ready.set()
                        raise

                def main() -> None:
                    asyncio.set_event_loop(loop)
                    loop.run_until_complete(run())

                threading.Thread(target=main, name="kontex-mcp", daemon=True).start()
                ready.wait()
                if failed:
                    raise RuntimeError("the MCP session manager did not start") from failed[0]
                self._loop = loop
            return self._loop

    def handle(
        self, event: dict[str, Any], key: ApiKey, timeout: float = REQUEST_TIMEOUT_SECONDS
    ) -> dict[str, Any]:
        """The Lambda proxy response to one MCP request made with ``key``."""
        future = asyncio.run_coroutine_threadsafe(self._serve(event, key), self._running_loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise Transient("the MCP request did not finish in time") from None

    async def _serve(self, event: dict[str, Any], key: ApiKey) -> dict[str, Any]:
        current_key.set(key)  # this task's own context: the request's tools inherit it
        scope, body = asgi_scope(event)
        answered = asyncio.Event()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()  # the client stays connected until the answer is complete
            return {"type": "http.disconnect"}

        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    k, v = name.decode("latin-1"), value.decode("latin-1")
                    headers[k] = f"{headers[k]},{v}" if k in headers else v
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        try:
            await self.app(scope, receive, send)
        finally:
            answered.set()
        payload = b"".join(chunks)
        headers.pop("content-length", None)
        try:
            text, encoded = payload.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(payload).decode(), True
        return {"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": encoded}


_bridge: McpBridge | None = None
_bridge_lock = threading.Lock()


def bridge() -> McpBridge:
    """The process's bridge, built on first use (no import-time work)."""
    global _bridge
    with _bridge_lock:
        if _bridge is None:
            from kontex.bootstrap import container
            from kontex.mcp.tools import build_server

            _bridge = McpBridge(build_server(), container().settings.kontex_mcp_allowed_hosts)
        return _bridge


def handle(event: dict[str, Any], key: ApiKey) -> dict[str, Any]:
    """One MCP request. Only POST: a stateless server has no stream to open with GET (the spec
    allows a 405 for it) and no session to end with DELETE, and API Gateway's HTTP API buffers
    answers, so a stream could not pass anyway."""
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "")).upper()
    if method != "POST":
        body = {
            "error": "method_not_allowed",
            "message": "this MCP server is stateless: POST JSON-RPC requests to /mcp",
            "details": None,
        }
        return {
            "statusCode": 405,
            "headers": {"Content-Type": "application/json", "Allow": "POST"},
            "body": json.dumps(body),
            "isBase64Encoded": False,
        }
    return bridge().handle(event, key)
