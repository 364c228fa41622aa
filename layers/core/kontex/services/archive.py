"""A session exported and imported as an exact copy (docs/export-format.md).

``export_session`` reads, in one unit, every row Kontex serves of the session as it is stored:
the session, its tasks, each snapshot row as first written (source, usage, lineage, times),
its revisions, the items and chunks its manifests name, the large file bodies (object store),
its checkpoint namespaces, checkpoints and pending writes, the thread states that name it, its
linked traces and aliases. Everything is verified as a read verifies it.

``import_session`` writes such an archive into the caller's account. Before anything is
written it checks the archive's shape (task tree, each task's chain of snapshots, every id
named) and every hash (``bundles.check_stored``); a refusal is a ``validation_error`` and
writes nothing. Then large bodies go to the object store (idempotent, as every write does) and
one unit of work writes every row through the repositories, so the import is whole or absent.
Ids are new (the answer maps each archived id to its new one), or kept with ``keep_ids``:
refused with ``Conflict`` when any of them exists in the target. The names an account finds a
session by (checkpoint threads, thread states, traces, aliases) are carried as they are, and a
name the account already uses is a ``Conflict`` too.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kontex.domain.archive import (
    ArchivedBody,
    ArchivedCheckpoint,
    ArchivedChunk,
    ArchivedItem,
    ArchivedNamespace,
    ArchivedRevision,
    ArchivedSession,
    ArchivedSnapshot,
    ArchivedTask,
    ArchivedThreadState,
    ArchivedTrace,
    ArchivedWrite,
    ImportedSession,
    SessionArchive,
)
from kontex.domain.errors import Conflict, IntegrityError, InvalidInput, found
from kontex.domain.models import THREAD_STATE_MAX_BYTES, Session, Snapshot, Task, ThreadState
from kontex.ids import new_id
from kontex.ports import CheckpointRow, CheckpointWrite, Event, ItemRow, Revision, UnitOfWork
from kontex.services import bundles, outbox
from kontex.services.deps import Deps

ID_RE = re.compile(r"\b(?:sess|task|snap)_[0-9a-z]{26}\b")
SHOWN = 20  # ids named in a refusal's details


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"archive refused: {what} is not base64") from None


# -- export -------------------------------------------------------------------------------------


def _parents_first(tasks: list[Task]) -> list[Task]:
    """The tasks as a walk of their tree: each parent before its children, siblings oldest
    first (a stable order, whatever the ids)."""
    children: dict[str | None, list[Task]] = {}
    ids = {t.id for t in tasks}
    for task in sorted(tasks, key=lambda t: (t.created_at, t.id)):
        parent = task.parent_task_id if task.parent_task_id in ids else None
        children.setdefault(parent, []).append(task)
    out: list[Task] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        task = stack.pop()
        out.append(task)
        stack.extend(reversed(children.get(task.id, [])))
    return out


def export_session(deps: Deps, account_id: str, session_id: str) -> SessionArchive:
    """The session as an archive: what is stored, verified as a read verifies it."""
    with deps.store.unit(write=False) as uow:
        session = found(uow.sessions.get(account_id, session_id), f"session {session_id}")
        tasks = _parents_first(uow.tasks.of_session(account_id, session_id))
        rows = uow.archive.snapshots(account_id, session_id)
        revisions = uow.archive.revisions(account_id, session_id)
        items = uow.archive.items(session_id)
        chunks = uow.archive.chunks(session_id)
        namespaces, checkpoints, writes = uow.archive.checkpoints(account_id, session_id)
        states = uow.archive.thread_states(account_id, session_id)
        traces = uow.archive.traces(account_id, session_id)
        aliases = uow.archive.aliases(account_id, session_id)
    if any(manifest is None for _, manifest in rows) or any(r.manifest is None for r in revisions):
        raise Conflict(
            f"session {session_id} holds snapshots written by an older version: run"
            " `kontex migrate`"
        )
    bodies = bundles.stored_bodies(deps.blobs, account_id, session_id, [r for r, _ in items])
    manifests = [(m, s.bundle_hash) for s, m in rows if m is not None]
    manifests += [(r.manifest, r.bundle_hash) for r in revisions if r.manifest is not None]
    bundles.check_stored(manifests, {r.address: (r.kind, r.body) for r, _ in items}, chunks, bodies)
    by_snapshot: dict[str, list[ArchivedRevision]] = {}
    for r in revisions:
        by_snapshot.setdefault(r.snapshot_id, []).append(
            ArchivedRevision(
                seq=r.seq,
                bundle_hash=r.bundle_hash,
                token_total=r.token_total,
                model=r.model,
                stored_bytes=r.stored_bytes,
                created_at=r.created_at,
                manifest=_b64(r.manifest or b""),
            )
        )
    return SessionArchive(
        session=ArchivedSession(**session.model_dump(exclude={"account_id"})),
        tasks=[ArchivedTask(**t.model_dump(exclude={"account_id", "session_id"})) for t in tasks],
        snapshots=[
            ArchivedSnapshot(
                **s.model_dump(exclude={"account_id", "session_id", "enriched", "enriched_at"}),
                manifest=_b64(manifest or b""),
                revisions=by_snapshot.get(s.id, []),
            )
            for s, manifest in rows
        ],
        items=[
            ArchivedItem(
                address=r.address.hex(),
                kind=r.kind,  # type: ignore[arg-type]
                body=_b64(r.body),
                tokens=r.tokens,
                position=r.position,
                first_seen_at=seen,
                **r.index,
            )
            for r, seen in items
        ],
        chunks=[ArchivedChunk(address=a.hex(), refs=_b64(refs)) for a, refs in chunks.items()],
        bodies=[ArchivedBody(sha256=d, data=_b64(data)) for d, data in sorted(bodies.items())],
        checkpoint_namespaces=[ArchivedNamespace(**n) for n in namespaces],
        checkpoints=[
            ArchivedCheckpoint(
                thread_id=c.thread_id,
                ns=c.ns,
                checkpoint_id=c.checkpoint_id,
                parent_id=c.parent_id,
                snapshot_id=c.snapshot_id,
                metadata=c.metadata,
                run_id=c.run_id,
                created_at=c.created_at,
            )
            for c in checkpoints
        ],
        checkpoint_writes=[
            ArchivedWrite(
                thread_id=thread_id,
                ns=ns,
                checkpoint_id=checkpoint_id,
                task_id=w.task_id,
                idx=w.idx,
                channel=w.channel,
                value=w.value,
                task_path=w.task_path,
            )
            for thread_id, ns, checkpoint_id, w in writes
        ],
        thread_states=[ArchivedThreadState(**t.model_dump(exclude={"account_id"})) for t in states],
        traces=[ArchivedTrace(trace_id=t, created_at=at) for t, at in traces],
        aliases=aliases,
    )


# -- import: what is checked before anything is written -----------------------------------------


def _refuse(message: str, details: Any = None) -> InvalidInput:
    return InvalidInput(f"archive refused: {message}", details=details)


def _unique(values: Iterable[Any], what: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise _refuse(f"{what} {value!r} appears twice")
        seen.add(value)


def _snapshot_order(archive: SessionArchive) -> list[ArchivedSnapshot]:
    """The snapshots in an order their rows can be written in: tasks parents first, each
    task's chain from its first snapshot to its head. Refuses a chain that is not one line."""
    tasks = {t.id: t for t in archive.tasks}
    by_id = {s.id: s for s in archive.snapshots}
    chains: dict[str, dict[str | None, ArchivedSnapshot]] = {}
    for s in archive.snapshots:
        if s.task_id not in tasks:
            raise _refuse(f"snapshot {s.id} names a task not in the archive")
        parent = s.parent_snapshot_id
        if parent is not None and (parent not in by_id or by_id[parent].task_id != s.task_id):
            raise _refuse(f"snapshot {s.id} names a parent not of its task in the archive")
        chain = chains.setdefault(s.task_id, {})
        if parent in chain:
            raise _refuse(f"two snapshots of task {s.task_id} follow {parent or 'no parent'}")
        chain[parent] = s
    order: list[ArchivedSnapshot] = []
    placed: set[str] = set()
    for task in archive.tasks:
        chain = chains.get(task.id, {})
        before = len(order)
        at = chain.get(None)
        while at is not None:
            if at.rollback_of is not None and at.rollback_of not in placed:
                raise _refuse(f"snapshot {at.id} rolls back to a snapshot not before it")
            order.append(at)
            placed.add(at.id)
            at = chain.get(at.id)
        if len(order) - before != len(chain):
            raise _refuse(f"the snapshots of task {task.id} are not one chain")
    return order


def _check_shape(archive: SessionArchive) -> list[ArchivedSnapshot]:
    """The archive's rows name each other consistently; the snapshots in writing order."""
    tasks = archive.tasks
    _unique([t.id for t in tasks], "task")
    placed: set[str] = set()
    for task in tasks:  # parents first: a parent is a task already listed
        if task.parent_task_id is not None and task.parent_task_id not in placed:
            raise _refuse(f"task {task.id} names a parent not listed before it")
        placed.add(task.id)
    _unique([s.id for s in archive.snapshots], "snapshot")
    for s in archive.snapshots:
        if [r.seq for r in s.revisions] != list(range(1, len(s.revisions) + 1)):
            raise _refuse(f"the revisions of snapshot {s.id} are not numbered 1, 2, ...")
    order = _snapshot_order(archive)
    snapshots = {s.id for s in archive.snapshots}
    _unique([(n.thread_id, n.ns) for n in archive.checkpoint_namespaces], "checkpoint namespace")
    namespaces = {(n.thread_id, n.ns) for n in archive.checkpoint_namespaces}
    for n in archive.checkpoint_namespaces:
        if n.task_id not in placed:
            raise _refuse(f"checkpoint namespace {n.ns!r} names a task not in the archive")
    _unique([(c.thread_id, c.ns, c.checkpoint_id) for c in archive.checkpoints], "checkpoint")
    for c in archive.checkpoints:
        if (c.thread_id, c.ns) not in namespaces or c.snapshot_id not in snapshots:
            raise _refuse(f"checkpoint {c.checkpoint_id!r} names a namespace or snapshot not here")
    _unique(
        [(w.thread_id, w.ns, w.checkpoint_id, w.task_id, w.idx) for w in archive.checkpoint_writes],
        "pending write",
    )
    for w in archive.checkpoint_writes:
        if (w.thread_id, w.ns) not in namespaces:
            raise _refuse(f"a pending write of {w.checkpoint_id!r} names a namespace not here")
    _unique([t.thread_id for t in archive.thread_states], "thread state")
    for state in archive.thread_states:
        if len(state.user_data.encode("utf-8")) > THREAD_STATE_MAX_BYTES:
            raise _refuse(f"thread state {state.thread_id} is larger than 1 MiB")
    _unique([t.trace_id for t in archive.traces], "trace")
    _unique(archive.aliases, "alias")
    return order


class _Content:
    """The archive's content, decoded and verified."""

    def __init__(self, archive: SessionArchive) -> None:
        _unique([i.address for i in archive.items], "item")
        _unique([c.address for c in archive.chunks], "chunk")
        _unique([b.sha256 for b in archive.bodies], "file body")
        self.items = [
            (
                ItemRow(
                    bytes.fromhex(i.address),
                    i.kind,
                    _unb64(i.body, f"item {i.address}"),
                    i.tokens,
                    i.position,
                    {
                        "role": i.role,
                        "has_text": i.has_text,
                        "has_tool_use": i.has_tool_use,
                        "has_tool_result": i.has_tool_result,
                        "tool_name": i.tool_name,
                        "is_error": i.is_error,
                    },
                ),
                i.first_seen_at,
            )
            for i in archive.items
        ]
        self.chunks = {
            bytes.fromhex(c.address): _unb64(c.refs, f"chunk {c.address}") for c in archive.chunks
        }
        self.bodies = {b.sha256: _unb64(b.data, f"file body {b.sha256}") for b in archive.bodies}
        self.manifests: dict[tuple[str, int], bytes] = {}
        for s in archive.snapshots:
            self.manifests[(s.id, 0)] = _unb64(s.manifest, f"the manifest of {s.id}")
            for r in s.revisions:
                self.manifests[(s.id, r.seq)] = _unb64(r.manifest, f"a manifest of {s.id}")
        hashes = {(s.id, 0): s.bundle_hash for s in archive.snapshots}
        hashes.update(
            {(s.id, r.seq): r.bundle_hash for s in archive.snapshots for r in s.revisions}
        )
        try:
            bundles.check_stored(
                [(m, hashes[key]) for key, m in self.manifests.items()],
                {row.address: (row.kind, row.body) for row, _ in self.items},
                self.chunks,
                self.bodies,
            )
        except IntegrityError as error:
            raise _refuse(error.message) from None


# -- import: ids and names ----------------------------------------------------------------------


def _id_map(archive: SessionArchive, keep_ids: bool) -> dict[str, str]:
    pairs = [("sess", archive.session.id)]
    pairs += [("task", t.id) for t in archive.tasks]
    pairs += [("snap", s.id) for s in archive.snapshots]
    if keep_ids:
        for prefix, old in pairs:
            if not re.fullmatch(rf"{prefix}_[0-9a-z]{{26}}", old):
                raise _refuse(f"{old!r} is not a Kontex id: it cannot be kept")
        return {old: old for _, old in pairs}
    return {old: new_id(prefix) for prefix, old in pairs}


def _taken(uow: UnitOfWork, account_id: str, archive: SessionArchive, ids: dict[str, str]) -> None:
    """``Conflict`` when an id to write exists, or a name the archive carries is the
    account's already."""
    existing = sorted(uow.archive.existing(list(ids.values())))
    if existing:
        raise Conflict(
            f"{len(existing)} of the archive's ids exist here already",
            details={"existing": existing[:SHOWN]},
        )
    taken: dict[str, list[str]] = {}
    for thread_id in sorted({n.thread_id for n in archive.checkpoint_namespaces}):
        if uow.checkpoints.namespaces(account_id, thread_id):
            taken.setdefault("checkpoint_threads", []).append(thread_id)
    for state in archive.thread_states:
        if uow.threads.get(account_id, state.thread_id) is not None:
            taken.setdefault("thread_states", []).append(state.thread_id)
    linked = uow.traces.sessions_of([(account_id, t.trace_id) for t in archive.traces])
    if linked:
        taken["traces"] = sorted(trace for _, trace in linked)
    for alias in archive.aliases:
        if uow.traces.alias(account_id, alias) is not None:
            taken.setdefault("aliases", []).append(alias)
    if taken:
        raise Conflict(
            "the archive carries names this account uses already: import it into another"
            " account, or remove them here first",
            details={k: v[:SHOWN] for k, v in taken.items()},
        )


def _mapped(text: str, ids: dict[str, str]) -> str:
    """``text`` with each archived id it names replaced by its new one."""
    return ID_RE.sub(lambda m: ids.get(m.group(0), m.group(0)), text)


def _snapshot_event(snapshot: Snapshot, at: datetime) -> Event:
    data = snapshot.model_dump(mode="json", exclude={"account_id", "bundle_hash"})
    data["snapshot_id"] = snapshot.id
    return outbox.event("snapshot.created", snapshot.account_id, snapshot.session_id, data, at)


def _write(
    uow: UnitOfWork,
    account_id: str,
    archive: SessionArchive,
    order: list[ArchivedSnapshot],
    content: _Content,
    ids: dict[str, str],
    now: datetime,
) -> Session:
    a = archive.session
    session = Session(
        id=ids[a.id],
        account_id=account_id,
        name=a.name,
        description=a.description,
        metadata=a.metadata,
        status=a.status,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )
    uow.sessions.add(session)
    uow.announce(
        outbox.event(
            "session.updated",
            account_id,
            session.id,
            session.model_dump(mode="json", exclude={"account_id"}),
            now,
        )
    )
    for t in archive.tasks:
        task = Task(
            id=ids[t.id],
            account_id=account_id,
            session_id=session.id,
            parent_task_id=ids[t.parent_task_id] if t.parent_task_id else None,
            name=t.name,
            status=t.status,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )
        uow.tasks.add(task)
        data = task.model_dump(mode="json", exclude={"account_id"})
        # the sweeper publishes these (an archive may hold thousands of rows)
        uow.announce(outbox.event("task.updated", account_id, session.id, data, now), swept=True)
    bundles.add_stored(uow.content, session.id, content.items, content.chunks)
    for s in order:
        snapshot = Snapshot(
            id=ids[s.id],
            account_id=account_id,
            session_id=session.id,
            task_id=ids[s.task_id],
            label=s.label,
            source=s.source,
            model=s.model,
            token_total=s.token_total,
            parent_snapshot_id=ids[s.parent_snapshot_id] if s.parent_snapshot_id else None,
            rollback_of=ids[s.rollback_of] if s.rollback_of else None,
            forked_from=ids.get(s.forked_from, s.forked_from) if s.forked_from else None,
            bundle_hash=s.bundle_hash,
            stored_bytes=s.stored_bytes,
            captured_at=s.captured_at,
            created_at=s.created_at,
            usage=s.usage,
        )
        uow.snapshots.add(snapshot, content.manifests[(s.id, 0)])
        for r in s.revisions:
            revision = Revision(
                snapshot_id=snapshot.id,
                seq=r.seq,
                bundle_hash=r.bundle_hash,
                token_total=r.token_total,
                model=r.model,
                created_at=r.created_at,
                stored_bytes=r.stored_bytes,
            )
            uow.snapshots.add_revision(revision, content.manifests[(s.id, r.seq)])
        uow.announce(_snapshot_event(snapshot, now), swept=True)
    for n in archive.checkpoint_namespaces:
        uow.checkpoints.add_namespace(
            account_id, n.thread_id, n.ns, session.id, ids[n.task_id], n.created_at
        )
    for c in archive.checkpoints:
        row = CheckpointRow(
            thread_id=c.thread_id,
            ns=c.ns,
            checkpoint_id=c.checkpoint_id,
            parent_id=c.parent_id,
            session_id=session.id,
            snapshot_id=ids[c.snapshot_id],
            metadata=c.metadata,
            run_id=c.run_id,
            created_at=c.created_at,
        )
        uow.checkpoints.put(account_id, row)
    writes: dict[tuple[str, str, str], list[CheckpointWrite]] = {}
    for w in archive.checkpoint_writes:
        writes.setdefault((w.thread_id, w.ns, w.checkpoint_id), []).append(
            CheckpointWrite(w.task_id, w.idx, w.channel, w.value, w.task_path)
        )
    for (thread_id, ns, checkpoint_id), group in writes.items():
        key = (thread_id, ns, checkpoint_id, session.id)
        uow.checkpoints.add_writes(account_id, key, group, replace=False)
    for state in archive.thread_states:
        uow.threads.add(
            ThreadState(
                account_id=account_id,
                thread_id=state.thread_id,
                user_data=_mapped(state.user_data, ids),
                version=state.version,
                updated_at=state.updated_at,
            )
        )
    for trace in archive.traces:
        if uow.traces.link(account_id, session.id, trace.trace_id, trace.created_at) != session.id:
            raise Conflict(f"trace {trace.trace_id} was linked to another session meanwhile")
    for alias in archive.aliases:
        if uow.traces.add_alias(account_id, alias, session.id) != session.id:
            raise Conflict(f"alias {alias!r} was taken meanwhile")
    return session


def import_session(
    deps: Deps, account_id: str, archive: SessionArchive, keep_ids: bool = False
) -> ImportedSession:
    """Write the archive into the account as it was stored, whole or not at all."""
    order = _check_shape(archive)
    content = _Content(archive)
    ids = _id_map(archive, keep_ids)
    with deps.store.unit(write=False) as uow:  # refused before the object store is touched
        _taken(uow, account_id, archive, ids)
    session_id = ids[archive.session.id]
    for digest, data in content.bodies.items():  # idempotent, before the transaction
        deps.blobs.put(f"{account_id}/{session_id}/{digest}", data)
    now = deps.clock()
    with deps.store.unit() as uow:
        _taken(uow, account_id, archive, ids)  # again, in the writing transaction
        _write(uow, account_id, archive, order, content, ids, now)
    return ImportedSession(
        session_id=session_id,
        ids=ids,
        tasks=len(archive.tasks),
        snapshots=len(archive.snapshots),
        revisions=sum(len(s.revisions) for s in archive.snapshots),
        items=len(archive.items),
        checkpoints=len(archive.checkpoints),
        thread_states=len(archive.thread_states),
    )
