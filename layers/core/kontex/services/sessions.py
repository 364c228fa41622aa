"""Sessions and their task trees."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from kontex import ports
from kontex.domain.errors import Conflict, InvalidInput, NotFound, found
from kontex.domain.models import Session, SessionStatus, Task, TaskStatus, validate_name
from kontex.ids import new_id
from kontex.ports import SessionRepository, TaskRepository
from kontex.services import outbox
from kontex.services.deps import Deps

if TYPE_CHECKING:  # (kontex.port_transport: loads with the first event; kontex.port_pages with
    # the first page, which only a listing makes)
    from kontex.ports import Event, Page

MAX_PAGE = 100
E = TypeVar("E", bound=StrEnum)


def parse_enum(kind: type[E], value: Any, what: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{what} must be one of: {allowed}") from None


# -- cursors: opaque to clients, (created_at, id) inside ------------------------------------


def encode_cursor(created_at: str, row_id: str) -> str:
    raw = json.dumps([created_at, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        if not isinstance(created_at, str) or not isinstance(row_id, str):
            raise ValueError
        if "\x00" in row_id or datetime.fromisoformat(created_at).tzinfo is None:
            raise ValueError  # we write aware times; PostgreSQL refuses NUL
        row_id.encode()  # a lone surrogate (UnicodeEncodeError) is no id either
    except (ValueError, TypeError, json.JSONDecodeError):
        raise InvalidInput("cursor is not valid") from None
    return created_at, row_id


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def page_of(items: list[Any], limit: int) -> Page:
    """``items`` holds up to ``limit + 1`` rows; the extra one means there is a next page."""
    if len(items) > limit:
        last = items[limit - 1]
        return ports.Page(items[:limit], encode_cursor(last.created_at.isoformat(), last.id))
    return ports.Page(items, None)


def _announce(type_: str, row: Session | Task, session_id: str, at: datetime) -> Event:
    """The event of a created session or task: its fields (not its account)."""
    data = row.model_dump(mode="json", exclude={"account_id"})
    return outbox.event(type_, row.account_id, session_id, data, at)


def task_event(task: Task) -> Event:
    """The ``task.updated`` event of a task made by a worker."""
    return _announce("task.updated", task, task.session_id, task.created_at)


# -- sessions ---------------------------------------------------------------------------------


def create_session(
    deps: Deps,
    account_id: str,
    name: str,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Session:
    session = _new_session(deps, account_id, name, description, metadata)
    with deps.store.unit() as uow:
        uow.sessions.add(session)
        uow.announce(_announce("session.updated", session, session.id, session.created_at))
    return session


def _new_session(
    deps: Deps,
    account_id: str,
    name: str,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Session:
    now = deps.clock()
    return Session(
        id=new_id("sess"),
        account_id=account_id,
        name=validate_name(name),
        description=description,
        metadata=metadata or {},
        created_at=now,
        updated_at=now,
    )


class _Claimed(Exception):  # noqa: N818 (not an error: another writer made the session first)
    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


def create_aliased_session(
    deps: Deps, account_id: str, name: str, alias: str, metadata: dict[str, Any]
) -> str:
    """The id of a new session under ``alias`` (the name a trace's spans give it), made in the
    unit that claims the alias; when another writer claimed it first (two span workers meeting
    one new session name at once: concurrent Lambdas, or `kontex dev`'s span processes), that
    session's id, and nothing of this call is written (a second, empty session of the same name
    was left behind before)."""
    session = _new_session(deps, account_id, name, metadata=metadata)
    try:
        with deps.store.unit() as uow:
            uow.sessions.add(session)
            winner = uow.traces.add_alias(account_id, alias, session.id)
            if winner != session.id:
                raise _Claimed(winner)  # rolls the session back
            uow.announce(_announce("session.updated", session, session.id, session.created_at))
    except _Claimed as claimed:
        return claimed.session_id
    return session.id


def get_session(deps: Deps, account_id: str, session_id: str) -> Session:
    with deps.store.unit(write=False) as uow:
        return found(uow.sessions.get(account_id, session_id), f"session {session_id}")


def list_sessions(
    deps: Deps,
    account_id: str,
    status: SessionStatus | None = None,
    limit: int = 20,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page:
    limit = check_limit(limit)
    after = decode_cursor(cursor)
    with deps.store.unit(write=False) as uow:
        listing = ports.SessionListing(limit + 1, after, status, newest_first)
        rows = uow.sessions.page(account_id, listing)
    return page_of(rows, limit)


NEVER_NULL = ("name", "status", "metadata")


def _checked(changes: dict[str, Any], statuses: type[E]) -> dict[str, Any]:
    """A session's or task's changes, their name and status checked. A null sets a field that
    may be null (a description); for one that may not (name, status, metadata) it changes
    nothing, as if the field were left out."""
    changes = {k: v for k, v in changes.items() if not (v is None and k in NEVER_NULL)}
    if "name" in changes:
        changes["name"] = validate_name(changes["name"])
    if "status" in changes:
        changes["status"] = parse_enum(statuses, changes["status"], "status")
    return changes


def _update(deps: Deps, kind: str, account_id: str, row_id: str, changes: dict[str, Any]) -> Any:
    """Change a session or a task (``kind``) and announce it, in one unit of work."""
    now = deps.clock()
    with deps.store.unit() as uow:
        repository: SessionRepository | TaskRepository = (
            uow.sessions if kind == "session" else uow.tasks
        )
        changed: Session | Task | None = repository.update(
            account_id, row_id, {**changes, "updated_at": now}
        )
        if changed is None:
            raise NotFound(f"{kind} {row_id} not found")
        session_id = changed.session_id if isinstance(changed, Task) else changed.id
        uow.announce(_announce(f"{kind}.updated", changed, session_id, now))
    return changed


def update_session(deps: Deps, account_id: str, session_id: str, **changes: Any) -> Session:
    checked = _checked(changes, SessionStatus)
    if not checked:
        return get_session(deps, account_id, session_id)
    return cast(Session, _update(deps, "session", account_id, session_id, checked))


def purge_session(deps: Deps, account_id: str, session_id: str) -> int:
    """Remove every row and blob of the session: the one way snapshots are ever deleted.

    Returns how many blobs went with it.
    """
    with deps.store.unit() as uow:
        if not uow.sessions.purge(account_id, session_id):
            raise NotFound(f"session {session_id} not found")
        data = {"session_id": session_id}
        uow.announce(outbox.event("session.purged", account_id, session_id, data, deps.clock()))
    return deps.blobs.delete_prefix(f"{account_id}/{session_id}/")


# -- tasks ------------------------------------------------------------------------------------


def create_task(
    deps: Deps,
    account_id: str,
    session_id: str,
    name: str,
    parent_task_id: str | None = None,
) -> Task:
    get_session(deps, account_id, session_id)
    if parent_task_id is not None:
        with deps.store.unit(write=False) as uow:
            parent = uow.tasks.get(account_id, parent_task_id)
        if parent is None or parent.session_id != session_id:
            raise NotFound(
                f"parent task {parent_task_id} not found in session {session_id}",
                details={"parent_task_id": parent_task_id},
            )
    now = deps.clock()
    task = Task(
        id=new_id("task"),
        account_id=account_id,
        session_id=session_id,
        parent_task_id=parent_task_id,
        name=validate_name(name),
        created_at=now,
        updated_at=now,
    )
    with deps.store.unit() as uow:
        uow.tasks.add(task)
        uow.announce(_announce("task.updated", task, session_id, now))
    return task


def derived_task(
    deps: Deps,
    account_id: str,
    task_id: str,
    session_id: str,
    name: str,
    parent_task_id: str | None = None,
    status: TaskStatus = TaskStatus.ACTIVE,
) -> Task:
    """The task a queue worker makes under a derived id (written by the caller)."""
    now = deps.clock()
    return Task(
        id=task_id,
        account_id=account_id,
        session_id=session_id,
        parent_task_id=parent_task_id,
        name=name.strip()[:200] or "task",
        status=status,
        created_at=now,
        updated_at=now,
    )


def ensure_task(deps: Deps, task: Task) -> str:
    """The task (a ``derived_task``), made if missing: idempotent for queue workers."""
    try:
        with deps.store.unit() as uow:
            for made in uow.tasks.add_missing([task]):  # none when another delivery made it
                uow.announce(task_event(made))
    except Conflict:  # made meanwhile by another delivery (which announced it)
        pass
    return task.id


def get_task(deps: Deps, account_id: str, task_id: str) -> Task:
    with deps.store.unit(write=False) as uow:
        return found(uow.tasks.get(account_id, task_id), f"task {task_id}")


def update_task(deps: Deps, account_id: str, task_id: str, **changes: Any) -> Task:
    checked = _checked(changes, TaskStatus)
    if not checked:
        return get_task(deps, account_id, task_id)
    return cast(Task, _update(deps, "task", account_id, task_id, checked))


def task_tree(deps: Deps, account_id: str, session_id: str) -> list[dict[str, Any]]:
    """The session's tasks as nested dicts: each task with its ``children``, oldest first."""
    get_session(deps, account_id, session_id)
    with deps.store.unit(write=False) as uow:
        tasks = uow.tasks.of_session(account_id, session_id)
    nodes = {t.id: {**t.model_dump(mode="json"), "children": []} for t in tasks}
    roots: list[dict[str, Any]] = []
    for task in tasks:
        parent = nodes.get(task.parent_task_id) if task.parent_task_id else None
        (parent["children"] if parent else roots).append(nodes[task.id])
    return roots


# -- traces -----------------------------------------------------------------------------------

TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def link_trace(deps: Deps, account_id: str, session_id: str, trace_id: str) -> list[str]:
    """Link an OpenTelemetry trace to the session (a session may have many); returns them all."""
    get_session(deps, account_id, session_id)
    trace_id = trace_id.strip().lower()
    if not TRACE_ID_RE.fullmatch(trace_id) or trace_id == "0" * 32:
        raise InvalidInput("trace_id must be 32 hex characters, not all zero")
    with deps.store.unit() as uow:
        linked_to = uow.traces.link(account_id, session_id, trace_id, deps.clock())
        if linked_to != session_id:
            raise Conflict(
                f"trace {trace_id} is already linked to another session",
                details={"session_id": linked_to},
            )
        return uow.traces.of_session(account_id, session_id)
