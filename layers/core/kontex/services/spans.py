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
  conversation (results matched by id) merged with tool spans of the trace that ended before
  it, the model and the usage (input + output tokens as ``token_total``);
- a tool span becomes a tool call: when its task already has a snapshot, a new snapshot
  "tool: <name>" holds that snapshot's content with the call merged in (by id); otherwise it
  waits in the trace and is merged into the next LLM snapshot.

Ids of tasks and snapshots made from spans derive from (account, trace, span), so a
redelivered or re-exported span meets a ``Conflict`` and creates nothing twice.
"""

from __future__ import annotations

from typing import Any

from kontex.domain.errors import Conflict, NotFound
from kontex.domain.models import ContextBundle, Session, SnapshotSource, TaskStatus, ToolCall
from kontex.ids import derived_id
from kontex.otlp import mapping
from kontex.services import sessions, snapshots
from kontex.services.conversation import conversation_tool_calls
from kontex.services.deps import Deps


def store_message(deps: Deps, message: dict[str, Any]) -> int:
    """One queued batch of spans: store them, then process each trace they touch."""
    account_id = str(message["account_id"])
    header = message.get("session_id")
    rows = [
        {**span, "kind": mapping.kind_of(span), "header_session_id": header}
        for span in message["spans"]
    ]
    deps.store.insert_spans(account_id, rows, deps.clock())
    made = 0
    for trace_id in dict.fromkeys(r["trace_id"] for r in rows):
        made += process_trace(deps, account_id, trace_id)
    return made


class _Trace:
    def __init__(self, deps: Deps, account_id: str, trace_id: str) -> None:
        self.deps = deps
        self.account_id = account_id
        self.trace_id = trace_id
        self.spans = deps.store.trace_spans(account_id, trace_id)
        self.by_id = {s["span_id"]: s for s in self.spans}
        self.linked = deps.store.session_for_trace(account_id, trace_id)

    # -- sessions -------------------------------------------------------------------------

    def session_of(self, span: dict[str, Any]) -> str | None:
        header = span.get("header_session_id")
        if header:
            return str(header)
        hint = mapping.session_hint(span)
        if hint:
            return self._session_named(hint)
        return self.linked

    def _session_named(self, hint: str) -> str:
        try:
            return sessions.get_session(self.deps, self.account_id, hint).id
        except NotFound:
            pass
        found = self.deps.store.session_for_alias(self.account_id, hint)
        if found:
            return found
        made: Session = sessions.create_session(
            self.deps,
            self.account_id,
            hint[:200],
            metadata={"source": "openllmetry", "external_id": hint},
        )
        return self.deps.store.add_alias(self.account_id, hint, made.id)

    # -- tasks ----------------------------------------------------------------------------

    def _task_ancestor(self, span: dict[str, Any]) -> dict[str, Any] | None:
        parent = self.by_id.get(span.get("parent_span_id") or "")
        while parent is not None:
            if parent["kind"] == "task":
                return parent
            parent = self.by_id.get(parent.get("parent_span_id") or "")
        return None

    def task_of_task_span(self, span: dict[str, Any], session_id: str) -> str:
        ancestor = self._task_ancestor(span)
        parent = self.task_of_task_span(ancestor, session_id) if ancestor else None
        status = TaskStatus.FAILED if span.get("status") == "error" else TaskStatus.COMPLETED
        task_id = derived_id("task", self.account_id, session_id, self.trace_id, span["span_id"])
        return sessions.ensure_task(
            self.deps, self.account_id, task_id, session_id, mapping.task_name(span), parent, status
        )

    def task_for(self, span: dict[str, Any], session_id: str) -> str:
        ancestor = self._task_ancestor(span)
        if ancestor is not None:
            return self.task_of_task_span(ancestor, session_id)
        roots = [s for s in self.spans if not s.get("parent_span_id")]
        name = f"trace {roots[0]['name'] if roots else self.trace_id[:8]}"[:200]
        task_id = derived_id("task", self.account_id, session_id, self.trace_id)
        return sessions.ensure_task(self.deps, self.account_id, task_id, session_id, name)

    # -- snapshots ------------------------------------------------------------------------

    def _tool_spans_before(self, end_ns: int) -> list[ToolCall]:
        return [
            mapping.tool_execution(s)
            for s in self.spans
            if s["kind"] == "tool" and s["end_time_unix_nano"] <= end_ns
        ]

    def snapshot_llm(self, span: dict[str, Any], session_id: str) -> bool:
        call = mapping.llm_call(span)
        at = mapping.span_time(span["end_time_unix_nano"])
        tool_calls = _merge_calls(
            conversation_tool_calls(call.messages, at),
            self._tool_spans_before(span["end_time_unix_nano"]),
        )
        bundle = ContextBundle(
            messages=call.messages,
            tool_calls=tool_calls,
            reasoning="\n\n".join(call.reasoning) if call.reasoning else None,
            model=call.model,
            token_total=call.token_total,
            source=SnapshotSource.OPENLLMETRY,
            captured_at=at,
        )
        return self._write(span, session_id, span["name"] or "llm call", bundle)

    def snapshot_tool(self, span: dict[str, Any], session_id: str) -> bool:
        task_id = self.task_for(span, session_id)
        latest = self.deps.store.latest_snapshot(self.account_id, task_id)
        if latest is None:
            return False  # merged into the next LLM snapshot of the trace
        call = mapping.tool_execution(span)
        previous = snapshots.get_bundle(self.deps, self.account_id, latest.id)
        bundle = previous.model_copy(
            update={
                "tool_calls": _merge_calls(previous.tool_calls, [call]),
                "source": SnapshotSource.OPENLLMETRY,
                "captured_at": mapping.span_time(span["end_time_unix_nano"]),
            }
        )
        return self._write(span, session_id, f"tool: {call.tool}", bundle)

    def _write(
        self, span: dict[str, Any], session_id: str, label: str, bundle: ContextBundle
    ) -> bool:
        task_id = self.task_for(span, session_id)
        snapshot_id = derived_id("snap", self.account_id, self.trace_id, span["span_id"])
        try:
            snapshots.create_snapshot(
                self.deps, self.account_id, task_id, label[:500], bundle, snapshot_id=snapshot_id
            )
        except Conflict:
            return False  # a redelivery: the snapshot exists
        return True


def _merge_calls(calls: list[ToolCall], executed: list[ToolCall]) -> list[ToolCall]:
    """Conversation tool calls completed by the executed ones (tool spans).

    An execution matches the call with its id; failing that (Traceloop tool spans do not
    carry the model's tool-call id), the first call of the same tool still without output.
    Executions that match nothing are appended.
    """
    merged = list(calls)
    unmatched = []
    for run in executed:
        index = next((i for i, c in enumerate(merged) if c.id == run.id), None)
        if index is None:
            index = next(
                (i for i, c in enumerate(merged) if c.tool == run.tool and c.output is None), None
            )
        if index is None:
            unmatched.append(run)
            continue
        call = merged[index]
        merged[index] = call.model_copy(
            update={
                "output": call.output if call.output is not None else run.output,
                "status": "error" if "error" in (call.status, run.status) else "success",
                "timestamp": run.timestamp or call.timestamp,
            }
        )
    return merged + unmatched


def process_trace(deps: Deps, account_id: str, trace_id: str) -> int:
    """Process the trace's pending spans that resolve to a session; returns snapshots made."""
    trace = _Trace(deps, account_id, trace_id)
    made = 0
    for span in trace.spans:
        if span["done"]:
            continue
        session_id = trace.session_of(span)
        if session_id is None:
            continue  # kept, pending, until the trace is linked
        if span["kind"] == "task":
            trace.task_of_task_span(span, session_id)
        elif span["kind"] == "llm":
            made += trace.snapshot_llm(span, session_id)
        elif span["kind"] == "tool":
            made += trace.snapshot_tool(span, session_id)
        deps.store.mark_span_done(account_id, trace_id, span["span_id"])
        span["done"] = True
    return made
