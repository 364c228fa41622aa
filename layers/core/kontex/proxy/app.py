"""The proxy as one ASGI app: run by uvicorn behind the Lambda Web Adapter on AWS
(``functions/proxy``), mounted at ``/proxy/`` by ``kontex dev`` (``kontex.local.server``).

Async end to end: the caller's key and Kontex headers are checked (``services.proxy.admit``, on
a thread: it reads the database), the call goes upstream on a pooled async client
(``adapters.http_upstream``), and the answer is sent on as it arrives (``arrived``: the parts
read together, a stream's events that came in one read, in one write; none waits for the
next); uvicorn does the HTTP framing. The capture is handed off after the answer's last byte
(``CaptureHandOff``): the request path appends the relay to an in-memory list and ends the
answer; one thread of the process reads the replies and queues their captures in batches (one
queue write for all the captures that arrived meanwhile), so the answer never waits for them
and the event loop does none of that work. In Lambda the environment may be frozen as soon as
the answer is complete, so there the capture is queued after the last byte of the body but
before the end of the answer (the end-of-body marker waits for it; the bytes do not).

Errors of the proxy's own (bad Kontex header, unknown key, an upstream that is down or too
slow) are ``{"error", "message", "details"}`` answers; the upstream's own errors (429, 529,
500...) pass through unchanged. An upstream answer that breaks off mid-body closes the
caller's connection without ending the answer, as the upstream did.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
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
        admission_clock: Callable[[], float] | None = None,
    ) -> None:
        self._container = container
        self.health = health
        self.capture_before_end = _in_lambda() if capture_before_end is None else capture_before_end
        self.body_timeout = body_timeout
        self.captures = CaptureHandOff()
        self.admission_clock = admission_clock
        self._admission: tuple[Any, Any] | None = None  # (container, its Admission)

    def admission(self, made: Any) -> Any:
        """The process's ``services.admission.Admission`` for the container ``made`` (a new one
        when the container changes: the tests configure one per test)."""
        current = self._admission
        if current is None or current[0] is not made:
            from kontex.services.admission import Admission

            ttl = made.settings.kontex_proxy_admission_cache_seconds
            clock = self.admission_clock
            known = Admission(ttl) if clock is None else Admission(ttl, clock=clock)
            current = self._admission = (made, known)
        return current[1]

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

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for the captures handed off and not yet queued."""
        if not self.captures.idle:
            await asyncio.to_thread(self.captures.wait, timeout)

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
        from kontex.services import proxy
        from kontex.services.admission import Miss

        made = self.container()
        known = self.admission(made)
        try:
            try:  # from what this process knows, on the loop: no round trip, no thread hop
                call = _admit(made, known, scope["method"], raw_path, query, headers, body, False)
            except Miss as miss:  # from the store, on a thread
                call = await asyncio.to_thread(
                    _admit,
                    made,
                    known,
                    scope["method"],
                    raw_path,
                    query,
                    headers,
                    body,
                    True,
                    miss.key,
                )

            settings = made.settings
            base = (
                settings.openai_api_url if call.api == proxy.OPENAI else settings.anthropic_api_url
            )
            response = await proxy.forward(
                made.upstream, base, settings.kontex_proxy_timeout_seconds, call
            )
        except KontexError as error:
            status = await _answer(send, *error_answer(error))
            if known.uncounted:  # a call refused after its key was counted (a 429, a 404...)
                self.captures.put(made, None, known)
            return status
        return await self._relay(made, known, call, response, send)

    async def _relay(self, made: Any, known: Any, call: Any, response: Any, send: Send) -> int:
        from kontex.services import proxy

        relay = proxy.Relay(call, response)
        holds_end = self.capture_before_end and relay.seen is not None
        head = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.items()
            # a Content-Length would end the answer at its last byte, before the capture is
            # queued: in Lambda a captured answer stays chunked, so its end waits for it
            if not (holds_end and k == "content-length")
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": head})
        loop = asyncio.get_running_loop()
        async with (
            contextlib.aclosing(relay.chunks()) as chunks,  # type: ignore[type-var]
            contextlib.aclosing(arrived(chunks)) as writes,  # closed first: its pending read too
        ):
            try:
                async for chunk in writes:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as error:
                log.warning("the upstream answer broke off (%s): nothing captured", error.message)
                if known.uncounted:
                    self.captures.put(made, None, known)
                return response.status  # the caller's connection is closed unended, as ours was
        if self.capture_before_end:  # Lambda: queued (and the metrics written) before the end
            await loop.run_in_executor(None, _capture, made, [relay], known)
        elif relay.seen is not None or known.uncounted:  # a capture to queue, uses to count
            self.captures.put(made, relay if relay.seen is not None else None, known)
        await send({"type": "http.response.body", "body": b""})
        return response.status

    async def _body(self, scope: dict[str, Any], receive: Any) -> bytes:
        declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY:
            raise _Refused(413, "payload_too_large", "the request body is over 10 MB")
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        try:  # one timer for the whole body, pushed back as each part arrives (no task per part)
            async with asyncio.timeout(self.body_timeout) as timer:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Refused(400, "validation_error", "the client went away")
                    chunk = message.get("body", b"")
                    more = message.get("more_body", False)
                    if not more and not chunks:  # the whole body in one part: no copy
                        if len(chunk) > MAX_BODY:
                            raise _Refused(
                                413, "payload_too_large", "the request body is over 10 MB"
                            )
                        return bytes(chunk)
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise _Refused(413, "payload_too_large", "the request body is over 10 MB")
                    chunks.append(chunk)
                    if not more:
                        return b"".join(chunks)
                    timer.reschedule(loop.time() + self.body_timeout)
        except TimeoutError:
            raise _Refused(
                408, "request_timeout", "the request body did not arrive in time"
            ) from None


def _admit(
    made: Any,
    known: Any,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    store: bool,
    key: Any = None,
) -> Any:
    """The caller's key (counted against its hourly limit, unless ``key``: admitted already),
    then the call. With ``store`` False from what the process knows only (on the loop):
    ``Miss``, with the key once it is admitted, for what only the store knows; with ``store``
    True the store is asked (a thread's work)."""
    from kontex.services import proxy
    from kontex.services.admission import Miss

    proxy.route(raw_path)  # 404 before anything else for a path that is not ours
    if key is None:
        limit = made.settings.kontex_rate_limit_per_hour
        key = known.key(made.deps, presented_key(headers), "requests", limit, store=store)
    try:
        return proxy.admit(
            made.deps, key.account_id, method, raw_path, query, headers, body, known, store
        )
    except Miss as miss:
        miss.key = key
        raise


def _capture(made: Any, relays: list[Any], known: Any = None) -> None:
    """Read the replies and queue their captures, in one queue write, then count the uses the
    process let through; never raises."""
    from kontex import observability
    from kontex.services import proxy

    if relays:
        proxy.queue_captures(made.deps, made.queue, [relay.job() for relay in relays])
    if known is not None:
        known.flush(made.deps)
    observability.flush()


class CaptureHandOff:
    """Captures handed off by the request path (``put``: an append and a wake-up, no thread
    hop, no I/O) and queued by one thread of their own, in batches of what arrived while the
    previous batch was being queued. A capture waits here in memory for at most one batch;
    ``wait`` (the server's shutdown, the tests) returns once every one is queued. After each
    batch, the rate-limit uses the admission let through are counted in the store
    (``Admission.flush``): an item may bring no capture, only that (``relay`` None)."""

    def __init__(self) -> None:
        self._items: collections.deque[tuple[Any, Any, Any]] = collections.deque()
        self._pending = 0  # handed off, not yet queued
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def idle(self) -> bool:
        return self._pending == 0

    def put(self, made: Any, relay: Any, known: Any = None) -> None:
        with self._ready:
            self._items.append((made, relay, known))
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kontex-proxy-captures", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether every capture handed off was queued within ``timeout`` seconds."""
        with self._ready:
            return self._ready.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._items))
                batch = list(self._items)
                self._items.clear()
            try:
                by_container: dict[int, tuple[Any, list[Any], Any]] = {}
                for made, relay, known in batch:
                    _, relays, _ = by_container.setdefault(id(made), (made, [], known))
                    if relay is not None:
                        relays.append(relay)
                for made, relays, known in by_container.values():
                    _capture(made, relays, known)
            except Exception:  # the answers are gone; nothing to fail but a log line
                log.exception("captures were not queued")
            finally:
                with self._ready:
                    self._pending -= len(batch)
                    self._ready.notify_all()


_DONE = object()


class _Pull:
    """One ``__anext__`` of an async iterator, run at once up to where it would wait:
    ``waits`` False when it finished without waiting (``value``, or ``ended``); else awaiting
    the ``_Pull`` waits for it and gives its value (or raises what it raises)."""

    __slots__ = ("_steps", "_waiting", "ended", "value")

    def __init__(self, parts: AsyncIterator[bytes]) -> None:
        self._steps = parts.__anext__().__await__()
        self._waiting: Any = _DONE  # what the step waits on (None too: a bare yield)
        self.ended, self.value = False, b""
        try:
            self._waiting = self._steps.send(None)
        except StopIteration as done:
            self.value = done.value
        except StopAsyncIteration:
            self.ended = True

    @property
    def waits(self) -> bool:
        return self._waiting is not _DONE

    async def aclose(self) -> None:
        """Unwind a step that waits (``GeneratorExit`` thrown in, its clean-up awaited): the
        iterator is then closed, not left running."""
        if not self.waits:
            return
        try:
            self._waiting = self._steps.throw(GeneratorExit)
        except (GeneratorExit, StopIteration, StopAsyncIteration):
            self._waiting = _DONE
            return
        with contextlib.suppress(GeneratorExit, StopAsyncIteration):
            await self
        self._waiting = _DONE

    def __await__(self) -> Generator[Any, Any, bytes]:
        waiting = self._waiting  # what the step waits on, handed to the task now
        while True:
            try:
                sent = yield waiting
            except BaseException as error:  # the task's cancellation and the like: to the step
                try:
                    waiting = self._steps.throw(error)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    waiting = self._steps.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]


async def arrived(parts: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """``parts`` (the upstream's body as read), those that come without waiting joined: the
    events of a stream that arrived together go to the caller in one write instead of a write
    each, and none is held back while the next is awaited (each write goes before a wait).
    The read that would wait is started before that write (so the upstream's read timeout
    runs during it: a caller that takes the whole timeout to take a write ends the answer)."""
    held: list[bytes] = []
    while True:
        try:
            pull = _Pull(parts)
        except Exception:  # the upstream broke off: what came before it goes first
            if held:
                yield held[0] if len(held) == 1 else b"".join(held)
            raise
        if pull.ended:
            break
        if pull.waits:
            if held:
                try:
                    yield held[0] if len(held) == 1 else b"".join(held)
                except BaseException:  # closed, or the caller failed: the read is unwound
                    await pull.aclose()
                    raise
                held = []
            try:
                value = await pull
            except StopAsyncIteration:
                break
        else:
            value = pull.value
        if value:
            held.append(value)
    if held:
        yield held[0] if len(held) == 1 else b"".join(held)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status
