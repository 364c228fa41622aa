"""Checkpoints shaped like LangGraph's, over ordinary sessions, tasks and snapshots
(docs/design.md, "Checkpoints").

A thread is a session (made by its first checkpoint); each namespace of it is a task; a
checkpoint is an index row naming the snapshot that holds its state, its parent and its
metadata; pending writes wait in their own table. ``put``, ``put_writes``, ``get`` and one
page of ``page`` are each one unit of work whose cost follows what is new or what is read, not
the length of the thread: a put is a delta write over the checkpoint it names as its base.
Checkpoints stay visible, diffable, searchable and live as the snapshots they are.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kontex.domain.errors import Conflict, InvalidInput, NotFound
from kontex.domain.models import (
    ContextBundle,
    Session,
    Snapshot,
    SnapshotBase,
    Task,
    validate_name,
)
from kontex.ids import new_id
from kontex.ports import CheckpointListing, CheckpointRow, CheckpointWrite, UnitOfWork
from kontex.services import bundles, outbox, sessions, snapshots
from kontex.services.deps import Deps

PAGE_MAX = 100
SCAN = 200  # index rows read per statement while a filter looks for matches
STRATEGIES = ("keep_latest", "delete")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read: its index row, its snapshot and bundle, its pending writes."""

    row: CheckpointRow
    snapshot: Snapshot
    bundle: ContextBundle
    writes: list[CheckpointWrite]


@dataclass(frozen=True)
class ThreadInfo:
    """How a thread's session is named when its first checkpoint makes it."""

    name: str | None = None
    metadata: dict[str, Any] | None = None


def _text(value: str, what: str, limit: int, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > limit or (not value and not empty):
        raise InvalidInput(f"{what} must be {0 if empty else 1} to {limit} characters")
    if "\x00" in value:
        raise InvalidInput(f"{what} must not hold NUL characters")
    return value


def _thread(thread_id: str) -> str:
    return _text(thread_id, "thread_id", 512)


def _ns(ns: str) -> str:
    return _text(ns, "namespace", 512, empty=True)


def _id(checkpoint_id: str, what: str = "checkpoint_id") -> str:
    return _text(checkpoint_id, what, 128)


def encode_cursor(row: CheckpointRow) -> str:
    raw = json.dumps([row.checkpoint_id, row.ns, row.thread_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[str, str, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        checkpoint_id, ns, thread_id = json.loads(raw)
        if not all(isinstance(v, str) and "\x00" not in v for v in (checkpoint_id, ns, thread_id)):
            raise ValueError
        for value in (checkpoint_id, ns, thread_id):
            value.encode()  # a lone surrogate (UnicodeEncodeError) is in no stored id
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidInput("cursor is not valid") from None
    return checkpoint_id, ns, thread_id


# -- the thread's session and its namespaces' tasks ---------------------------------------------

# (account, thread, ns) -> (session id, task id): a namespace's row never changes once made, so
# a writer looks it up once per process. An entry made stale by a purge (delete_thread) meets a
# NotFound or a Conflict (its task or session gone) and is forgotten, and the write retried.
_NAMESPACES: OrderedDict[tuple[str, str, str], tuple[str, str]] = OrderedDict()
_NAMESPACES_MAX = 4096


def _remembered(
    uow: UnitOfWork, account_id: str, thread_id: str, ns: str, now: datetime, info: ThreadInfo
) -> tuple[str, str, bool]:
    """(session id, task id, whether it came from memory) of the namespace."""
    key = (account_id, thread_id, ns)
    found = _NAMESPACES.get(key)
    if found is not None:
        return (*found, True)
    made = _namespace(uow, account_id, thread_id, ns, now, info)
    _NAMESPACES[key] = made
    while len(_NAMESPACES) > _NAMESPACES_MAX:
        _NAMESPACES.popitem(last=False)
    return (*made, False)


def _forget(account_id: str, thread_id: str) -> None:
    for key in [k for k in _NAMESPACES if k[:2] == (account_id, thread_id)]:
        _NAMESPACES.pop(key, None)


class _Stale(Conflict):
    """A namespace remembered by this process is gone (purged): retried after a lookup."""


def _namespace(
    uow: UnitOfWork,
    account_id: str,
    thread_id: str,
    ns: str,
    now: datetime,
    info: ThreadInfo,
) -> tuple[str, str]:
    """(session id, task id) of the thread's namespace, made in ``uow`` when missing (a
    concurrent maker of the same one meets a ``Conflict`` and retries)."""
    known = uow.checkpoints.namespaces(account_id, thread_id)
    if ns in known:
        return known[ns]
    if known:
        session_id = next(iter(known.values()))[0]
    else:
        session = Session(
            id=new_id("sess"),
            account_id=account_id,
            name=validate_name(info.name or f"checkpoints {thread_id}"[:200]),
            metadata=info.metadata or {"checkpoints": {"thread_id": thread_id}},
            created_at=now,
            updated_at=now,
        )
        uow.sessions.add(session)
        data = session.model_dump(mode="json", exclude={"account_id"})
        uow.announce(outbox.event("session.updated", account_id, session.id, data, now))
        session_id = session.id
    task = Task(
        id=new_id("task"),
        account_id=account_id,
        session_id=session_id,
        name=(ns or "checkpoints")[:200].strip() or "checkpoints",
        created_at=now,
        updated_at=now,
    )
    uow.tasks.add(task)
    uow.announce(sessions.task_event(task))
    uow.checkpoints.add_namespace(account_id, thread_id, ns, session_id, task.id, now)
    return session_id, task.id


# -- writing ------------------------------------------------------------------------------------


def put(
    deps: Deps,
    account_id: str,
    row: CheckpointRow,
    bundle: ContextBundle,
    *,
    base: SnapshotBase | None = None,
    thread: ThreadInfo = ThreadInfo(),
) -> tuple[CheckpointRow, Snapshot]:
    """Write the checkpoint's state as the next snapshot of its namespace's task (a delta
    over ``base`` when given) and index it, in one unit of work. ``row``'s session and
    snapshot ids are filled in; a checkpoint id put again points at its new snapshot."""
    _thread(row.thread_id), _ns(row.ns), _id(row.checkpoint_id)
    if row.parent_id is not None:
        _id(row.parent_id, "parent_id")
    now = deps.clock()
    if bundle.captured_at is None:
        bundle = bundle.model_copy(update={"captured_at": now})
    plan = bundles.plan(bundle)
    label = f"checkpoint {row.checkpoint_id}" + (f" after {row.parent_id}" if row.parent_id else "")
    large = 0
    if plan.large_bodies:  # object-store writes come first (idempotent): the session first
        with deps.store.unit() as uow:
            session_id, _ = _namespace(uow, account_id, row.thread_id, row.ns, now, thread)
        large = bundles.put_large_bodies(deps.blobs, account_id, session_id, plan)

    def attempt() -> tuple[CheckpointRow, Snapshot]:
        remembered = False
        try:
            with deps.store.unit() as uow:
                session_id, task_id, remembered = _remembered(
                    uow, account_id, row.thread_id, row.ns, now, thread
                )
                snapshot = snapshots.seal(
                    uow, account_id, task_id, label[:500], bundle, plan, now, base=base,
                    large_bytes=large,
                )  # fmt: skip
                stored = replace(
                    row, session_id=session_id, snapshot_id=snapshot.id, created_at=now
                )
                uow.checkpoints.put(account_id, stored)
            return stored, snapshot
        except (NotFound, Conflict) as error:
            _forget(account_id, row.thread_id)
            if remembered:
                raise _Stale(str(error)) from error
            raise

    return snapshots.retrying(deps, None, attempt)


def put_writes(
    deps: Deps,
    account_id: str,
    key: tuple[str, str, str],
    writes: Sequence[CheckpointWrite],
    replace_: bool,
    thread: ThreadInfo = ThreadInfo(),
) -> None:
    """Store pending writes of the checkpoint ``key`` (thread id, ns, checkpoint id): a write
    already stored (same task and index) is kept, or replaced when ``replace_``. The checkpoint
    need not be stored yet (LangGraph may send a step's writes while the put of its checkpoint
    is still on its way): a new thread's session is made as a put would make it."""
    thread_id, ns, checkpoint_id = _thread(key[0]), _ns(key[1]), _id(key[2])
    now = deps.clock()

    def attempt() -> None:
        remembered = False
        try:
            with deps.store.unit() as uow:
                session_id, _, remembered = _remembered(uow, account_id, thread_id, ns, now, thread)
                uow.checkpoints.add_writes(
                    account_id, (thread_id, ns, checkpoint_id, session_id), writes, replace_
                )
        except (NotFound, Conflict) as error:
            _forget(account_id, thread_id)
            if remembered:
                raise _Stale(str(error)) from error
            raise

    snapshots.retrying(deps, None, attempt)


# -- reading ------------------------------------------------------------------------------------


def _read(
    deps: Deps, uow: UnitOfWork, account_id: str, rows: list[CheckpointRow]
) -> list[Checkpoint]:
    writes: dict[tuple[str, str, str], list[CheckpointWrite]] = {}
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        groups.setdefault((row.thread_id, row.ns), []).append(row.checkpoint_id)
    for (thread_id, ns), ids in groups.items():
        for checkpoint_id, found in uow.checkpoints.writes(account_id, thread_id, ns, ids).items():
            writes[(thread_id, ns, checkpoint_id)] = found
    out = []
    for row in rows:
        snapshot, _, bundle = snapshots.read_in(deps, uow, account_id, row.snapshot_id, None)
        out.append(
            Checkpoint(row, snapshot, bundle, writes[(row.thread_id, row.ns, row.checkpoint_id)])
        )
    return out


def get(
    deps: Deps, account_id: str, thread_id: str, ns: str, checkpoint_id: str | None
) -> Checkpoint:
    """The checkpoint, or the namespace's latest; ``NotFound`` when there is none."""
    _thread(thread_id), _ns(ns)
    with deps.store.unit(write=False) as uow:
        found = uow.checkpoints.read(account_id, thread_id, ns, checkpoint_id)
        if found is None:
            which = f"checkpoint {checkpoint_id!r}" if checkpoint_id else "a checkpoint"
            raise NotFound(f"thread {thread_id!r} has no {which} in namespace {ns!r}")
        row, snapshot, manifest, writes = found
        _, _, bundle = snapshots.read_in(
            deps, uow, account_id, row.snapshot_id, None, (snapshot, manifest)
        )
        return Checkpoint(row, snapshot, bundle, writes)


def _matches(metadata: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    return not wanted or all(k in metadata and metadata[k] == v for k, v in wanted.items())


def page(
    deps: Deps,
    account_id: str,
    listing: CheckpointListing,
    filter_: dict[str, Any] | None = None,
    cursor: str | None = None,
) -> tuple[list[Checkpoint], str | None]:
    """One page of checkpoints, newest first (by id), of the account or one thread (and
    namespace), older than ``listing.before``, whose metadata holds every pair of ``filter_``;
    with the cursor of the next page, if any."""
    if listing.thread_id is not None:
        _thread(listing.thread_id)
    if listing.ns is not None:
        _ns(listing.ns)
    if not 1 <= listing.limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be 1 to {PAGE_MAX}")
    after = decode_cursor(cursor)
    chosen: list[CheckpointRow] = []
    with deps.store.unit(write=False) as uow:
        while len(chosen) <= listing.limit:
            size = listing.limit + 1 if not filter_ else SCAN
            rows = uow.checkpoints.page(account_id, replace(listing, limit=size, after=after))
            chosen += [r for r in rows if _matches(r.metadata, filter_)]
            if len(rows) < size:
                break
            after = (rows[-1].checkpoint_id, rows[-1].ns, rows[-1].thread_id)
        more = len(chosen) > listing.limit
        chosen = chosen[: listing.limit]
        found = _read(deps, uow, account_id, chosen)
    return found, encode_cursor(chosen[-1]) if more else None


# -- whole threads ------------------------------------------------------------------------------


def delete_thread(deps: Deps, account_id: str, thread_id: str) -> None:
    """Remove the thread: its session with every snapshot, checkpoint and write (a purge)."""
    _thread(thread_id)
    _forget(account_id, thread_id)
    with deps.store.unit(write=False) as uow:
        session_ids = uow.checkpoints.sessions_of(account_id, thread_id)
    for session_id in session_ids:
        with contextlib.suppress(NotFound):  # purged meanwhile
            sessions.purge_session(deps, account_id, session_id)


def prune(deps: Deps, account_id: str, thread_ids: Sequence[str], strategy: str) -> int:
    """Remove checkpoints of the threads from the index with their pending writes:
    ``keep_latest`` all but each namespace's latest, ``delete`` all. Their snapshots stay in
    the session's history (snapshots are immutable); ``delete_thread`` removes them too."""
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy must be one of {list(STRATEGIES)}")
    removed = 0
    with deps.store.unit() as uow:
        for thread_id in dict.fromkeys(_thread(t) for t in thread_ids):
            listing = CheckpointListing(limit=0, thread_id=thread_id)
            removed += uow.checkpoints.remove(account_id, listing, strategy == "keep_latest")
    return removed


def delete_runs(deps: Deps, account_id: str, run_ids: Sequence[str]) -> int:
    """Remove the checkpoints whose metadata names one of the runs, with their writes."""
    wanted = tuple(dict.fromkeys(_text(r, "run_id", 512) for r in run_ids))
    if not wanted:
        return 0
    with deps.store.unit() as uow:
        return uow.checkpoints.remove(
            account_id, CheckpointListing(limit=0, run_ids=wanted), keep_latest=False
        )


def copy_thread(
    deps: Deps, account_id: str, source: str, target: str, thread: ThreadInfo = ThreadInfo()
) -> int:
    """Copy every checkpoint and pending write of ``source`` to the new thread ``target``, in
    one unit: a new session whose snapshots hold the same content (stored in it), the same
    checkpoint ids, parents and metadata. Returns how many checkpoints were copied."""
    _thread(source), _thread(target)
    now = deps.clock()
    with deps.store.unit() as uow:
        if uow.checkpoints.namespaces(account_id, target):
            raise Conflict(f"thread {target!r} already has checkpoints")
        rows = uow.checkpoints.page(
            account_id, CheckpointListing(limit=1_000_000, thread_id=source)
        )
        copied = 0
        for row in sorted(rows, key=lambda r: (r.ns, r.checkpoint_id)):  # oldest first
            snapshot, _, bundle = snapshots.read_in(deps, uow, account_id, row.snapshot_id, None)
            session_id, task_id = _namespace(uow, account_id, target, row.ns, now, thread)
            plan = bundles.plan(bundle)
            large = bundles.put_large_bodies(deps.blobs, account_id, session_id, plan)
            made = snapshots.seal(
                uow, account_id, task_id, snapshot.label, bundle, plan, now, large_bytes=large
            )
            uow.checkpoints.put(
                account_id,
                replace(row, thread_id=target, session_id=session_id, snapshot_id=made.id),
            )
            writes = uow.checkpoints.writes(account_id, source, row.ns, [row.checkpoint_id])
            uow.checkpoints.add_writes(
                account_id,
                (target, row.ns, row.checkpoint_id, session_id),
                writes[row.checkpoint_id],
                replace=True,
            )
            copied += 1
    return copied
