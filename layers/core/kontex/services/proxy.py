"""The proxy's use case: admit a call, forward it, and queue the capture of a model call.

Two APIs, each forwarded unchanged (every method and path): Anthropic's under ``/proxy/v1/*``
(to ``ANTHROPIC_API_URL``) and OpenAI's (or any OpenAI-compatible server's) under
``/proxy/openai/v1/*`` (to ``OPENAI_API_URL``). Only the model calls are captured:
``POST /v1/messages`` (Anthropic), ``POST /v1/chat/completions`` and ``POST /v1/responses``
(OpenAI), and only when the caller names a session. ``X-Kontex-Session-Id`` takes a session id
(``sess_...``: it must be one of the caller's, else 404 and nothing is forwarded) or a name:
the first call with a name makes a session of that name, later calls find it (the same
aliases OTLP spans use).

The capture is queued after the answer's last byte; the snapshot is written by the capture
worker (``services/capture``). A capture the queue refuses after the caller already has its
answer is kept in the object store (``claims/undelivered/capture/<id>.json``) and logged, never
lost silently.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kontex import observability
from kontex.domain import captures as capture
from kontex.domain.errors import InvalidInput, NotFound
from kontex.domain.model_calls import anthropic, openai
from kontex.domain.models import nested_deeper_than
from kontex.ports import Queue, Upstream, UpstreamRequest, UpstreamResponse
from kontex.services import sessions
from kontex.services.admission import Admission, Miss
from kontex.services.deps import Deps

log = logging.getLogger("kontex.proxy")

PREFIX = "/proxy"
ANTHROPIC, OPENAI = "anthropic", "openai"
# API -> (path prefix of the proxy, the model calls captured)
APIS: dict[str, tuple[str, frozenset[tuple[str, str]]]] = {
    OPENAI: (
        "/proxy/openai",
        frozenset({("POST", "/v1/chat/completions"), ("POST", "/v1/responses")}),
    ),
    ANTHROPIC: ("/proxy", frozenset({("POST", "/v1/messages")})),
}
SESSION_ID_PREFIX = "sess_"
UNDELIVERED = "claims/undelivered/capture/"  # kept 30 days (the bucket's lifecycle)
SEND_ATTEMPTS = 3
MAX_DEPTH = 128  # a Messages body nested deeper is refused: its capture could not be processed
LOOP_PARSE_LIMIT = 256 * 1024  # a larger body is parsed on a thread, not on the event loop


@dataclass
class Call:
    """An admitted request: where it goes upstream, and what to capture of it."""

    account_id: str
    api: str  # ANTHROPIC or OPENAI
    method: str
    path: str  # upstream path, e.g. /v1/messages
    query: str
    headers: dict[str, str]
    body: bytes
    session_id: str | None = None
    task_id: str | None = None
    trigger: str = "always"
    n: int = 1
    request: dict[str, Any] | None = None  # the parsed Messages request, when captured
    started: float = field(default_factory=time.perf_counter)

    @property
    def captured(self) -> bool:
        return self.request is not None and self.session_id is not None


def route(raw_path: str) -> tuple[str, str]:
    """``(api, upstream path)``: ``/proxy/v1/...`` -> Anthropic's ``/v1/...``,
    ``/proxy/openai/v1/...`` -> OpenAI's ``/v1/...``; anything else is not the proxy's."""
    for api, (prefix, _) in APIS.items():
        if raw_path.startswith(prefix + "/v1/") or raw_path == prefix + "/v1":
            return api, raw_path[len(prefix) :]
    raise NotFound("the proxy serves /proxy/v1/* (Anthropic) and /proxy/openai/v1/* (OpenAI)")


def upstream_path(raw_path: str) -> str:
    return route(raw_path)[1]


def is_captured_route(method: str, path: str, api: str = ANTHROPIC) -> bool:
    return (method.upper(), path.rstrip("/")) in APIS[api][1]


def resolve_session(
    deps: Deps, account_id: str, given: str, known: Admission | None = None, store: bool = True
) -> str:
    """A session id of the caller's (404 otherwise), or a name: found, or made on first use.
    From ``known`` when this process found it already; ``Miss`` if not and ``store`` is
    False."""
    given = given.strip()
    if known is not None:
        found = known.session(account_id, given)
        if found is not None:
            return found
    if not store:
        raise Miss
    if given.startswith(SESSION_ID_PREFIX):
        found = sessions.get_session(deps, account_id, given).id
    else:
        with deps.store.unit(write=False) as uow:
            found = uow.traces.alias(account_id, given)
        if not found:
            made = sessions.create_session(
                deps, account_id, given[:200], metadata={"source": "proxy", "external_id": given}
            )
            with deps.store.unit() as uow:
                found = uow.traces.add_alias(account_id, given, made.id)
    if known is not None:
        known.remember_session(account_id, given, found)
    return found


def task_session(
    deps: Deps, account_id: str, task_id: str, known: Admission | None, store: bool
) -> str | None:
    """The session of the caller's task (None: no such task), as ``resolve_session``."""
    if known is not None:
        found = known.task(account_id, task_id)
        if found is not None:
            return found
    if not store:
        raise Miss
    with deps.store.unit(write=False) as uow:
        task = uow.tasks.get(account_id, task_id)
    if task is None:
        return None
    if known is not None:
        known.remember_task(account_id, task_id, task.session_id)
    return task.session_id


def admit(
    deps: Deps,
    account_id: str,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    known: Admission | None = None,
    store: bool = True,
) -> Call:
    """The call to forward; raises (and nothing is forwarded) for a bad Kontex header or a
    model call's body that is not a JSON object. The sessions and tasks named come from
    ``known`` when this process found them already (services/admission.py); with ``store``
    False, ``Miss`` when they are not known there, or for a body too large to parse on the
    event loop."""
    lowered = {k.lower(): v for k, v in headers.items()}
    api, path = route(raw_path)
    call = Call(account_id, api, method.upper(), path, query, lowered, body)
    if not is_captured_route(method, path, api):
        return call
    if not store and len(body) > LOOP_PARSE_LIMIT:
        raise Miss
    too_deep = InvalidInput(f"the request body is nested more than {MAX_DEPTH} levels deep")
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("the request body is not valid JSON") from None
    except RecursionError:  # deeper than Python parses
        raise too_deep from None
    if nested_deeper_than(request, MAX_DEPTH):  # its capture could not be processed
        raise too_deep
    if not isinstance(request, dict):
        raise InvalidInput("the request body must be a JSON object")
    call.request = request
    given = lowered.get("x-kontex-session-id") or ""
    task_id = lowered.get("x-kontex-task-id") or None
    call.trigger, call.n = capture.parse_trigger(
        lowered.get("x-kontex-snapshot-trigger"), lowered.get("x-kontex-snapshot-n")
    )
    if given.strip():
        call.session_id = resolve_session(deps, account_id, given, known, store)
    if task_id:
        session_of_task = task_session(deps, account_id, task_id, known, store)
        if session_of_task is None or session_of_task != call.session_id:
            raise NotFound(f"task {task_id} not found in the session")
        call.task_id = task_id
    return call


async def forward(
    upstream: Upstream, base_url: str, timeout: float, call: Call
) -> UpstreamResponse:
    call.started = time.perf_counter()
    response = await upstream.request(
        UpstreamRequest(
            base_url, call.method, call.path, call.query, call.headers, call.body, timeout
        )
    )
    observability.milliseconds("UpstreamLatency", (time.perf_counter() - call.started) * 1000)
    return response


class Relay:
    """The answer's body as it arrives (``chunks``); what was seen of it, for the capture
    (``job`` once the last byte has gone: None when nothing is to be captured)."""

    def __init__(self, call: Call, response: UpstreamResponse) -> None:
        self.call, self.response = call, response
        self.seen: list[bytes] | None = [] if call.captured and response.status == 200 else None
        self.latency_ms: float | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.chunks:  # UpstreamError if the answer breaks off
            if self.seen is not None:
                self.seen.append(chunk)
            yield chunk
        self.latency_ms = (time.perf_counter() - self.call.started) * 1000

    @property
    def complete(self) -> bool:
        return self.latency_ms is not None

    def job(self) -> capture.CaptureJob | None:
        """The capture job of a complete answer; never raises (the caller has its answer)."""
        if self.seen is None or self.latency_ms is None:
            return None
        try:
            return job_of(self.call, self.response, b"".join(self.seen), self.latency_ms)
        except Exception:  # a reply we cannot read is not worth failing the answer for
            log.exception("could not read the reply for capture")
            return None


def _decoded(raw: bytes, encoding: str) -> bytes | None:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            return zlib.decompress(raw, wbits=47)  # gzip or zlib, detected
        except zlib.error:
            return None
    return None


def job_of(
    call: Call, response: UpstreamResponse, raw: bytes, latency_ms: float
) -> capture.CaptureJob | None:
    if not call.captured or call.session_id is None or call.request is None:
        return None
    body = _decoded(raw, response.headers.get("content-encoding", ""))
    if body is None:
        log.warning("a reply in %s is not captured", response.headers.get("content-encoding"))
        return None
    request = call.request
    if call.api == OPENAI:  # both read into the shape the capture worker stores
        reply = openai.reply_of(call.path, body, response.is_stream)
        request = openai.request_of(call.path, request)
    else:
        reply = anthropic.reply_of(body, response.is_stream)
    if reply is None:
        return None
    return capture.CaptureJob(
        id=str(uuid.uuid4()),
        account_id=call.account_id,
        session_id=call.session_id,
        task_id=call.task_id,
        trigger=call.trigger,
        n=call.n,
        request=request,
        reply=reply,
        latency_ms=round(latency_ms, 3),
    )


def queue_capture(deps: Deps, queue: Queue, job: capture.CaptureJob | None) -> None:
    """Queue the capture; the caller already has its answer, so this never raises. What the
    queue refuses is kept in the object store for replay (and logged)."""
    queue_captures(deps, queue, [job])


def queue_captures(deps: Deps, queue: Queue, jobs: list[capture.CaptureJob | None]) -> None:
    """Queue the captures in one send (one transaction of the local queue, SQS batches of
    ten); never raises. What the queue refuses is kept in the object store for replay (and
    logged), one object per capture. The send need not survive a power loss, only a crash of
    this process (``durable=False``: the local queue commits without an fsync): the caller has
    its answer already, so nothing waits for the disk."""
    made = [job for job in jobs if job is not None]
    if not made:
        return
    bodies = [job.to_json() for job in made]
    for attempt in range(SEND_ATTEMPTS):
        try:
            queue.send(capture.CAPTURE_QUEUE, bodies, durable=False)
            return
        except Exception:
            if attempt + 1 < SEND_ATTEMPTS:
                time.sleep(0.05 * (attempt + 1))
    for job, body in zip(made, bodies, strict=True):
        key = f"{UNDELIVERED}{job.id}.json"
        try:
            deps.blobs.put(key, body.encode())
            log.error("the capture queue refused a capture; kept at %s", key)
        except Exception:
            log.exception("the capture queue and the object store refused capture %s", job.id)
