"""The span worker's use case: spans in, tasks and snapshots out (idempotent).

Per span, the session is, in order: the ingest header ``X-Kontex-Session-Id``,
``traceloop.association.properties.session_id``, ``session.id``, ``gen_ai.conversation.id``
(a Kontex session id, or an external name: a session is made for a new name and found again
by it), then a trace linked with ``POST /v1/sessions/{id}/link-trace``. Spans that resolve to
no session are kept, pending, and processed when their trace is linked.

Where things land:
- a workflow / agent / task span becomes a task, under the task of its nearest task ancestor;
- an LLM span becomes a snapshot (source ``openllmetry``) in the task of its nearest task
  ancestor, or in the trace's own task ("trace <name>") when it has none; the bundle holds the
  prompt messages with their roles, the reply appended, reasoning, the tool calls of the
  conversation (results matched by id) merged with the tool spans of its task that ended before
  it, the model and the usage (input + output tokens as ``token_total``);
- a tool span becomes a tool call: when its task already has a snapshot, a new snapshot
  "tool: <name>" holds that snapshot's content with the call merged in (rules below); otherwise it
  waits in the trace and is merged into the next LLM snapshot.

Fidelity rules (the spans of today's stacks: Traceloop/OpenLLMetry beside the anthropic SDK's
own spans):
- an LLM span without content (the anthropic SDK's ``anthropic.messages.create``: usage, no
  messages) never becomes a snapshot. Its usage and timing complete the snapshot of its twin,
  the LLM span with content for the same call (its parent, child or sibling whose time overlaps
  it), when that twin is processed with it or after it; when it comes after the twin's
  snapshot was sealed, that snapshot gets a revision with the completed usage;
- GenAI events sent as OTLP logs (``gen_ai.*.message`` / ``gen_ai.choice``) are stored as
  ``events`` records of their span (joined by trace and span id) and give an LLM span without
  content attributes its messages;
- a tool span completes the model's call it executed, matched by tool-call id, else by tool name
  and equal input (Traceloop's ``{"args": [], "kwargs": {...}}`` compared by its kwargs), else
  the oldest call of that tool still without output; it never adds a second call (only a tool
  that no call of the conversation asked for is added). A call without result yet is
  ``pending`` with ``output: null``;
- every snapshot records ``usage`` (input/output/cache tokens from ``gen_ai.usage.*``,
  ``latency_ms`` from the span's duration); "tool: ..." snapshots record none.

Placement does not depend on arrival order. A span waits (stays pending) while an ancestor it
names is not known yet, and an LLM span without any content waits for its events or its twin;
both are processed, in start order, as soon as a later batch of the trace completes what they
wait for (with ``Traceloop.init(disable_batch=True)`` children are exported before their
parents, so the whole trace is placed when its root arrives, exactly as with batching). A span
waits at most ``KONTEX_SPAN_GRACE_SECONDS`` (default 30) after it was received: the worker
queues a delayed retry of its trace (``retry_traces``, after the grace period), and that retry,
or any later batch of the trace, processes it as it is (a span whose parent never comes lands
in the trace's own task).

Ids of tasks and snapshots made from spans derive from (account, trace, span), so a
redelivered or re-exported span meets a ``Conflict`` and creates nothing twice.

A queue batch takes a bounded number of units of work (transactions), however many spans it
holds: the traces it touches read in one (spans and links), the external session names resolved
in one (and, for a new name, that session made), then one unit with the batch's new spans, its
missing tasks, every snapshot (``snapshots.seal_all``) and the done marks of spans stored
before; on PostgreSQL that last unit is two round trips (docs/design.md, "The unit of work").
A batch that stored a new span pending reads its trace once more after that commit
(``process_traces``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, cast

from kontex.domain.errors import NotFound
from kontex.domain.models import (
    ContextBundle,
    SnapshotSource,
    Task,
    TaskStatus,
    ToolCall,
    Usage,
)
from kontex.ids import derived_id
from kontex.otlp import mapping
from kontex.otlp.span import SPANS_QUEUE, StoredSpan
from kontex.otlp.span import body as span_body
from kontex.otlp.span import body_of_text as span_body_of_text
from kontex.otlp.span import read_message as read_message
from kontex.ports import Queue
from kontex.services import pricing, sessions, snapshots
from kontex.services.conversation import conversation_tool_calls
from kontex.services.deps import Deps

log = logging.getLogger("kontex.spans")

SpanKey = tuple[str, str, str]  # account_id, trace_id, span_id


def store_batch(
    deps: Deps,
    messages: Sequence[dict[str, Any]],
    waiting: list[tuple[str, str]] | None = None,
) -> int:
    """Queued span messages (a whole queue batch): store their spans, then process each trace
    they touch once. Returns the snapshots made; the (account, trace) pairs with spans left
    waiting are appended to ``waiting`` (to process again once the grace period is over).

    A message is ``{"account_id", "session_id", "spans": [...]}`` from ingest, or
    ``{"account_id", "retry_traces": [...]}``: the worker's own delayed retry of waiting spans."""
    spans: list[tuple[str, dict[str, Any]]] = []
    texts: dict[SpanKey, str] = {}  # the stored bodies taken from the messages' text
    retries: list[tuple[str, str]] = []
    received = deps.clock().timestamp()
    for message in messages:
        account_id = str(message["account_id"])
        retries += [(account_id, str(t)) for t in message.get("retry_traces", [])]
        header = message.get("session_id")
        named = message.get("session_name")  # a name in the header: resolved as span hints are
        given = message.get("spans", [])
        spans += [
            (
                account_id,
                {
                    **span,
                    "kind": mapping.kind_of(span),
                    "header_session_id": header,
                    **({"header_session_name": named} if named else {}),
                    "received_at": received,
                },
            )
            for span in given
        ]
        span_texts = message.get("span_texts")  # (read_message: as ingest wrote each span)
        if span_texts is not None and len(span_texts) == len(given):
            for span, text in zip(given, span_texts, strict=True):
                key = (account_id, span["trace_id"], span["span_id"])
                texts.setdefault(key, span_body_of_text(text, received, named))
    if not spans and not retries:
        return 0
    keys = [(account_id, span["trace_id"]) for account_id, span in spans] + retries
    return process_traces(deps, keys, waiting, spans, texts)


def process_trace(deps: Deps, account_id: str, trace_id: str) -> int:
    """Process the trace's pending spans that resolve to a session; returns snapshots made."""
    return process_traces(deps, [(account_id, trace_id)])


def retry_later(deps: Deps, queue: Queue, waiting: Sequence[tuple[str, str]]) -> None:
    """Queue a retry of the traces whose spans wait (for an ancestor, their events or their
    twin), delivered when the grace period is over. Best effort: the spans are stored, and any
    later batch of their trace processes them too."""
    if not waiting:
        return
    bodies = [json.dumps(m) for m in retry_messages(waiting)]
    try:
        queue.send(SPANS_QUEUE, bodies, delay_seconds=int(deps.span_grace_seconds) + 1)
    except Exception:
        log.exception("could not queue the retry of %d waiting traces", len(waiting))


def retry_messages(waiting: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The delayed-retry messages for traces with waiting spans, one per account."""
    by_account: dict[str, list[str]] = {}
    for account_id, trace_id in dict.fromkeys(waiting):
        by_account.setdefault(account_id, []).append(trace_id)
    return [{"account_id": a, "retry_traces": t} for a, t in by_account.items()]


def process_traces(
    deps: Deps,
    keys: Sequence[tuple[str, str]],
    waiting: list[tuple[str, str]] | None = None,
    new: Sequence[tuple[str, dict[str, Any]]] = (),
    texts: dict[SpanKey, str] | None = None,
) -> int:
    """Process the pending spans of each (account_id, trace_id), with the ``new`` spans of
    the batch (account_id, span) among them; returns snapshots made. ``texts``: the stored
    body of new spans whose message gave their JSON text (``store_batch``), by
    (account_id, trace_id, span_id); the others are encoded.

    The new spans are stored in the unit that makes the batch's snapshots (those processed
    already marked done, so no row is written twice); when processing fails they are stored
    pending on their own before the error goes up, so nothing received is lost.

    A trace where a new span was stored pending is read again once that unit is committed:
    another worker may have taken what it waits for (its events, its ancestor) at the same
    time, each reading the trace before the other's commit. Of two such workers the later to
    commit finds both halves then, so neither waits for the delayed retry."""
    keys = list(dict.fromkeys(keys))
    with deps.store.unit(write=False) as uow:
        found = uow.spans.of_traces(keys)
        linked = uow.traces.sessions_of(keys)
    fresh = _fresh(found, new)
    first: list[tuple[str, str]] = []
    try:
        made = _process(deps, keys, found, linked, fresh, first, texts or {})
    except BaseException:
        if fresh:  # kept pending: a later batch of the trace (or a retry) processes them
            rows = list(fresh.values())
            with deps.store.unit() as uow:
                uow.spans.add(rows, deps.clock(), bodies=_bodies(fresh, texts or {}))
        raise
    unsettled = _stored_pending(found, fresh)
    still = first
    if unsettled:
        again: list[tuple[str, str]] = []
        try:  # no new spans: read again only once
            made += process_traces(deps, unsettled, again)
        except Exception:  # the batch is written: its waiting spans wait for the retry, as before
            log.exception("could not read %d traces again after their batch", len(unsettled))
        else:  # what the second reading still finds waiting replaces the first's
            still = [key for key in first if key not in unsettled] + again
    if waiting is not None:
        waiting += still
    return made


def _stored_pending(
    found: dict[tuple[str, str], list[dict[str, Any]]],
    fresh: dict[SpanKey, tuple[str, dict[str, Any]]],
) -> list[tuple[str, str]]:
    """The traces where a span of ``fresh`` was stored pending (not processed)."""
    return [
        (account_id, trace_id)
        for (account_id, trace_id), rows in found.items()
        if any(not row["done"] and (account_id, trace_id, row["span_id"]) in fresh for row in rows)
    ]


def _bodies(
    fresh: dict[SpanKey, tuple[str, dict[str, Any]]], texts: dict[SpanKey, str]
) -> list[str]:
    """The stored bodies of the new spans, in ``fresh`` 's order: the message's text of each
    where it gave one, else the span encoded (before the write transaction)."""
    return [texts.get(key) or span_body(span) for key, (_, span) in fresh.items()]


def _fresh(
    found: dict[tuple[str, str], list[dict[str, Any]]],
    new: Sequence[tuple[str, dict[str, Any]]],
) -> dict[SpanKey, tuple[str, dict[str, Any]]]:
    """The new spans not stored yet (the first of each, as the store keeps the first), added to
    ``found`` pending, each trace's spans in start order (as the store reads them)."""
    stored = {(a, t, s["span_id"]) for (a, t), rows in found.items() for s in rows}
    fresh: dict[SpanKey, tuple[str, dict[str, Any]]] = {}
    for account_id, span in new:
        key = (account_id, span["trace_id"], span["span_id"])
        if key not in stored and key not in fresh:
            fresh[key] = (account_id, span)
    by_trace: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for (account_id, trace_id, _), (_, span) in fresh.items():  # one pass, not one per trace
        by_trace.setdefault((account_id, trace_id), []).append({**span, "done": False})
    for trace, added in by_trace.items():
        found[trace] += added
        found[trace].sort(key=lambda s: (s["start_time_unix_nano"], s["span_id"]))
    return fresh


def _process(
    deps: Deps,
    keys: list[tuple[str, str]],
    found: dict[tuple[str, str], list[dict[str, Any]]],
    linked: dict[tuple[str, str], str],
    fresh: dict[SpanKey, tuple[str, dict[str, Any]]],
    waiting: list[tuple[str, str]] | None,
    texts: dict[SpanKey, str],
) -> int:
    batch = _Batch(deps)
    traces = [_Trace(batch, a, t, found[(a, t)], linked.get((a, t))) for a, t in keys]
    batch.resolve_names(traces)
    work: list[tuple[_Trace, StoredSpan, str]] = []
    now = deps.clock().timestamp()
    for trace in traces:
        for span in trace.spans:
            session_id = None if span["done"] else trace.session_of(span)
            if session_id is None:
                continue  # done, or kept pending until the trace is linked
            if trace.waits(span, now):
                if waiting is not None:
                    waiting.append((trace.account_id, trace.trace_id))
                continue  # an ancestor, its events or its twin may still come
            if span["kind"] == "task":
                trace.task_of_task_span(span, session_id)
            elif span["kind"] in ("llm", "tool"):
                trace.task_for(span, session_id)
            work.append((trace, span, session_id))
    for trace, span, session_id in work:
        if span["kind"] == "llm" and trace.content(span):
            trace.snapshot_llm(span, session_id)
        elif span["kind"] == "llm":
            trace.complete_usage(span)  # a late usage-only span: a revision of its twin's
        elif span["kind"] == "tool":
            trace.snapshot_tool(span, session_id)
        span["done"] = True
    processed = [(t.account_id, t.trace_id, s["span_id"]) for t, s, _ in work]
    if not work and not batch.tasks:
        if fresh:
            rows = list(fresh.values())
            with deps.store.unit() as uow:
                uow.spans.add(rows, deps.clock(), bodies=_bodies(fresh, texts))
        return 0
    prepared = snapshots.prepare(deps, batch.snapshots)
    tasks = list(batch.tasks.values())
    done_now = {k for k in processed if k in fresh}  # stored done: no second write of the row
    done = [k for k in processed if k not in fresh]  # stored pending by an earlier batch

    rows = list(fresh.values())
    bodies = _bodies(fresh, texts)  # before the write transaction

    def attempt() -> int:
        # the batch's new spans, tasks, snapshots and done marks: one unit of work, one
        # commit, and the snapshots' events handed over together after it
        with deps.store.unit() as uow:
            if fresh:
                uow.spans.add(rows, deps.clock(), done=done_now, bodies=bodies)
            made = snapshots.seal_all(uow, prepared, deps.clock, tasks)
            if done:
                uow.spans.mark_done(done)
        return len(made)

    return snapshots.retrying(deps, None, attempt)


class _Batch:
    """What the traces of one batch share: sessions by name, the tasks to make, the snapshots
    to seal and the last bundle of each task (so a tool span after an LLM span reads nothing
    back)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.sessions: dict[tuple[str, str], str] = {}
        self.tasks: dict[str, Task] = {}
        self.latest: dict[str, ContextBundle] = {}
        self.snapshots: list[snapshots.NewSnapshot] = []  # sealed together, in order

    def resolve_names(self, traces: Sequence[_Trace]) -> None:
        names = list(
            dict.fromkeys(
                (t.account_id, hint)
                for t in traces
                for s in t.spans
                if not s["done"] and not s.get("header_session_id")
                for hint in [s.get("header_session_name") or mapping.session_hint(s)]
                if hint
            )
        )
        if not names:
            return
        with self.deps.store.unit(write=False) as uow:
            self.sessions = uow.traces.sessions_named(names)
        for account_id, name in names:
            if (account_id, name) not in self.sessions:
                self.sessions[(account_id, name)] = self._new_session(account_id, name)

    def _new_session(self, account_id: str, name: str) -> str:
        metadata = {"source": "openllmetry", "external_id": name}
        return sessions.create_aliased_session(self.deps, account_id, name[:200], name, metadata)

    def task(self, task: Task) -> str:
        """A task of the batch (made with the batch's other tasks, once); returns its id."""
        self.tasks.setdefault(task.id, task)
        return task.id


class _Trace:
    def __init__(
        self,
        batch: _Batch,
        account_id: str,
        trace_id: str,
        spans: list[dict[str, Any]],
        linked: str | None,
    ) -> None:
        self.batch = batch
        self.deps = batch.deps
        self.account_id = account_id
        self.trace_id = trace_id
        self.spans = cast(list[StoredSpan], spans)  # the bodies the store was given, read back
        self.by_id = {s["span_id"]: s for s in self.spans}
        self.linked = linked
        self.calls: dict[str, mapping.LlmCall] = {}
        self.tools: dict[str, ToolCall] = {}  # tool span id -> its call (read once a trace)
        self.task_ids: dict[tuple[str, str], str] = {}  # (task span id or "", session) -> task
        self.done_before = {s["span_id"] for s in self.spans if s["done"]}  # by earlier batches

    # -- what a span waits for ------------------------------------------------------------

    def waits(self, span: StoredSpan, now: float) -> bool:
        if now - float(span.get("received_at") or now) >= self.deps.span_grace_seconds:
            return False
        if not self._ancestors_known(span):
            return True
        if span["kind"] == "llm" and not self.content(span):
            return not self._twins(span, with_content=True)  # its events or its twin may come
        return False

    def _ancestors_known(self, span: StoredSpan) -> bool:
        seen = set()
        parent_id = span.get("parent_span_id")
        while parent_id and parent_id not in seen:
            seen.add(parent_id)
            parent = self.by_id.get(parent_id)
            if parent is None:
                return False
            parent_id = parent.get("parent_span_id")
        return True

    def call(self, span: StoredSpan) -> mapping.LlmCall:
        """The span's LLM call; its messages from its GenAI events when its attributes have
        none."""
        if span["span_id"] not in self.calls:
            call = mapping.llm_call(span)
            if not call.messages:
                events = [
                    e
                    for s in self.spans
                    if s["kind"] == "events" and s.get("parent_span_id") == span["span_id"]
                    for e in s.get("events", [])
                ]
                if events:
                    call.messages, call.reasoning = mapping.event_messages(events)
            self.calls[span["span_id"]] = call
        return self.calls[span["span_id"]]

    def tool_call(self, span: StoredSpan) -> ToolCall:
        """The tool span's execution (asked by every LLM span after it and by its own
        snapshot)."""
        if span["span_id"] not in self.tools:
            self.tools[span["span_id"]] = mapping.tool_execution(span)
        return self.tools[span["span_id"]]

    def content(self, span: StoredSpan) -> bool:
        return bool(self.call(span).messages)

    def _twins(self, span: StoredSpan, *, with_content: bool) -> list[StoredSpan]:
        """LLM spans for the same call: parent, child or sibling, overlapping in time, with
        content (``with_content``) or with usage and no content."""
        parent = span.get("parent_span_id")
        found: list[StoredSpan] = []
        for other in self.spans:
            if other is span or other["kind"] in ("task", "tool", "events"):
                continue
            related = (
                other.get("parent_span_id") == span["span_id"]
                or (parent and other["span_id"] == parent)
                or (parent and other.get("parent_span_id") == parent)
            )
            overlaps = (
                other["start_time_unix_nano"] <= span["end_time_unix_nano"]
                and span["start_time_unix_nano"] <= other["end_time_unix_nano"]
            )
            if not (related and overlaps):
                continue
            has_content = other["kind"] == "llm" and self.content(other)
            usage_only = not has_content and any(
                k.startswith("gen_ai.usage.") for k in other["attributes"]
            )
            if has_content if with_content else usage_only:
                found.append(other)
        return found

    def usage(self, span: StoredSpan) -> dict[str, Any] | None:
        """The call's usage: the span's own, completed by its usage-only twins."""
        found = mapping.usage(span)
        for twin in self._twins(span, with_content=False):
            for key, value in mapping.usage(twin).items():
                found.setdefault(key, value)
        return found or None

    # -- sessions -------------------------------------------------------------------------

    def session_of(self, span: StoredSpan) -> str | None:
        if span["kind"] == "events":  # GenAI events belong where their span does
            owner = self.by_id.get(span.get("events_of") or "")
            return self.session_of(owner) if owner else None
        header = span.get("header_session_id")
        if header:
            return str(header)
        hint = span.get("header_session_name") or mapping.session_hint(span)
        if hint:
            return self.batch.sessions[(self.account_id, hint)]
        return self.linked

    # -- tasks ----------------------------------------------------------------------------

    def _task_ancestor(self, span: StoredSpan) -> StoredSpan | None:
        parent = self.by_id.get(span.get("parent_span_id") or "")
        while parent is not None:
            if parent["kind"] == "task":
                return parent
            parent = self.by_id.get(parent.get("parent_span_id") or "")
        return None

    def task_of_task_span(self, span: StoredSpan, session_id: str) -> str:
        known = self.task_ids.get((span["span_id"], session_id))
        if known is not None:  # made once per trace: each of its spans asks for it
            return known
        ancestor = self._task_ancestor(span)
        parent = self.task_of_task_span(ancestor, session_id) if ancestor else None
        status = TaskStatus.FAILED if span.get("status") == "error" else TaskStatus.COMPLETED
        task_id = derived_id("task", self.account_id, session_id, self.trace_id, span["span_id"])
        name = mapping.task_name(span)
        self.task_ids[(span["span_id"], session_id)] = self.batch.task(
            sessions.derived_task(
                self.batch.deps, self.account_id, task_id, session_id, name, parent, status
            )
        )
        return task_id

    def task_for(self, span: StoredSpan, session_id: str) -> str:
        ancestor = self._task_ancestor(span)
        if ancestor is not None:
            return self.task_of_task_span(ancestor, session_id)
        known = self.task_ids.get(("", session_id))
        if known is not None:
            return known
        roots = [s for s in self.spans if not s.get("parent_span_id")]
        name = f"trace {roots[0]['name'] if roots else self.trace_id[:8]}"[:200]
        task_id = derived_id("task", self.account_id, session_id, self.trace_id)
        self.task_ids[("", session_id)] = self.batch.task(
            sessions.derived_task(self.batch.deps, self.account_id, task_id, session_id, name)
        )
        return task_id

    # -- snapshots ------------------------------------------------------------------------

    def _tool_spans_before(self, span: StoredSpan) -> list[ToolCall]:
        """Tool spans of the LLM span's task that ended before it (another task's tools are
        not part of this conversation)."""
        task = self._task_ancestor(span)
        return [
            self.tool_call(s)
            for s in self.spans
            if s["kind"] == "tool"
            and s["end_time_unix_nano"] <= span["end_time_unix_nano"]
            and self._task_ancestor(s) is task
        ]

    def snapshot_llm(self, span: StoredSpan, session_id: str) -> bool:
        call = self.call(span)
        at = mapping.span_time(span["end_time_unix_nano"])
        tool_calls = _merge_calls(
            conversation_tool_calls(call.messages, at),
            self._tool_spans_before(span),
        )
        bundle = ContextBundle(
            messages=call.messages,
            tool_calls=tool_calls,
            reasoning="\n\n".join(call.reasoning) if call.reasoning else None,
            model=call.model,
            token_total=call.token_total,
            source=SnapshotSource.OPENLLMETRY,
            captured_at=at,
            usage=self._usage_of_call(span),
        )
        return self._write(span, session_id, span["name"] or "llm call", bundle)

    def _usage_of_call(self, span: StoredSpan) -> Usage | None:
        """The usage of the LLM span's call (its own, completed by its twins), priced."""
        call = self.call(span)
        return pricing.priced(
            self.usage(span), call.model, pricing.price_table(self.deps.prices_file)
        )

    def complete_usage(self, span: StoredSpan) -> None:
        """A usage-only span (the SDK's own) whose twin with content was made a snapshot by an
        earlier batch: the twin's usage, counted again with this span, becomes a revision of
        that snapshot (as if the span had come in time). A twin placed in this batch counts it
        already; one still waiting will."""
        for twin in self._twins(span, with_content=True):
            if twin["span_id"] not in self.done_before:
                continue
            snapshot_id = derived_id("snap", self.account_id, self.trace_id, twin["span_id"])
            try:
                snapshots.revise_usage(
                    self.deps, self.account_id, snapshot_id, self._usage_of_call(twin)
                )
            except NotFound:
                continue  # the twin's snapshot is gone (its session purged since)

    def snapshot_tool(self, span: StoredSpan, session_id: str) -> bool:
        task_id = self.task_for(span, session_id)
        previous = self.batch.latest.get(task_id)
        if previous is None:
            try:
                previous = snapshots.read_latest(self.deps, self.account_id, task_id)[1]
            except NotFound:
                return False  # merged into the next LLM snapshot of the trace
        call = self.tool_call(span)
        bundle = previous.model_copy(
            update={
                "tool_calls": _merge_calls(previous.tool_calls, [call]),
                "source": SnapshotSource.OPENLLMETRY,
                "captured_at": mapping.span_time(span["end_time_unix_nano"]),
                "usage": None,  # not an LLM call: usage is counted on the call's snapshot
            }
        )
        return self._write(span, session_id, f"tool: {call.tool}", bundle)

    def _write(self, span: StoredSpan, session_id: str, label: str, bundle: ContextBundle) -> bool:
        """Add the span's snapshot to the batch's (sealed together, ``process_traces``)."""
        task_id = self.task_for(span, session_id)
        snapshot_id = derived_id("snap", self.account_id, self.trace_id, span["span_id"])
        self.batch.snapshots.append(
            snapshots.NewSnapshot(
                self.account_id, session_id, task_id, label[:500], bundle, snapshot_id
            )
        )
        self.batch.latest[task_id] = bundle
        return True


def _merge_calls(calls: list[ToolCall], executed: list[ToolCall]) -> list[ToolCall]:
    """Conversation tool calls completed by the executed ones (tool spans).

    An execution matches the call with its id; failing that (Traceloop tool spans do not carry
    the model's tool-call id), a call of the same tool with equal input; failing that, the
    oldest call of that tool still without output. An execution never adds a second call: one
    that matches nothing is added only when no call of its tool is in the conversation. Calls
    still without output are ``pending``.
    """
    merged = list(calls)
    used: set[int] = set()
    added: list[ToolCall] = []
    for run in executed:
        index = None
        for rule in ("id", "input", "open"):
            index = next(
                (i for i, c in enumerate(merged) if i not in used and _matches(rule, c, run)),
                None,
            )
            if index is not None:
                break
        if index is None:
            if not any(c.tool == run.tool for c in merged + added):
                added.append(run)
            continue
        used.add(index)
        call = merged[index]
        output = call.output if call.output is not None else run.output
        merged[index] = call.model_copy(
            update={
                "output": output,
                "status": "error"
                if "error" in (call.status, run.status)
                else "pending"
                if output is None
                else "success",
                "timestamp": run.timestamp or call.timestamp,
            }
        )
    return merged + added


def _matches(rule: str, call: ToolCall, run: ToolCall) -> bool:
    if rule == "id":
        return call.id == run.id
    if rule == "input":
        return call.tool == run.tool and call.input == run.input
    return call.tool == run.tool and call.output is None
