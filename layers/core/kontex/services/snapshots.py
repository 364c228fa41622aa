"""Snapshots: create (sealed on write), read, rollback, enrich."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kontex.domain.errors import EnrichWindowExpired, InvalidInput, NotFound
from kontex.domain.models import (
    ContextBundle,
    ContextFile,
    LogEvent,
    Message,
    Snapshot,
    SnapshotSource,
    ToolCall,
)
from kontex.ids import new_id
from kontex.ports import Page, Revision
from kontex.services import bundles
from kontex.services.deps import Deps
from kontex.services.sessions import check_limit, decode_cursor, get_session, get_task, page_of


def _label(label: str) -> str:
    if not isinstance(label, str) or not 1 <= len(label.strip()) <= 500:
        raise InvalidInput("label must be 1 to 500 characters")
    return label.strip()


def _announce(deps: Deps, type_: str, snapshot: Snapshot) -> None:
    data = snapshot.model_dump(mode="json", exclude={"account_id", "bundle_hash"})
    deps.events.publish(type_, snapshot.account_id, snapshot.session_id, data)


def create_snapshot(
    deps: Deps,
    account_id: str,
    task_id: str,
    label: str,
    bundle: ContextBundle,
    *,
    rollback_of: str | None = None,
    snapshot_id: str | None = None,
) -> Snapshot:
    """Seal ``bundle`` as the task's next snapshot (``parent_snapshot_id`` = the previous one).

    ``snapshot_id`` lets an idempotent writer (a queue worker) choose the id, so a redelivered
    message meets a ``Conflict`` instead of writing the snapshot twice.
    """
    label = _label(label)
    task = get_task(deps, account_id, task_id)
    now = deps.clock()
    if bundle.captured_at is None:
        bundle = bundle.model_copy(update={"captured_at": now})
    written = bundles.write_bundle(deps, account_id, task.session_id, bundle)
    previous = deps.store.latest_snapshot(account_id, task_id)
    snapshot = Snapshot(
        id=snapshot_id or new_id("snap"),
        account_id=account_id,
        session_id=task.session_id,
        task_id=task_id,
        label=label,
        source=bundle.source,
        model=bundle.model,
        token_total=written.token_total,
        parent_snapshot_id=previous.id if previous else None,
        rollback_of=rollback_of,
        bundle_hash=written.manifest_hash,
        stored_bytes=written.stored_bytes,
        captured_at=bundle.captured_at or now,
        created_at=now,
    )
    deps.store.insert_snapshot(snapshot, written.nodes)
    _announce(deps, "snapshot.created", snapshot)
    return snapshot


def get_snapshot(deps: Deps, account_id: str, snapshot_id: str) -> Snapshot:
    snapshot = deps.store.get_snapshot(account_id, snapshot_id)
    if snapshot is None:
        raise NotFound(f"snapshot {snapshot_id} not found")
    return snapshot


def get_bundle(
    deps: Deps, account_id: str, snapshot_id: str, revision: int | None = None
) -> ContextBundle:
    """The snapshot's bundle as it stands, or as it was at ``revision`` (0: as first written)."""
    snapshot = get_snapshot(deps, account_id, snapshot_id)
    manifest_hash = snapshot.bundle_hash
    if revision is not None:
        revisions = deps.store.list_revisions(account_id, snapshot_id)
        if not 0 <= revision < len(revisions):
            raise NotFound(f"revision {revision} of snapshot {snapshot_id} not found")
        manifest_hash = revisions[revision].bundle_hash
    return bundles.read_bundle(deps, account_id, snapshot.session_id, manifest_hash)


def list_snapshots(
    deps: Deps, account_id: str, session_id: str, limit: int = 20, cursor: str | None = None
) -> Page:
    get_session(deps, account_id, session_id)
    limit = check_limit(limit)
    rows = deps.store.list_snapshots(account_id, session_id, limit + 1, decode_cursor(cursor))
    return page_of(rows, limit)


def list_revisions(deps: Deps, account_id: str, snapshot_id: str) -> list[Revision]:
    get_snapshot(deps, account_id, snapshot_id)
    return deps.store.list_revisions(account_id, snapshot_id)


def rollback(deps: Deps, account_id: str, snapshot_id: str) -> Snapshot:
    """A new forward snapshot in the same task with the source's content; history is kept."""
    source = get_snapshot(deps, account_id, snapshot_id)
    bundle = get_bundle(deps, account_id, snapshot_id)
    restored = bundle.model_copy(update={"source": SnapshotSource.ROLLBACK, "captured_at": None})
    return create_snapshot(
        deps,
        account_id,
        source.task_id,
        f"Rollback to: {source.label}"[:500],
        restored,
        rollback_of=source.id,
    )


def _merge(existing: list[Any], given: list[Any], key: str) -> list[Any]:
    """Items of ``given`` replace those of ``existing`` with the same key; new ones append."""
    replacements = {getattr(item, key): item for item in given}
    merged = [replacements.pop(getattr(item, key), item) for item in existing]
    return merged + [item for item in given if getattr(item, key) in replacements]


def enrich(deps: Deps, account_id: str, snapshot_id: str, changes: dict[str, Any]) -> Snapshot:
    """Add to a snapshot within ``enrich_window_seconds`` of its creation.

    Fields left out keep their values; ``log_events`` append; ``files`` merge by path and
    ``tool_calls`` by id; ``messages``, ``reasoning``, ``model`` and ``token_total`` replace.
    The enriched bundle is a new revision; the original stays readable (``revision=0``).
    """
    allowed = {"messages", "tool_calls", "files", "reasoning", "log_events", "model", "token_total"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(f"cannot enrich {sorted(unknown)}", details={"allowed": sorted(allowed)})
    snapshot = get_snapshot(deps, account_id, snapshot_id)
    now = deps.clock()
    if now > snapshot.created_at + timedelta(seconds=deps.enrich_window_seconds):
        raise EnrichWindowExpired(
            f"snapshot {snapshot_id} can be enriched only within"
            f" {deps.enrich_window_seconds} s of its creation"
        )
    current = get_bundle(deps, account_id, snapshot_id)
    update: dict[str, Any] = {}
    if "messages" in changes:
        update["messages"] = [Message.model_validate(m) for m in changes["messages"]]
    if "tool_calls" in changes:
        given = [ToolCall.model_validate(t) for t in changes["tool_calls"]]
        update["tool_calls"] = _merge(current.tool_calls, given, "id")
    if "files" in changes:
        files = [ContextFile.model_validate(f) for f in changes["files"]]
        update["files"] = _merge(current.files, files, "path")
    if "log_events" in changes:
        events = [LogEvent.model_validate(e) for e in changes["log_events"]]
        update["log_events"] = [*current.log_events, *events]
    for name in ("reasoning", "model", "token_total"):
        if name in changes:
            update[name] = changes[name]
    recount = "token_total" not in changes and {"messages", "files", "reasoning"} & set(changes)
    if recount:
        update["token_total"] = None
    enriched = ContextBundle.model_validate({**current.model_dump(), **update})
    written = bundles.write_bundle(deps, account_id, snapshot.session_id, enriched)
    seq = len(deps.store.list_revisions(account_id, snapshot_id))  # seq 0 is the original
    deps.store.insert_revision(
        Revision(
            snapshot_id=snapshot_id,
            seq=seq,
            bundle_hash=written.manifest_hash,
            token_total=written.token_total,
            model=enriched.model,
            created_at=now,
            stored_bytes=written.stored_bytes,
        ),
        written.nodes,
    )
    result = get_snapshot(deps, account_id, snapshot_id)
    _announce(deps, "snapshot.enriched", result)
    return result
