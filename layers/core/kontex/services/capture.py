"""Proxy captures: decide from the trigger, then snapshot the conversation (idempotent).

Triggers (``X-Kontex-Snapshot-Trigger``): ``always`` (the default: storage is deduplicated,
so a snapshot per call stores only its new messages), ``every_n_turns`` (when the number of
assistant turns, the reply included, is a multiple of N, default 5), ``on_tool_end`` (the reply
asks for a tool), ``token_threshold`` (input + output tokens of the call >= N, default
50,000).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kontex.domain.captures import (  # noqa: F401  (the job and triggers, re-exported)
    CAPTURE_QUEUE,
    DEFAULT_N,
    TRIGGERS,
    CaptureJob,
    parse_trigger,
)
from kontex.domain.errors import Conflict
from kontex.domain.models import ContextBundle, Message, Snapshot, SnapshotSource, Task
from kontex.ids import derived_id
from kontex.services import pricing, sessions, snapshots
from kontex.services.conversation import conversation_tool_calls
from kontex.services.deps import Deps


def _usage_tokens(reply: dict[str, Any]) -> tuple[int, int]:
    usage = reply.get("usage") or {}
    prompt = sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return prompt, int(usage.get("output_tokens") or 0)


def assistant_turns(job: CaptureJob) -> int:
    earlier = sum(1 for m in job.request.get("messages") or [] if m.get("role") == "assistant")
    return earlier + 1


def should_snapshot(job: CaptureJob) -> bool:
    if job.trigger == "always":
        return True
    if job.trigger == "on_tool_end":
        return any(b.get("type") == "tool_use" for b in job.reply.get("content") or [])
    if job.trigger == "token_threshold":
        return sum(_usage_tokens(job.reply)) >= job.n
    return assistant_turns(job) % job.n == 0


def bundle_of(job: CaptureJob, prices: dict[str, dict[str, float]] | None = None) -> ContextBundle:
    messages: list[Message] = []
    system = job.request.get("system")
    if system:
        messages.append(Message(role="system", content=system))
    for raw in job.request.get("messages") or []:
        messages.append(Message.model_validate(raw))
    blocks = list(job.reply.get("content") or [])
    thoughts = [b.get("thinking", "") for b in blocks if b.get("type") == "thinking"]
    shown = [b for b in blocks if b.get("type") not in ("thinking", "redacted_thinking")]
    messages.append(Message(role="assistant", content=shown))
    prompt, output = _usage_tokens(job.reply)
    model = job.reply.get("model") or job.request.get("model")
    usage = pricing.anthropic_usage(
        job.reply.get("usage") or {}, model, job.latency_ms, prices or pricing.price_table()
    )
    return ContextBundle(
        messages=messages,
        tool_calls=conversation_tool_calls(messages, None),
        reasoning="\n\n".join(thoughts) if thoughts else None,
        model=model,
        token_total=prompt + output if (prompt or output) else None,
        source=SnapshotSource.PROXY,
        usage=usage,
    )


def _proxy_task(deps: Deps, job: CaptureJob) -> Task:
    """The session's ``proxy`` task, where calls without ``X-Kontex-Task-Id`` go."""
    return sessions.derived_task(
        deps,
        job.account_id,
        derived_id("task", job.account_id, job.session_id, "proxy"),
        job.session_id,
        "proxy",
    )


def _label(bundle: ContextBundle, job: CaptureJob) -> str:
    return f"proxy: {bundle.model or 'model'} turn {assistant_turns(job)}"


def capture_many(deps: Deps, jobs: Sequence[CaptureJob]) -> int:
    """A queue batch of jobs, as ``capture`` writes each, in one unit of work: their sessions
    read together, the tasks they need made, their snapshots sealed in order, their events
    handed over in one call after the one commit. A redelivered job writes nothing. Returns
    the snapshots made. Any failure fails the batch (the worker then takes its jobs one by
    one, so a bad job fails alone)."""
    firing = [job for job in jobs if should_snapshot(job)]
    if not firing:
        return 0
    with deps.store.unit(write=False) as uow:  # each session named read once
        alive = {
            named
            for named in dict.fromkeys((job.account_id, job.session_id) for job in firing)
            if uow.sessions.get(*named) is not None
        }
    prices = pricing.price_table(deps.prices_file)
    tasks: dict[str, Task] = {}
    new = []
    for job in firing:
        if (job.account_id, job.session_id) not in alive:
            continue  # the session was purged after the call: nothing to attach it to
        task_id = job.task_id
        if task_id is None:
            task = _proxy_task(deps, job)
            task_id = tasks.setdefault(task.id, task).id
        bundle = bundle_of(job, prices)
        snapshot_id = derived_id("snap", job.account_id, job.id)
        new.append(
            snapshots.NewSnapshot(
                job.account_id, job.session_id, task_id, _label(bundle, job), bundle, snapshot_id
            )
        )
    prepared = snapshots.prepare(deps, new)

    def attempt() -> int:
        with deps.store.unit() as uow:
            return len(snapshots.seal_all(uow, prepared, deps.clock, list(tasks.values())))

    return snapshots.retrying(deps, None, attempt)


def capture(deps: Deps, job: CaptureJob) -> Snapshot | None:
    """Write the job's snapshot if its trigger fires; a redelivered job writes nothing."""
    if not should_snapshot(job):
        return None
    with deps.store.unit(write=False) as uow:
        session = uow.sessions.get(job.account_id, job.session_id)
    if session is None:
        return None  # the session was purged after the call: nothing to attach it to
    task_id = job.task_id or sessions.ensure_task(deps, _proxy_task(deps, job))
    bundle = bundle_of(job, pricing.price_table(deps.prices_file))
    label = _label(bundle, job)
    try:
        return snapshots.create_snapshot(
            deps,
            job.account_id,
            task_id,
            label,
            bundle,
            snapshot_id=derived_id("snap", job.account_id, job.id),
        )
    except Conflict:
        return None
