"""The proxy as one ASGI app: run by uvicorn behind the Lambda Web Adapter on AWS
(``functions/proxy``), mounted at ``/proxy/`` by ``kontex dev`` (``kontex.local.server``).

Async end to end: the caller's key and Kontex headers are checked (``services.proxy.admit``, on
a thread: it reads the database), the call goes upstream on a pooled async client
(``adapters.http_upstream``), and the answer is sent on as it arrives; uvicorn does the HTTP
framing. The capture is queued after the answer's last byte, on a thread, so it never delays
the answer. In Lambda the environment may be frozen as soon as the answer is complete, so
there the capture is queued after the last byte of the body but before the end of the answer
(the end-of-body marker waits for it; the bytes do not).

Errors of the proxy's own (bad Kontex header, unknown key, an upstream that is down or too
slow) are ``{"error", "message", "details"}`` answers; the upstream's own errors (429, 529,
500...) pass through unchanged. An upstream answer that breaks off mid-body closes the
caller's connection without ending the answer, as the upstream did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from kontex.domain.errors import KontexError
from kontex.domain.forwarding import KONTEX_KEY, UpstreamError
from kontex.http.errors import status_of

log = logging.getLogger("kontex.proxy")

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit, kept for the function URL too
BODY_TIMEOUT_SECONDS = 10.0  # a request body that stops arriving for this long is a 408
Send = Callable[[dict[str, Any]], Any]


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# what a refusal shows: the upstream's own key stays where it is
PROXY_HEADERS = "`X-Kontex-Api-Key: kontex_...` (the upstream's key stays in its own header)"


def presented_key(headers: dict[str, str]) -> Any:
    """``X-Kontex-Api-Key``; else a Kontex key sent where the upstream's key goes (it is then
    the caller's Kontex key, and never forwarded). A ``services.keys.Credential``."""
    from kontex.services.keys import Credential

    if headers.get("x-kontex-api-key", "").strip():
        return Credential(headers["x-kontex-api-key"].strip(), expected=PROXY_HEADERS)
    for name in ("authorization", "x-api-key", "api-key"):
        found = KONTEX_KEY.search(headers.get(name, ""))
        if found:
            return Credential(found.group(0), expected=PROXY_HEADERS)
    return Credential(expected=PROXY_HEADERS)


def error_answer(error: KontexError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status, extra = status_of(error)
    if isinstance(error, UpstreamError):
        status = error.status
    headers = [(b"content-type", b"application/json")]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    body = {"error": error.code, "message": error.message, "details": error.details}
    return status, headers, json.dumps(body, default=str).encode()


def _in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


class ProxyApp:
    """The ASGI app. ``container`` gives the composition root (``kontex.bootstrap.container``
    by default: the one the process configured); ``health`` answers ``GET /health`` (the Web
    Adapter's readiness check); ``capture_before_end`` defaults to True in Lambda."""

    def __init__(
        self,
        container: Callable[[], Any] | None = None,
        *,
        health: bool = True,
        capture_before_end: bool | None = None,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self._container = container
        self.health = health
        self.capture_before_end = _in_lambda() if capture_before_end is None else capture_before_end
        self.body_timeout = body_timeout
        self.pending: set[asyncio.Future[None]] = set()  # captures being queued

    def container(self) -> Any:
        if self._container is not None:
            return self._container()
        from kontex.bootstrap import container

        return container()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self.serve(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.warm()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.drain()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def warm(self) -> None:
        """Make the upstream client now (its TLS context takes ~0.3 s), not on the first call."""
        try:
            warm = getattr(self.container().upstream, "warm", None)
            if warm is not None:
                warm()
        except Exception:  # the first call makes it then
            log.debug("the upstream client was not made at startup", exc_info=True)

    async def drain(self) -> None:
        """Wait for the captures still being queued."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    async def serve(self, scope: dict[str, Any], receive: Any, send: Send) -> int:
        """Answer one request; returns the status sent."""
        if self.health and scope["path"] == "/health":
            return await _answer(
                send, 200, [(b"content-type", b"application/json")], b'{"status":"ok"}'
            )
        try:
            body = await self._body(scope, receive)
        except _Refused as refused:
            error = json.dumps(
                {"error": refused.code, "message": refused.message, "details": None}
            ).encode()
            closing = [(b"content-type", b"application/json"), (b"connection", b"close")]
            return await _answer(send, refused.status, closing, error)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = (scope.get("query_string") or b"").decode("latin-1")
        try:
            made = self.container()
            call = await asyncio.to_thread(
                _admit, made, scope["method"], raw_path, query, headers, body
            )
            from kontex.services import proxy

            settings = made.settings
            base = (
                settings.openai_api_url if call.api == proxy.OPENAI else settings.anthropic_api_url
            )
            response = await proxy.forward(
                made.upstream, base, settings.kontex_proxy_timeout_seconds, call
            )
        except KontexError as error:
            return await _answer(send, *error_answer(error))
        return await self._relay(made, call, response, send)

    async def _relay(self, made: Any, call: Any, response: Any, send: Send) -> int:
        from kontex.services import proxy

        relay = proxy.Relay(call, response)
        head = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": head})
        loop = asyncio.get_running_loop()
        async with contextlib.aclosing(relay.chunks()) as chunks:  # type: ignore[type-var]
            try:
                async for chunk in chunks:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as error:
                log.warning("the upstream answer broke off (%s): nothing captured", error.message)
                return response.status  # the caller's connection is closed unended, as ours was
        captured = loop.run_in_executor(None, _capture, made, relay)
        if self.capture_before_end:
            await captured
        else:
            self.pending.add(captured)
            captured.add_done_callback(self.pending.discard)
        await send({"type": "http.response.body", "body": b""})
        return response.status

    async def _body(self, scope: dict[str, Any], receive: Any) -> bytes:
        declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY:
            raise _Refused(413, "payload_too_large", "the request body is over 10 MB")
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                raise _Refused(
                    408, "request_timeout", "the request body did not arrive in time"
                ) from None
            if message["type"] == "http.disconnect":
                raise _Refused(400, "validation_error", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise _Refused(413, "payload_too_large", "the request body is over 10 MB")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _admit(
    made: Any, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes
) -> Any:
    """The caller's key (counted against its hourly limit), then the call: a thread's work."""
    from kontex.services import limits, proxy

    proxy.route(raw_path)  # 404 before anything else for a path that is not ours
    key = limits.admit(
        made.deps, presented_key(headers), "requests", made.settings.kontex_rate_limit_per_hour
    )
    return proxy.admit(made.deps, key.account_id, method, raw_path, query, headers, body)


def _capture(made: Any, relay: Any) -> None:
    from kontex import observability
    from kontex.services import proxy

    proxy.queue_capture(made.deps, made.queue, relay.job())
    observability.flush()


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status
