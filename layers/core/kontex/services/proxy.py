"""The proxy's use case: admit a call, forward it, and queue the capture of a Messages call.

Every method and path under ``/proxy/v1/*`` goes to the upstream unchanged (``count_tokens``,
``models``, batches, files...); only ``POST /v1/messages`` is captured, and only when the
caller names a session. ``X-Kontex-Session-Id`` takes a session id (``sess_...``: it must be
one of the caller's, else 404 and nothing is forwarded) or a name: the first call with a name
makes a session of that name, later calls find it (the same aliases OTLP spans use).

The capture is queued after the answer is complete; the snapshot is written by the capture
worker (``services/capture``). A capture the queue refuses after the caller already has its
answer is kept in the object store (``claims/undelivered/capture/<id>.json``) and logged, never lost
silently.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kontex import observability
from kontex.domain.errors import InvalidInput, NotFound
from kontex.domain.models import nested_deeper_than
from kontex.ports import Queue, Upstream, UpstreamRequest, UpstreamResponse
from kontex.proxy.assemble import reply_of
from kontex.proxy.upstream import UpstreamError
from kontex.services import capture, sessions
from kontex.services.deps import Deps

log = logging.getLogger("kontex.proxy")

PREFIX = "/proxy"
CAPTURED = ("POST", "/v1/messages")
SESSION_ID_PREFIX = "sess_"
UNDELIVERED = "claims/undelivered/capture/"  # kept 30 days (the bucket's lifecycle)
SEND_ATTEMPTS = 3
MAX_DEPTH = 128  # a Messages body nested deeper is refused: its capture could not be processed


@dataclass
class Call:
    """An admitted request: where it goes upstream, and what to capture of it."""

    account_id: str
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


def upstream_path(raw_path: str) -> str:
    """``/proxy/v1/...`` -> ``/v1/...``; anything else is not the proxy's."""
    if not raw_path.startswith(PREFIX + "/v1/") and raw_path != PREFIX + "/v1":
        raise NotFound("the proxy serves /proxy/v1/*")
    return raw_path[len(PREFIX) :]


def is_captured_route(method: str, path: str) -> bool:
    return (method.upper(), path.rstrip("/")) == CAPTURED


def resolve_session(deps: Deps, account_id: str, given: str) -> str:
    """A session id of the caller's (404 otherwise), or a name: found, or made on first use."""
    given = given.strip()
    if given.startswith(SESSION_ID_PREFIX):
        return sessions.get_session(deps, account_id, given).id
    with deps.store.unit(write=False) as uow:
        found = uow.traces.alias(account_id, given)
    if found:
        return found
    made = sessions.create_session(
        deps, account_id, given[:200], metadata={"source": "proxy", "external_id": given}
    )
    with deps.store.unit() as uow:
        return uow.traces.add_alias(account_id, given, made.id)


def admit(
    deps: Deps,
    account_id: str,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Call:
    """The call to forward; raises (and nothing is forwarded) for a bad Kontex header or a
    Messages body that is not JSON."""
    lowered = {k.lower(): v for k, v in headers.items()}
    path = upstream_path(raw_path)
    call = Call(account_id, method.upper(), path, query, lowered, body)
    if not is_captured_route(method, path):
        return call
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
        call.session_id = resolve_session(deps, account_id, given)
    if task_id:
        with deps.store.unit(write=False) as uow:
            task = uow.tasks.get(account_id, task_id)
        if task is None or task.session_id != call.session_id:
            raise NotFound(f"task {task_id} not found in the session")
        call.task_id = task_id
    return call


def forward(upstream: Upstream, base_url: str, timeout: float, call: Call) -> UpstreamResponse:
    call.started = time.perf_counter()
    response = upstream.request(
        UpstreamRequest(
            base_url, call.method, call.path, call.query, call.headers, call.body, timeout
        )
    )
    observability.milliseconds("UpstreamLatency", (time.perf_counter() - call.started) * 1000)
    return response


def relay(deps: Deps, queue: Queue, call: Call, response: UpstreamResponse) -> Iterator[bytes]:
    """The answer's body as it arrives; once it is complete, the capture is queued."""
    seen: list[bytes] | None = [] if call.captured and response.status == 200 else None
    try:
        for chunk in response.chunks:
            if seen is not None:
                seen.append(chunk)
            yield chunk
    except UpstreamError:
        log.warning("the upstream answer broke off: nothing captured")
        return
    if seen is not None:
        latency_ms = (time.perf_counter() - call.started) * 1000
        queue_capture(deps, queue, call, response, b"".join(seen), latency_ms)


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
    reply = reply_of(body, response.is_stream)
    if reply is None:
        return None
    return capture.CaptureJob(
        id=str(uuid.uuid4()),
        account_id=call.account_id,
        session_id=call.session_id,
        task_id=call.task_id,
        trigger=call.trigger,
        n=call.n,
        request=call.request,
        reply=reply,
        latency_ms=round(latency_ms, 3),
    )


def queue_capture(
    deps: Deps,
    queue: Queue,
    call: Call,
    response: UpstreamResponse,
    raw: bytes,
    latency_ms: float,
) -> None:
    """Queue the capture; the caller already has its answer, so this never raises. What the
    queue refuses is kept in the object store for replay (and logged)."""
    try:
        job = job_of(call, response, raw, latency_ms)
    except Exception:  # a reply we cannot read is not worth failing the answer for
        log.exception("could not read the reply for capture")
        return
    if job is None:
        return
    body = job.to_json()
    for attempt in range(SEND_ATTEMPTS):
        try:
            queue.send(capture.CAPTURE_QUEUE, [body])
            return
        except Exception:
            if attempt + 1 < SEND_ATTEMPTS:
                time.sleep(0.05 * (attempt + 1))
    key = f"{UNDELIVERED}{job.id}.json"
    try:
        deps.blobs.put(key, body.encode())
        log.error("the capture queue refused a capture; kept at %s", key)
    except Exception:
        log.exception("the capture queue and the object store refused capture %s", job.id)
