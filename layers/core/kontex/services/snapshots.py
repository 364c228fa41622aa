"""Snapshots: create (sealed on write), read, rollback, enrich (and late usage), fork.

Each use case is one unit of work (``deps.store.unit()``, one transaction): it reads what it
needs once and writes all its rows, so a snapshot is never half-written. Large file bodies go to
the object store before the transaction (idempotent). A task's snapshots form one chain: the
writer locks the task row, takes its head as the parent and moves the head; the database refuses
a second child of one parent (unique index), and a writer that meets that conflict retries.
Each announces its event in the same unit (``uow.announce``): the outbox row is written in the
transaction, and the event is published after the commit (``services/outbox.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from kontex.domain.errors import Conflict, EnrichWindowExpired, InvalidInput, NotFound, found
from kontex.domain.models import (
    ContextBundle,
    ContextFile,
    LogEvent,
    Message,
    Snapshot,
    SnapshotBase,
    SnapshotSource,
    Task,
    ToolCall,
    Usage,
    validate_name,
)
from kontex.ids import new_id
from kontex.ports import Event, Revision, UnitOfWork
from kontex.services import bundles, outbox
from kontex.services.deps import Deps
from kontex.services.sessions import (
    check_limit,
    decode_cursor,
    get_session,
    page_of,
    task_event,
)

if TYPE_CHECKING:  # (kontex.port_pages: a page of snapshots is the REST function's)
    from kontex.ports import Page

LINEAGE_RETRIES = 5
T = TypeVar("T")


class HeadMoved(Conflict):
    """A write that asked to follow the task's head (``if_head``) found another there."""


def _label(label: str) -> str:
    if not isinstance(label, str) or not 1 <= len(label.strip()) <= 500:
        raise InvalidInput("label must be 1 to 500 characters")
    return label.strip()


def _event(type_: str, snapshot: Snapshot, at: Any) -> Event:
    """An event carries the snapshot's metadata, never its bundle."""
    data = snapshot.model_dump(mode="json", exclude={"account_id", "bundle_hash"})
    data["snapshot_id"] = snapshot.id
    return outbox.event(type_, snapshot.account_id, snapshot.session_id, data, at)


def retrying(deps: Deps, snapshot_id: str | None, attempt: Callable[[], T]) -> T:
    """Run a write; a lineage conflict (another writer took the parent) is retried, bounded.

    A conflict on a caller-chosen ``snapshot_id`` that exists is a redelivery: re-raised.
    """
    for tries in range(LINEAGE_RETRIES):
        try:
            return attempt()
        except HeadMoved:
            raise
        except Conflict:
            if snapshot_id is not None and _exists(deps, snapshot_id):
                raise
            if tries == LINEAGE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _exists(deps: Deps, snapshot_id: str) -> bool:
    with deps.store.unit(write=False) as uow:
        return uow.snapshots.exists(snapshot_id)


def _locked_task(
    uow: UnitOfWork, account_id: str, task_id: str
) -> tuple[Task, str | None, bytes | None]:
    return found(uow.snapshots.lock_head(account_id, task_id), f"task {task_id}")


def create_snapshot(
    deps: Deps,
    account_id: str,
    task_id: str,
    label: str,
    bundle: ContextBundle,
    *,
    rollback_of: str | None = None,
    snapshot_id: str | None = None,
    base: SnapshotBase | None = None,
) -> Snapshot:
    """Seal ``bundle`` as the task's next snapshot (``parent_snapshot_id`` = the task's head).

    ``snapshot_id`` lets an idempotent writer (a queue worker) choose the id, so a redelivered
    message meets a ``Conflict`` instead of writing the snapshot twice. With a ``base`` the
    bundle holds only what is new (a delta write, ``bundles.write_delta``).
    """
    label = _label(label)
    now = deps.clock()
    if bundle.captured_at is None:
        bundle = bundle.model_copy(update={"captured_at": now})
    plan = bundles.plan(bundle)
    large_bytes = 0
    if plan.large_bodies:  # object-store writes happen before the transaction, idempotent
        with deps.store.unit(write=False) as uow:
            task = uow.tasks.get(account_id, task_id)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        large_bytes = bundles.put_large_bodies(deps.blobs, account_id, task.session_id, plan)

    def attempt() -> Snapshot:
        with deps.store.unit() as uow:
            return seal(
                uow,
                account_id,
                task_id,
                label,
                bundle,
                plan,
                now,
                base=base,
                large_bytes=large_bytes,
                rollback_of=rollback_of,
                snapshot_id=snapshot_id,
            )

    return retrying(deps, snapshot_id, attempt)


def seal(
    uow: UnitOfWork,
    account_id: str,
    task_id: str,
    label: str,
    bundle: ContextBundle,
    plan: bundles.Plan,
    now: datetime,
    *,
    base: SnapshotBase | None = None,
    large_bytes: int = 0,
    rollback_of: str | None = None,
    snapshot_id: str | None = None,
) -> Snapshot:
    """In ``uow``: lock the task's head, store what ``plan`` (of ``bundle``) adds, write the
    snapshot row after the head and announce it. ``NotFound`` for a task not of the account."""
    if base is None:
        found_ = uow.snapshots.lock_head_and_lookup(account_id, task_id, *bundles.needs(plan))
        if found_ is None:
            raise NotFound(f"task {task_id} not found")
        (task, head, head_manifest), known, chunks = found_
        written = bundles.write(
            uow.content,
            task.session_id,
            plan,
            now,
            parent_manifest=head_manifest,
            large_bytes=large_bytes,
            looked_up=(known, chunks),
        )
    else:
        task, head, written = _write_delta(uow, account_id, task_id, plan, base, now)
        written.stored_bytes += large_bytes
    snapshot = _sealed(
        snapshot_id or new_id("snap"),
        account_id,
        task,
        label,
        bundle,
        written,
        head,
        now,
        model=bundle.model if base is None else bundles.manifest_model(written.manifest),
        rollback_of=rollback_of,
    )
    uow.snapshots.add(snapshot, written.manifest)
    uow.announce(_event("snapshot.created", snapshot, now))
    return snapshot


def _sealed(
    snapshot_id: str,
    account_id: str,
    task: Task,
    label: str,
    bundle: ContextBundle,
    written: bundles.Written,
    head: str | None,
    now: datetime,
    *,
    model: str | None,
    rollback_of: str | None = None,
) -> Snapshot:
    """The row of a snapshot whose content is ``written``, after ``head`` in ``task``."""
    return Snapshot(
        id=snapshot_id,
        account_id=account_id,
        session_id=task.session_id,
        task_id=task.id,
        label=label,
        source=bundle.source,
        model=model,
        token_total=written.token_total,
        parent_snapshot_id=head,
        rollback_of=rollback_of,
        bundle_hash=written.bundle_hash,
        stored_bytes=written.stored_bytes,
        captured_at=bundle.captured_at or now,
        created_at=now,
        usage=bundle.usage,
    )


@dataclass(frozen=True)
class NewSnapshot:
    """One snapshot of a batch sealed in one unit of work (``prepare`` then ``seal_all``): a
    span batch's. ``snapshot_id`` is the writer's, so a redelivered batch writes it once."""

    account_id: str
    session_id: str
    task_id: str
    label: str
    bundle: ContextBundle
    snapshot_id: str


@dataclass
class Prepared:
    new: NewSnapshot
    bundle: ContextBundle
    plan: bundles.Plan
    large_bytes: int


def prepare(deps: Deps, new: Sequence[NewSnapshot]) -> list[Prepared]:
    """Plan each snapshot, count its tokens and store its large file bodies: all before the
    write transaction (object-store writes are idempotent), so that the transaction holds its
    locks for the database's work only."""
    now = deps.clock()
    prepared = []
    for n in new:
        bundle = n.bundle
        if bundle.captured_at is None:
            bundle = bundle.model_copy(update={"captured_at": now})
        plan = bundles.plan(bundle)
        bundles.count(plan)  # tokens counted here, not in the write transaction
        bundles.needs(plan)  # ... and what its write looks up
        large = 0
        if plan.large_bodies:
            large = bundles.put_large_bodies(deps.blobs, n.account_id, n.session_id, plan)
        prepared.append(Prepared(n, bundle, plan, large))
    return prepared


def seal_all(
    uow: UnitOfWork,
    prepared: Sequence[Prepared],
    clock: Callable[[], datetime],
    tasks: Sequence[Task] = (),
) -> list[Snapshot]:
    """In ``uow``, in order: make the batch's ``tasks`` that are missing (parents before
    children; each new one announced), then seal each prepared snapshot whose id is not stored
    yet (a redelivered batch writes nothing twice), each created after the one before (listings
    order by creation time) and after the one before it in its task (its parent).

    In bulk, whatever the batch's size: one round trip inserts the missing tasks (answering
    which it made), reads which ids are stored, locks every task's head and looks up the items
    and chunks of every session; each table's new rows (items, chunks, snapshots, heads,
    events) are then one statement, sent with the commit. What a snapshot stores is exactly
    what sealing it alone would (an item met twice in the batch is stored and counted once).
    Their events go out together after the commit, the new tasks' first."""
    added = uow.tasks.add_missing_later(tasks)  # answered with the lock's round trip
    if not prepared:
        for task in added():
            uow.announce(task_event(task))
        return []
    wanted: dict[str, tuple[dict[bytes, None], dict[bytes, None]]] = {}
    for p in prepared:
        items, chunks = bundles.needs(p.plan)
        session_items, session_chunks = wanted.setdefault(p.new.session_id, ({}, {}))
        session_items.update(dict.fromkeys(items))
        session_chunks.update(dict.fromkeys(chunks))
    stored, locked, looked_up = uow.snapshots.lock_heads_and_lookup(
        [p.new.snapshot_id for p in prepared],
        list(dict.fromkeys((p.new.account_id, p.new.task_id) for p in prepared)),
        {session: (list(items), list(chunks)) for session, (items, chunks) in wanted.items()},
    )
    for task in added():
        uow.announce(task_event(task))
    heads = {key: (head, manifest) for key, (_, head, manifest) in locked.items()}
    content = bundles.Pending(uow.content)
    made: list[tuple[Snapshot, bytes]] = []
    for p in prepared:
        if p.new.snapshot_id in stored:
            continue
        key = (p.new.account_id, p.new.task_id)
        if key not in locked:
            raise NotFound(f"task {p.new.task_id} not found")
        task = locked[key][0]
        head, head_manifest = heads[key]
        label = _label(p.new.label)
        now = clock()
        if made and now <= made[-1][0].created_at:
            now = made[-1][0].created_at + timedelta(microseconds=1)
        session_id = task.session_id
        if session_id != p.new.session_id:  # not the session it was looked up in: look again
            known, refs = looked_up.setdefault(session_id, ({}, {}))
            found_items, found_chunks = uow.content.lookup(session_id, *bundles.needs(p.plan))
            known.update(found_items)
            refs.update(found_chunks)
        written = bundles.write(
            content,
            session_id,
            p.plan,
            now,
            parent_manifest=head_manifest,
            large_bytes=p.large_bytes,
            looked_up=looked_up[session_id],
        )
        snapshot = _sealed(
            p.new.snapshot_id,
            p.new.account_id,
            task,
            label,
            p.bundle,
            written,
            head,
            now,
            model=p.bundle.model,
        )
        made.append((snapshot, written.manifest))
        heads[key] = (snapshot.id, written.manifest)
        stored.add(snapshot.id)
    content.flush()
    uow.snapshots.add_many(made)
    for snapshot, _ in made:
        uow.announce(_event("snapshot.created", snapshot, snapshot.created_at))
    return [snapshot for snapshot, _ in made]


def _write_delta(
    uow: UnitOfWork,
    account_id: str,
    task_id: str,
    plan: bundles.Plan,
    base: SnapshotBase,
    now: datetime,
) -> tuple[Task, str | None, bundles.Written]:
    """Lock the task's head and write ``plan`` over the base (the head when it names none):
    the lock and the base's row in one round trip."""
    locked = uow.snapshots.lock_head_and_read(account_id, task_id, base.snapshot_id or None)
    (task, head, _), stored = found(locked, f"task {task_id}")
    if base.if_head and (base.snapshot_id or None) != head:
        raise HeadMoved(
            f"snapshot {base.snapshot_id} is no longer the head of task {task_id}",
            details={"head": head},
        )
    base_id = base.snapshot_id or head
    if base_id is None:  # a task without snapshots: the delta is the whole bundle
        written = bundles.write(uow.content, task.session_id, plan, now)
        return task, head, written
    source, manifest = found(stored, f"snapshot {base_id}")
    if source.session_id != task.session_id:  # looked up in the task's session: not there
        raise NotFound(f"base snapshot {base_id} not found in the session of task {task_id}")
    if manifest is None:
        raise Conflict(f"snapshot {base_id} was written by an older version: run `kontex migrate`")
    written = bundles.write_delta(
        uow.content,
        task.session_id,
        plan,
        now,
        base_manifest=manifest,
        base_hash=source.bundle_hash,
        keep=base.messages,
        drop_files=base.drop_files,
    )
    return task, head, written


def get_snapshot(deps: Deps, account_id: str, snapshot_id: str) -> Snapshot:
    with deps.store.unit(write=False) as uow:
        return found(uow.snapshots.get(account_id, snapshot_id), f"snapshot {snapshot_id}")


def read_in(
    deps: Deps,
    uow: UnitOfWork,
    account_id: str,
    snapshot_id: str,
    revision: int | None,
    found: tuple[Snapshot, bytes | None] | None = None,
) -> tuple[Snapshot, bytes, ContextBundle]:
    found = found or uow.snapshots.stored(account_id, snapshot_id)
    if found is None:
        raise NotFound(f"snapshot {snapshot_id} not found")
    snapshot, manifest = found
    bundle_hash = snapshot.bundle_hash
    if revision is not None:
        rev = uow.snapshots.revision(account_id, snapshot_id, revision)
        if rev is None:
            raise NotFound(f"revision {revision} of snapshot {snapshot_id} not found")
        manifest, bundle_hash = rev.manifest, rev.bundle_hash
    if manifest is None:
        raise Conflict(
            f"snapshot {snapshot_id} was written by an older version: run `kontex migrate`"
        )
    bundle = bundles.read(
        uow.content, deps.blobs, account_id, snapshot.session_id, manifest, bundle_hash
    )
    return snapshot, manifest, bundle


def read(
    deps: Deps, account_id: str, snapshot_id: str, revision: int | None = None
) -> tuple[Snapshot, ContextBundle]:
    """The snapshot and its bundle as it stands, or as it was at ``revision`` (0: as first
    written); one transaction, every item verified."""
    with deps.store.unit(write=False) as uow:
        snapshot, _, bundle = read_in(deps, uow, account_id, snapshot_id, revision)
    return snapshot, bundle


def get_bundle(
    deps: Deps, account_id: str, snapshot_id: str, revision: int | None = None
) -> ContextBundle:
    return read(deps, account_id, snapshot_id, revision)[1]


def read_latest(deps: Deps, account_id: str, task_id: str) -> tuple[Snapshot, ContextBundle]:
    """The task's latest snapshot (its head) with its bundle, in one transaction."""
    with deps.store.unit(write=False) as uow:
        found = uow.snapshots.head(account_id, task_id)
        if found is None:
            raise NotFound(f"task {task_id} not found or without snapshots")
        snapshot, _, bundle = read_in(deps, uow, account_id, found[0].id, None, found)
    return snapshot, bundle


def list_snapshots(
    deps: Deps, account_id: str, session_id: str, limit: int = 20, cursor: str | None = None
) -> Page:
    get_session(deps, account_id, session_id)
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    with deps.store.unit(write=False) as uow:
        rows = uow.snapshots.page(account_id, session_id, limit + 1, after)
    return page_of(rows, limit)


def list_revisions(deps: Deps, account_id: str, snapshot_id: str) -> list[Revision]:
    with deps.store.unit(write=False) as uow:
        revisions = uow.snapshots.revisions(account_id, snapshot_id)
    if not revisions:  # seq 0 is the snapshot itself: none means no such snapshot
        raise NotFound(f"snapshot {snapshot_id} not found")
    return revisions


def _restating(original: Snapshot, now: datetime, **fields: Any) -> Snapshot:
    """A new snapshot that restates ``original``'s content (a rollback or a fork): its
    session, task, model, size, source and capture time, unless ``fields`` say otherwise."""
    return Snapshot(
        **{
            "id": new_id("snap"),
            "account_id": original.account_id,
            "session_id": original.session_id,
            "task_id": original.task_id,
            "source": original.source,
            "model": original.model,
            "token_total": original.token_total,
            "captured_at": original.captured_at,
            "created_at": now,
            **fields,
        }
    )


def rollback(deps: Deps, account_id: str, snapshot_id: str) -> Snapshot:
    """A new forward snapshot in the same task with the source's content; history is kept.

    The source is read and verified first (a damaged history is never sealed again); its lists
    are referred to as they are, so a rollback stores only its manifest.
    """

    def attempt() -> Snapshot:
        with deps.store.unit() as uow:
            source, source_manifest, _ = read_in(deps, uow, account_id, snapshot_id, None)
            _, head, _ = _locked_task(uow, account_id, source.task_id)
            now = deps.clock()
            manifest = bundles.restamp(
                source_manifest, source=SnapshotSource.ROLLBACK.value, captured_at=now.isoformat()
            )
            snapshot = _restating(
                source,
                now,
                label=f"Rollback to: {source.label}"[:500],
                source=SnapshotSource.ROLLBACK,
                parent_snapshot_id=head,
                rollback_of=source.id,
                bundle_hash=bundles.manifest_hash(manifest),
                stored_bytes=len(manifest),
                captured_at=now,
            )
            uow.snapshots.add(snapshot, manifest)
            uow.announce(_event("snapshot.created", snapshot, now))
            return snapshot

    return retrying(deps, None, attempt)


def fork(
    deps: Deps,
    account_id: str,
    snapshot_id: str,
    name: str | None = None,
    session_id: str | None = None,
) -> tuple[Task, Snapshot]:
    """A new task (a branch) whose first snapshot has the source's content.

    In the source's session the branch is a child of the source's task and shares its content
    (nothing is copied); into another session of the account it is a root task there, and the
    content is stored in that session.
    """
    target = get_session(deps, account_id, session_id) if session_id is not None else None
    with deps.store.unit() as uow:
        source, source_manifest, bundle = read_in(deps, uow, account_id, snapshot_id, None)
        source_task, _, _ = _locked_task(uow, account_id, source.task_id)
        now = deps.clock()
        same = target is None or target.id == source.session_id
        task = Task(
            id=new_id("task"),
            account_id=account_id,
            session_id=source.session_id if same else target.id,  # type: ignore[union-attr]
            parent_task_id=source_task.id if same else None,
            name=validate_name(name) if name is not None else f"fork of {source_task.name}"[:200],
            created_at=now,
            updated_at=now,
        )
        uow.tasks.add(task)
        # a fork is not an LLM call: the source's usage is not carried over (as in a rollback)
        if same:  # the source's manifest (nothing stored), less a call's usage
            manifest, bundle_hash, stored = source_manifest, source.bundle_hash, 0
            if bundles.usage_of_manifest(source_manifest) is not None:
                manifest = bundles.restamp(source_manifest)
                bundle_hash, stored = bundles.manifest_hash(manifest), len(manifest)
            token_total = source.token_total
        else:
            plan = bundles.plan(bundle.model_copy(update={"usage": None}))
            large = bundles.put_large_bodies(deps.blobs, account_id, task.session_id, plan)
            written = bundles.write(uow.content, task.session_id, plan, now, large_bytes=large)
            manifest, bundle_hash, stored = (
                written.manifest,
                written.bundle_hash,
                written.stored_bytes,
            )
            token_total = written.token_total
        snapshot = _restating(
            source,
            now,
            session_id=task.session_id,
            task_id=task.id,
            label=f"Fork of: {source.label}"[:500],
            token_total=token_total,
            forked_from=source.id,
            bundle_hash=bundle_hash,
            stored_bytes=stored,
        )
        uow.snapshots.add(snapshot, manifest)
        task_data = task.model_dump(mode="json", exclude={"account_id"})
        uow.announce(outbox.event("task.updated", account_id, task.session_id, task_data, now))
        uow.announce(_event("snapshot.created", snapshot, now))
    return task, snapshot


def _merge(existing: list[Any], given: list[Any], key: str) -> list[Any]:
    """Items of ``given`` replace those of ``existing`` with the same key; new ones append."""
    replacements = {getattr(item, key): item for item in given}
    merged = [replacements.pop(getattr(item, key), item) for item in existing]
    return merged + [item for item in given if getattr(item, key) in replacements]


ENRICHABLE = {"messages", "tool_calls", "files", "reasoning", "log_events", "model", "token_total"}


def enrich(deps: Deps, account_id: str, snapshot_id: str, changes: dict[str, Any]) -> Snapshot:
    """Add to a snapshot within ``enrich_window_seconds`` of its creation.

    Fields left out keep their values; ``log_events`` append; ``files`` merge by path and
    ``tool_calls`` by id; ``messages``, ``reasoning``, ``model`` and ``token_total`` replace.
    A list given as null is left out (a list is never null); a null ``reasoning`` or ``model``
    clears it. The enriched bundle is a new revision; the original stays readable
    (``revision=0``).
    """
    lists = ("messages", "tool_calls", "files", "log_events")
    changes = {k: v for k, v in changes.items() if not (v is None and k in lists)}
    unknown = set(changes) - ENRICHABLE
    if unknown:
        raise InvalidInput(
            f"cannot enrich {sorted(unknown)}", details={"allowed": sorted(ENRICHABLE)}
        )
    update: dict[str, Any] = {}
    if "messages" in changes:
        update["messages"] = [Message.model_validate(m) for m in changes["messages"]]
    given_calls = [ToolCall.model_validate(t) for t in changes.get("tool_calls", [])]
    given_files = [ContextFile.model_validate(f) for f in changes.get("files", [])]
    events = [LogEvent.model_validate(e) for e in changes.get("log_events", [])]
    for name in ("reasoning", "model", "token_total"):
        if name in changes:
            update[name] = changes[name]
    recount = "token_total" not in changes and {"messages", "files", "reasoning"} & set(changes)
    if recount:
        update["token_total"] = None
    now = deps.clock()
    large = 0
    if given_files:  # new large bodies can only come with the given files: stored first
        snapshot = get_snapshot(deps, account_id, snapshot_id)
        given = bundles.plan(ContextBundle(files=given_files))
        large = bundles.put_large_bodies(deps.blobs, account_id, snapshot.session_id, given)
    with deps.store.unit() as uow:
        snapshot, manifest, current = read_in(deps, uow, account_id, snapshot_id, None)
        if now > snapshot.created_at + timedelta(seconds=deps.enrich_window_seconds):
            raise EnrichWindowExpired(
                f"snapshot {snapshot_id} can be enriched only within"
                f" {deps.enrich_window_seconds} s of its creation"
            )
        if "tool_calls" in changes:
            update["tool_calls"] = _merge(current.tool_calls, given_calls, "id")
        if "files" in changes:
            update["files"] = _merge(current.files, given_files, "path")
        if "log_events" in changes:
            update["log_events"] = [*current.log_events, *events]
        enriched = ContextBundle.model_validate({**current.model_dump(), **update})
        return _revise(uow, snapshot, manifest, enriched, now, large)


def _revise(
    uow: UnitOfWork,
    snapshot: Snapshot,
    manifest: bytes,
    bundle: ContextBundle,
    now: datetime,
    large_bytes: int = 0,
) -> Snapshot:
    """In ``uow``: ``bundle`` as the snapshot's next revision (over its current ``manifest``),
    announced; returns the snapshot as it now stands."""
    written = bundles.write(
        uow.content,
        snapshot.session_id,
        bundles.plan(bundle),
        now,
        parent_manifest=manifest,
        large_bytes=large_bytes,
    )
    uow.snapshots.add_revision(
        Revision(
            snapshot_id=snapshot.id,
            seq=uow.snapshots.revision_count(snapshot.id) + 1,  # seq 0 is the original
            bundle_hash=written.bundle_hash,
            token_total=written.token_total,
            model=bundle.model,
            created_at=now,
            stored_bytes=written.stored_bytes,
        ),
        written.manifest,
    )
    result = snapshot.model_copy(
        update={
            "token_total": written.token_total,
            "model": bundle.model,
            "bundle_hash": written.bundle_hash,
            "usage": bundle.usage,
            "enriched": True,
            "enriched_at": now,
        }
    )
    uow.announce(_event("snapshot.enriched", result, now))
    return result


def revise_usage(
    deps: Deps, account_id: str, snapshot_id: str, usage: Usage | None
) -> Snapshot | None:
    """A late fact about a captured call: its ``usage``, known only after its snapshot was
    sealed (the SDK's own span of the call came after the span the snapshot was made from).

    The snapshot stays as it was sealed; its usage is a new revision (the content is the
    current revision's, so only a manifest is stored), served by the snapshot and counted by
    the session's stats and ``/v1/usage``. Not an edit by the caller: no enrich window. None
    when the snapshot already records that usage (a span delivered again)."""
    with deps.store.unit() as uow:
        snapshot, manifest, current = read_in(deps, uow, account_id, snapshot_id, None)
        if current.usage == usage:
            return None
        revised = current.model_copy(update={"usage": usage})
        return _revise(uow, snapshot, manifest, revised, deps.clock())
