"""Read-side views of a session: diff, timeline, graph, stats, usage."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from kontex.domain.errors import NotFound
from kontex.domain.models import ToolCall
from kontex.ports import UnitOfWork
from kontex.services import pricing
from kontex.services.deps import Deps
from kontex.services.sessions import get_session
from kontex.services.snapshots import get_bundle, get_snapshot


def _match_tool_calls(old: list[ToolCall], new: list[ToolCall]) -> tuple[list[int], list[int]]:
    """Indexes of ``new`` not in ``old`` (added) and of ``old`` not in ``new`` (removed).

    Calls match by id; calls whose id is on one side only match by tool name in order.
    """
    old_ids = {c.id for c in old}
    new_ids = {c.id for c in new}
    added = [i for i, c in enumerate(new) if c.id not in old_ids]
    removed = [i for i, c in enumerate(old) if c.id not in new_ids]
    # the leftovers: pair them by tool, in order of appearance
    pending: dict[str, list[int]] = defaultdict(list)
    for i in removed:
        pending[old[i].tool].append(i)
    still_added = []
    for i in added:
        queue = pending.get(new[i].tool)
        if queue:
            queue.pop(0)
        else:
            still_added.append(i)
    still_removed = sorted(i for queue in pending.values() for i in queue)
    return still_added, still_removed


def diff(deps: Deps, account_id: str, session_id: str, from_id: str, to_id: str) -> dict[str, Any]:
    get_session(deps, account_id, session_id)
    snaps = [get_snapshot(deps, account_id, sid) for sid in (from_id, to_id)]
    for snapshot in snaps:  # looked up in the session: another session's is not there
        if snapshot.session_id != session_id:
            raise NotFound(f"snapshot {snapshot.id} not found in session {session_id}")
    a, b = (get_bundle(deps, account_id, s.id) for s in snaps)
    prefix = 0
    for left, right in zip(a.messages, b.messages, strict=False):
        if left != right:
            break
        prefix += 1
    added, removed = _match_tool_calls(a.tool_calls, b.tool_calls)
    old_files = {f.path: f for f in a.files}
    new_files = {f.path: f for f in b.files}
    return {
        "from": from_id,
        "to": to_id,
        "messages": {
            "common_prefix": prefix,
            "added": [m.model_dump(mode="json") for m in b.messages[prefix:]],
            "removed": [m.model_dump(mode="json") for m in a.messages[prefix:]],
        },
        "tool_calls": {
            "added": [b.tool_calls[i].model_dump(mode="json") for i in added],
            "removed": [a.tool_calls[i].model_dump(mode="json") for i in removed],
        },
        "files": {
            "added": [p for p in new_files if p not in old_files],
            "removed": [p for p in old_files if p not in new_files],
            "modified": [
                p
                for p in new_files
                if p in old_files and new_files[p].content_hash != old_files[p].content_hash
            ],
        },
        "token_delta": snaps[1].token_total - snaps[0].token_total,
    }


def _all_snapshots(uow: UnitOfWork, account_id: str, session_id: str) -> list[Any]:
    out: list[Any] = []
    after: tuple[str, str] | None = None
    while True:
        batch = uow.snapshots.page(account_id, session_id, 500, after)
        out.extend(batch)
        if len(batch) < 500:
            return out
        after = (batch[-1].created_at.isoformat(), batch[-1].id)


def timeline(deps: Deps, account_id: str, session_id: str) -> list[dict[str, Any]]:
    """Every snapshot of the session, oldest first; ``token_delta`` is against its parent
    (the task's previous snapshot), or its whole total for a task's first snapshot;
    ``context_window`` is its model's, from the price table, when known."""
    get_session(deps, account_id, session_id)
    with deps.store.unit(write=False) as uow:
        names = {t.id: t.name for t in uow.tasks.of_session(account_id, session_id)}
        snaps = _all_snapshots(uow, account_id, session_id)
    totals = {s.id: s.token_total for s in snaps}
    table = pricing.price_table(deps.prices_file)
    return [
        {
            **s.model_dump(mode="json", exclude={"account_id", "bundle_hash"}),
            "task_name": names.get(s.task_id),
            "token_delta": s.token_total - totals.get(s.parent_snapshot_id or "", 0),
            "context_window": pricing.context_window(s.model, table),
        }
        for s in snaps
    ]


def graph(deps: Deps, account_id: str, session_id: str) -> dict[str, Any]:
    """The task tree as ReactFlow nodes and edges, laid out by depth (x) and order (y)."""
    get_session(deps, account_id, session_id)
    with deps.store.unit(write=False) as uow:
        tasks = uow.tasks.of_session(account_id, session_id)
        snaps = _all_snapshots(uow, account_id, session_id)
    count: dict[str, int] = defaultdict(int)
    latest: dict[str, int] = {}
    for s in snaps:  # oldest first: the last one seen is the latest
        count[s.task_id] += 1
        latest[s.task_id] = s.token_total
    by_id = {t.id: t for t in tasks}

    def depth(task_id: str) -> int:
        d, parent = 0, by_id[task_id].parent_task_id
        while parent and parent in by_id:
            d, parent = d + 1, by_id[parent].parent_task_id
        return d

    rows: dict[int, int] = defaultdict(int)
    nodes, edges = [], []
    for t in tasks:
        level = depth(t.id)
        nodes.append(
            {
                "id": t.id,
                "type": "default",
                "data": {
                    "label": t.name,
                    "status": t.status.value,
                    "token_total": latest.get(t.id, 0),
                    "snapshot_count": count[t.id],
                },
                "position": {"x": level * 280, "y": rows[level] * 120},
            }
        )
        rows[level] += 1
        if t.parent_task_id:
            edges.append(
                {"id": f"{t.parent_task_id}->{t.id}", "source": t.parent_task_id, "target": t.id}
            )
    return {"nodes": nodes, "edges": edges}


ACTIVITY_SLICES = 24


def _activity(uow: UnitOfWork, account_id: str, session_id: str, raw: dict[str, Any]) -> Any:
    """The session's snapshots per slice of its life (first to last snapshot, in
    ``ACTIVITY_SLICES`` equal slices): the dashboard's sparkline."""
    first, last, total = raw["first_snapshot_at"], raw["last_snapshot_at"], raw["total_snapshots"]
    if first is None or last is None:
        return {"start": None, "end": None, "snapshots": []}
    if last <= first:
        counts = [total]
    else:
        step = (last - first) / ACTIVITY_SLICES
        edges = [first + step * i for i in range(1, ACTIVITY_SLICES)]
        counts = uow.queries.snapshot_counts(account_id, session_id, edges)
    return {
        "start": first.isoformat().replace("+00:00", "Z"),
        "end": last.isoformat().replace("+00:00", "Z"),
        "snapshots": counts,
    }


def stats(deps: Deps, account_id: str, session_id: str) -> dict[str, Any]:
    session = get_session(deps, account_id, session_id)
    with deps.store.unit(write=False) as uow:
        raw = uow.queries.session_stats(account_id, session_id)
        activity = _activity(uow, account_id, session_id, raw)
    last = max(t for t in (session.updated_at, raw.get("last_snapshot_at")) if t is not None)
    return {
        # the session's own change or its newest snapshot, whichever is later (the dashboard)
        "last_activity_at": last.isoformat().replace("+00:00", "Z"),
        "total_messages": raw["total_messages"],
        "total_tool_calls": raw["tool_calls_success"]
        + raw["tool_calls_error"]
        + raw["tool_calls_pending"],
        "total_snapshots": raw["total_snapshots"],
        # what the session's LLM calls used, each call counted once (services/pricing)
        "total_tokens": raw["usage"]["total_tokens"],
        "usage": raw["usage"],
        # the context size now: the latest snapshot of each task (not a sum over snapshots,
        # which counts every message again in each later snapshot)
        "context_tokens": raw["context_tokens"],
        "llm_calls": raw["usage"]["calls"],
        "tool_calls_by_status": {
            "success": raw["tool_calls_success"],
            "error": raw["tool_calls_error"],
            "pending": raw["tool_calls_pending"],
        },
        "activity": activity,
    }


def usage(deps: Deps, account_id: str) -> dict[str, Any]:
    now: datetime = deps.clock()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with deps.store.unit(write=False) as uow:
        return uow.queries.usage(account_id, month_start)
