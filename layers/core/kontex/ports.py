"""Ports: the small protocols the services depend on. Adapters live in ``kontex.adapters``."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kontex.later import later_from

if TYPE_CHECKING:
    from kontex.domain.models import (
        Account,
        ApiKey,
        Session,
        Snapshot,
        Task,
        ThreadState,
    )
    from kontex.port_pages import (
        Page as Page,
    )
    from kontex.port_pages import (
        SessionListing as SessionListing,
    )
    from kontex.port_transport import (
        Event as Event,
    )
    from kontex.port_transport import (
        UpstreamRequest as UpstreamRequest,
    )
    from kontex.port_transport import (
        UpstreamResponse as UpstreamResponse,
    )
    from kontex.port_values import (
        CheckpointListing as CheckpointListing,
    )
    from kontex.port_values import (
        CheckpointRow as CheckpointRow,
    )
    from kontex.port_values import (
        CheckpointWrite as CheckpointWrite,
    )
    from kontex.port_values import (
        HeldRange as HeldRange,
    )
    from kontex.port_values import (
        IndexFilter as IndexFilter,
    )
    from kontex.port_values import (
        IndexHit as IndexHit,
    )
    from kontex.port_values import (
        IndexQuery as IndexQuery,
    )
    from kontex.port_values import (
        ItemRow as ItemRow,
    )
    from kontex.port_values import (
        LiveConnection as LiveConnection,
    )
    from kontex.port_values import (
        ObjectFilter as ObjectFilter,
    )
    from kontex.port_values import (
        PipelineLag as PipelineLag,
    )
    from kontex.port_values import (
        Point as Point,
    )
    from kontex.port_values import (
        Revision as Revision,
    )
    from kontex.port_values import (
        SearchChange as SearchChange,
    )
    from kontex.port_values import (
        SparseVector as SparseVector,
    )

# The value types only some paths use live in kontex.port_values and load with the first use of
# one (PEP 562): every frozen dataclass created at import is paid by every cold start
# (docs/benchmarks.md, "Cold start, fourth round (issue 25)").
LATER = frozenset(
    {
        "CheckpointListing",
        "CheckpointRow",
        "CheckpointWrite",
        "HeldRange",
        "IndexFilter",
        "IndexHit",
        "IndexQuery",
        "ItemRow",
        "LiveConnection",
        "ObjectFilter",
        "PipelineLag",
        "Point",
        "Revision",
        "SearchChange",
        "SparseVector",
    }
)


# An event (the outbox's) and the proxy's upstream request and answer live in
# kontex.port_transport, likewise: the REST function's first answer (a read) uses none of them
# (docs/benchmarks.md, "Cold start of the api, seventh round (issue 25)"); the first event made,
# the proxy and the local queue load it. (A pipeline's lag, which the proxy does not make, is in
# kontex.port_values since the ninth round.)
LATER_TRANSPORT = frozenset({"Event", "UpstreamRequest", "UpstreamResponse"})


# A page of results and a session listing's query live in kontex.port_pages, likewise: of the
# functions' first requests only the REST function's (GET /v1/sessions) makes them
# (docs/benchmarks.md, "Cold start, ninth round").
LATER_PAGES = frozenset({"Page", "SessionListing"})


__getattr__ = later_from(
    globals(),
    {
        "kontex.port_values": LATER,
        "kontex.port_transport": LATER_TRANSPORT,
        "kontex.port_pages": LATER_PAGES,
    },
)


def event_message(event: Event) -> str:
    """The message body every event consumer reads, on SNS and on the local topic alike:
    ``{id, type, account_id, session_id, data}`` (with ``data`` as the event's ``data_json``
    when it has it: the same text, not encoded again)."""
    head = {
        "id": event.id,
        "type": event.type,
        "account_id": event.account_id,
        "session_id": event.session_id,
    }
    if event.data_json is not None:
        text = json.dumps(head, separators=(",", ":"), default=str)
        return f'{text[:-1]},"data":{event.data_json}}}'
    return json.dumps({**head, "data": event.data}, separators=(",", ":"), default=str)


# -- the store: one unit of work, small repositories -----------------------------------------
#
# ``with deps.store.unit() as uow:`` is the only way to change state (docs/design.md, "The unit
# of work"): one transaction; the repositories hang off the unit; ``uow.announce(event)`` writes
# the event's outbox row in the same transaction, and the unit publishes it after the commit.
# A read is a unit too (``unit(write=False)``): it never waits for a writer.


class KeyRepository(Protocol):
    """Accounts, their API keys (stored as keyed hashes) and the keys' rate-limit windows."""

    def add_account(self, account: Account) -> None: ...
    def account(self, account_id: str) -> Account | None: ...
    def add(self, key: ApiKey, key_hash: str) -> None: ...
    def find(self, key_hash: str) -> ApiKey | None: ...
    def of_account(self, account_id: str) -> list[ApiKey]: ...
    def revoke(self, account_id: str, key_id: str, at: datetime) -> bool: ...
    def hit(self, key_id: str, kind: str, window_start: int, shard: int, uses: int = 1) -> int:
        """Count ``uses`` uses of the key in the fixed window, in its row ``shard``; returns
        the window's count over all its shards."""
        ...

    def find_and_hit(
        self, key_hash: str, kind: str, window_start: int, shard: int
    ) -> tuple[ApiKey | None, int]:
        """``find`` and, for a key not revoked, ``hit``, in one round trip."""
        ...


class SessionRepository(Protocol):
    def add(self, session: Session) -> None: ...
    def get(self, account_id: str, session_id: str) -> Session | None: ...
    def page(self, account_id: str, listing: SessionListing) -> list[Session]: ...
    def update(self, account_id: str, session_id: str, changes: dict[str, Any]) -> Session | None:
        """The session as changed; None when it is not the account's."""
        ...

    def purge(self, account_id: str, session_id: str) -> bool:
        """The one way to remove snapshots: the session and everything in it."""
        ...

    def inactive(
        self, cutoff: datetime, account_id: str | None, limit: int
    ) -> list[dict[str, Any]]: ...


class TaskRepository(Protocol):
    def add(self, task: Task) -> None: ...
    def add_missing(self, tasks: Sequence[Task]) -> list[Task]:
        """Insert the tasks (parents before children) that do not exist yet; returns those."""
        ...

    def add_missing_later(self, tasks: Sequence[Task]) -> Callable[[], list[Task]]:
        """``add_missing`` whose answer comes with the unit's next round trip (a read's, such
        as ``SnapshotRepository.lock_heads_and_lookup``): the function returned gives the
        tasks it inserted."""
        ...

    def get(self, account_id: str, task_id: str) -> Task | None: ...
    def of_session(self, account_id: str, session_id: str) -> list[Task]: ...
    def update(self, account_id: str, task_id: str, changes: dict[str, Any]) -> Task | None: ...


class SnapshotRepository(Protocol):
    """Sealed snapshot rows, their revisions (enrichments) and each task's head."""

    def lock_head(
        self, account_id: str, task_id: str
    ) -> tuple[Task, str | None, bytes | None] | None:
        """The task, its head snapshot id and the head's manifest, the task locked against
        concurrent writers until the unit ends."""
        ...

    def lock_head_and_read(
        self, account_id: str, task_id: str, snapshot_id: str | None
    ) -> tuple[tuple[Task, str | None, bytes | None], tuple[Snapshot, bytes | None] | None] | None:
        """``lock_head`` and ``stored`` (of the head, when ``snapshot_id`` is None), in one
        round trip."""
        ...

    def lock_head_and_lookup(
        self, account_id: str, task_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[tuple[Task, str | None, bytes | None], dict[bytes, int], dict[bytes, bytes]] | None:
        """``lock_head`` and ``content.lookup`` in the task's session, in one round trip."""
        ...

    def lock_heads_and_lookup(
        self,
        snapshot_ids: Sequence[str],
        tasks: Sequence[tuple[str, str]],
        content_of: dict[str, tuple[Sequence[bytes], Sequence[bytes]]],
    ) -> tuple[
        set[str],
        dict[tuple[str, str], tuple[Task, str | None, bytes | None]],
        dict[str, tuple[dict[bytes, int], dict[bytes, bytes]]],
    ]:
        """A batch's writes prepared in one round trip: which of ``snapshot_ids`` are stored,
        the (account_id, task_id) ``tasks`` locked with their heads (``lock_head``; a task not
        of its account is absent), and per session the ``content.lookup`` of ``content_of``
        (session -> item and chunk addresses)."""
        ...

    def exists(self, snapshot_id: str) -> bool: ...
    def existing(self, snapshot_ids: Sequence[str]) -> set[str]:
        """Which of these snapshot ids are stored (one query a few hundred ids)."""
        ...

    def get(self, account_id: str, snapshot_id: str) -> Snapshot | None: ...
    def stored(self, account_id: str, snapshot_id: str) -> tuple[Snapshot, bytes | None] | None:
        """The snapshot as it stands (latest revision) with its manifest."""
        ...

    def head(self, account_id: str, task_id: str) -> tuple[Snapshot, bytes | None] | None:
        """The task's latest snapshot as it stands, with its manifest."""
        ...

    def page(
        self, account_id: str, session_id: str, limit: int, after: tuple[str, str] | None
    ) -> list[Snapshot]: ...
    def revisions(self, account_id: str, snapshot_id: str) -> list[Revision]: ...
    def revision(self, account_id: str, snapshot_id: str, seq: int) -> Revision | None: ...
    def revision_count(self, snapshot_id: str) -> int: ...
    def add(self, snapshot: Snapshot, manifest: bytes) -> None:
        """Insert the sealed row and make it its task's head."""
        ...

    def add_many(self, snapshots: Sequence[tuple[Snapshot, bytes]]) -> None:
        """Insert sealed rows (each after its parent) and make the last of each task its
        head: one statement per table."""
        ...

    def add_revision(self, revision: Revision, manifest: bytes) -> None: ...


class ContentRepository(Protocol):
    """Each distinct message, tool call, file, log event and reasoning text of a session
    (items), and the chunks of their lists, stored once per session."""

    def lookup(
        self, session_id: str, items: Sequence[bytes], chunks: Sequence[bytes]
    ) -> tuple[dict[bytes, int], dict[bytes, bytes]]:
        """Which items (their tokens) and chunks (their refs) the session has: one query."""
        ...

    def known_items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, int]: ...
    def items(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]: ...
    def chunks(self, session_id: str, addresses: Sequence[bytes]) -> dict[bytes, bytes]: ...
    def add_items(self, session_id: str, at: datetime, rows: Sequence[ItemRow]) -> None: ...
    def add_chunks(self, session_id: str, chunks: dict[bytes, bytes]) -> None: ...


class QueryRepository(Protocol):
    """The read model of the query and usage views."""

    def objects(
        self, account_id: str, where: ObjectFilter, limit: int, after: tuple[str, str] | None
    ) -> list[dict[str, Any]]:
        """Distinct messages, each once, or tool calls, each once in its latest state; in the
        order they first appeared."""
        ...

    def session_stats(self, account_id: str, session_id: str) -> dict[str, Any]: ...
    def snapshot_counts(self, account_id: str, session_id: str, edges: list[datetime]) -> list[int]:
        """The session's snapshots made before ``edges[0]``, between each two edges, and from
        the last on (``len(edges) + 1`` counts)."""
        ...

    def usage(self, account_id: str, month_start: datetime) -> dict[str, Any]: ...


class SpanRepository(Protocol):
    """OTLP spans as received, until the span worker has made them snapshots."""

    def add(
        self,
        spans: Sequence[tuple[str, dict[str, Any]]],
        at: datetime,
        done: Collection[tuple[str, str, str]] = (),
        bodies: Sequence[str] | None = None,
    ) -> None:
        """Store (account_id, span) pairs not seen before; those whose (account_id, trace_id,
        span_id) is in ``done`` stored as processed. ``bodies``: the spans' stored texts
        (``otlp.span.body``), in order, when the caller encoded them before its unit of work."""
        ...

    def of_traces(
        self, traces: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The spans of each (account_id, trace_id), in start order."""
        ...

    def mark_done(self, spans: Sequence[tuple[str, str, str]]) -> None: ...


class TraceRepository(Protocol):
    """How spans find their session: traces linked to sessions, and sessions' other names."""

    def link(self, account_id: str, session_id: str, trace_id: str, at: datetime) -> str:
        """Link the trace unless it is linked; returns the session it is linked to."""
        ...

    def of_session(self, account_id: str, session_id: str) -> list[str]: ...
    def sessions_of(self, traces: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The session each linked (account_id, trace_id) is linked to; unlinked ones absent."""
        ...

    def sessions_named(self, names: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The session each (account_id, name) names: a session id of the account, else an
        alias of one; names that match neither are absent."""
        ...

    def alias(self, account_id: str, alias: str) -> str | None: ...
    def add_alias(self, account_id: str, alias: str, session_id: str) -> str:
        """Name the session by ``alias`` unless the alias is taken; returns its session."""
        ...


class ThreadRepository(Protocol):
    def put(self, account_id: str, thread_id: str, user_data: str, at: datetime) -> ThreadState: ...
    def add(self, state: ThreadState) -> None:
        """Insert a state as stored elsewhere (an import), its version and time kept."""
        ...

    def get(self, account_id: str, thread_id: str) -> ThreadState | None: ...
    def delete(self, account_id: str, thread_id: str) -> bool: ...


class CheckpointRepository(Protocol):
    """Checkpoints of threads: which session and task hold a thread's namespace, the index of
    its checkpoints and their pending writes."""

    def namespaces(self, account_id: str, thread_id: str) -> dict[str, tuple[str, str]]:
        """The thread's namespaces: ns -> (session id, task id); empty for an unknown thread."""
        ...

    def add_namespace(
        self, account_id: str, thread_id: str, ns: str, session_id: str, task_id: str, at: datetime
    ) -> None: ...
    def put(self, account_id: str, row: CheckpointRow) -> None:
        """Add the checkpoint, or point an existing one (same id) at its new snapshot."""
        ...

    def read(
        self, account_id: str, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> tuple[CheckpointRow, Snapshot, bytes | None, list[CheckpointWrite]] | None:
        """``get`` with the checkpoint's snapshot (as it stands: its manifest) and its pending
        writes, sent together (one round trip on PostgreSQL)."""
        ...

    def page(self, account_id: str, listing: CheckpointListing) -> list[CheckpointRow]: ...
    def writes(
        self, account_id: str, thread_id: str, ns: str, checkpoint_ids: Sequence[str]
    ) -> dict[str, list[CheckpointWrite]]:
        """Pending writes of each checkpoint, in (task_path, task_id, idx) order."""
        ...

    def add_writes(
        self,
        account_id: str,
        key: tuple[str, str, str, str],
        writes: Sequence[CheckpointWrite],
        replace: bool,
    ) -> None:
        """Store writes of the checkpoint ``key`` (thread id, ns, checkpoint id, session id);
        one already stored (same task, idx) is kept, or replaced when ``replace``."""
        ...

    def sessions_of(self, account_id: str, thread_id: str) -> list[str]: ...
    def remove(self, account_id: str, listing: CheckpointListing, keep_latest: bool) -> int:
        """Remove the checkpoints ``listing`` selects (its limit ignored) and their writes;
        ``keep_latest``: all but each namespace's latest. Their snapshots stay."""
        ...


class ArchiveRepository(Protocol):
    """A session's rows as stored, for its archive (docs/export-format.md). Reads only: an
    import writes through the repository of each aggregate."""

    def snapshots(self, account_id: str, session_id: str) -> list[tuple[Snapshot, bytes | None]]:
        """The sealed rows as first written (without revisions), oldest first, with their
        manifests; ``usage`` is what each row counts in the stats (its usage columns)."""
        ...

    def revisions(self, account_id: str, session_id: str) -> list[Revision]:
        """Every revision of the session's snapshots, with its manifest."""
        ...

    def items(self, session_id: str) -> list[tuple[ItemRow, datetime]]:
        """Every item of the session with its first-seen time, by address."""
        ...

    def chunks(self, session_id: str) -> dict[bytes, bytes]: ...
    def checkpoints(
        self, account_id: str, session_id: str
    ) -> tuple[
        list[dict[str, Any]], list[CheckpointRow], list[tuple[str, str, str, CheckpointWrite]]
    ]:
        """Namespaces (thread_id, ns, task_id, created_at), checkpoints and pending writes
        (thread id, ns, checkpoint id, write) of the session."""
        ...

    def thread_states(self, account_id: str, naming: str) -> list[ThreadState]:
        """The account's thread states whose document holds ``naming``."""
        ...

    def traces(self, account_id: str, session_id: str) -> list[tuple[str, datetime]]: ...
    def aliases(self, account_id: str, session_id: str) -> list[str]: ...
    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` name a session, task or snapshot, in any account."""
        ...


class ConnectionRepository(Protocol):
    """The live feed's WebSocket connections, their subscriptions and deliveries."""

    def open(self, connection_id: str, at: datetime, expires_at: datetime) -> None:
        """Record a new (unauthenticated) connection; a second call for one id changes nothing."""
        ...

    def get(self, connection_id: str, now: datetime) -> LiveConnection | None:
        """The connection, None when unknown or expired."""
        ...

    def authenticate(self, connection_id: str, account_id: str) -> bool: ...
    def subscribe(self, connection_id: str, account_id: str, session_id: str) -> None: ...
    def unsubscribe(self, connection_id: str, session_id: str) -> bool: ...
    def subscribers(self, account_id: str, session_id: str, now: datetime) -> list[str]:
        """Ids of the live, authenticated connections of the account subscribed to the session."""
        ...

    def subscribed(
        self, sessions: Sequence[tuple[str, str]], now: datetime
    ) -> set[tuple[str, str]]:
        """Of the (account_id, session_id) pairs, those with at least one subscriber (as
        ``subscribers`` counts them): a batch of events looked up in one statement."""
        ...

    def claim_deliveries(
        self, event_id: str, connection_ids: Sequence[str], at: datetime
    ) -> list[str]:
        """Record that the event goes to these connections; returns those not recorded before
        (an event redelivered by the queue is posted once per connection)."""
        ...

    def release_delivery(self, event_id: str, connection_id: str) -> None:
        """Forget a claimed delivery whose post failed, so a retry posts it."""
        ...

    def remove(self, connection_id: str) -> bool: ...
    def remove_expired(self, now: datetime, delivered_before: datetime) -> int:
        """Drop expired connections, and delivery records older than ``delivered_before``."""
        ...


class OutboxRepository(Protocol):
    """Events written with their changes (``UnitOfWork.announce``) and not yet published."""

    def unpublished(self, before: datetime, limit: int) -> list[Event]: ...
    def get(self, event_ids: Sequence[str]) -> list[Event]: ...
    def delete(self, event_ids: Sequence[str]) -> None:
        """Remove published events: a row left in the outbox is one still to publish."""
        ...


class SearchChangeRepository(Protocol):
    """Where each point enters and leaves the chains of snapshots (services/search.py): a
    search hit is a point, mapped back here to the snapshots that hold it."""

    def replace(self, snapshot_id: str, changes: Sequence[SearchChange]) -> None:
        """The snapshot's changes are these (any recorded before are replaced)."""
        ...

    def points_of(
        self, account_id: str, session_id: str | None = None, task_id: str | None = None
    ) -> set[str]:
        """The points the session's (or task's) snapshots hold or held."""
        ...

    def changes(
        self,
        account_id: str,
        point_ids: Sequence[str],
        session_id: str | None = None,
        task_id: str | None = None,
    ) -> list[SearchChange]:
        """The changes of these points, by point, session, task, then along the chain."""
        ...

    def snapshots_in(
        self, account_id: str, ranges: Sequence[HeldRange], limit: int
    ) -> list[list[Snapshot]]:
        """Per range, up to ``limit`` of its snapshots, newest first, each checked against its
        seal as any snapshot read is."""
        ...

    def child_of(self, account_id: str, task_id: str, snapshot_id: str) -> str | None:
        """The snapshot written after this one on its task, if any."""
        ...

    def orphaned_by(self, account_id: str, session_id: str) -> list[str]:
        """The points the session holds that no other session of the account holds."""
        ...

    def forget(self, account_id: str, session_id: str) -> None:
        """Drop the session's changes."""
        ...


class UpgradeRepository(Protocol):
    """Rows of older versions, read once by ``kontex migrate``: the v1 engine's, and the
    thread-state documents that indexed LangGraph threads before the checkpoint API."""

    def v1_rows(self) -> list[dict[str, Any]]: ...
    def v1_chain(self, session_id: str, head: str) -> list[str]: ...
    def set_v2_manifest(
        self, snapshot_id: str, seq: int, manifest: bytes, bundle_hash: str
    ) -> None: ...
    def seal_unsealed(self, limit: int) -> int:
        """Seal up to ``limit`` rows written before seals existed (``domain/seal.py``), as
        they stand; returns how many (0: none left)."""
        ...

    def langgraph_documents(self) -> list[ThreadState]:
        """Thread-state documents written by the LangGraph saver of before the checkpoint API."""
        ...

    def task_snapshots(self, task_id: str) -> list[tuple[str, str]]:
        """(snapshot id, label) of every snapshot of the task, oldest first."""
        ...


class UnitOfWork(Protocol):
    """One transaction: committed when the ``with`` block ends, rolled back if it raises.

    Writes whose answer nobody reads (snapshot rows, items, outbox rows) are sent together
    before the next read or at the commit (one pipelined round trip on PostgreSQL).
    """

    @property
    def keys(self) -> KeyRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def snapshots(self) -> SnapshotRepository: ...
    @property
    def content(self) -> ContentRepository: ...
    @property
    def queries(self) -> QueryRepository: ...
    @property
    def spans(self) -> SpanRepository: ...
    @property
    def traces(self) -> TraceRepository: ...
    @property
    def threads(self) -> ThreadRepository: ...
    @property
    def checkpoints(self) -> CheckpointRepository: ...
    @property
    def connections(self) -> ConnectionRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def upgrade(self) -> UpgradeRepository: ...
    @property
    def archive(self) -> ArchiveRepository: ...
    @property
    def search_changes(self) -> SearchChangeRepository: ...

    def announce(self, event: Event, *, swept: bool = False) -> None:
        """Write the event's outbox row in this transaction; it is published after the commit
        (``swept``: by the sweeper, a few seconds later, as a bulk write's many events are)."""
        ...


class Store(Protocol):
    """The relational store (SQLite locally, Aurora PostgreSQL on AWS). Every read and write of
    tenant data takes the ``account_id`` it is scoped to; a row of another account is absent.
    """

    def migrate(self) -> list[str]: ...
    def unit(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> AbstractContextManager[UnitOfWork]:
        """A unit of work; ``write=False`` for a read that never waits for a writer;
        ``durable=False`` for writes whose loss in a crash is harmless (a request counted, an
        outbox row published): PostgreSQL commits them without waiting for the disk;
        ``autocommit=True`` for a write of one round trip that needs no transaction around it
        (a count): PostgreSQL commits the round trip's statements as it runs them, so the row
        locks they take are not held while the answer travels back and a COMMIT comes."""
        ...

    def publish_with(self, publish: Callable[[Sequence[Event]], object]) -> None:
        """What runs after a unit commits with announced events (the outbox's publisher)."""
        ...


class BlobStore(Protocol):
    """Opaque objects by key. Writes never overwrite: a key, once written, keeps its bytes."""

    def put(self, key: str, data: bytes) -> bool:
        """Write ``data`` unless ``key`` exists; True when this call wrote it."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; ``NotFound`` when absent."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[bytes]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def size_of_prefix(self, prefix: str) -> int: ...


class Events(Protocol):
    """Where the outbox relay publishes what changed (live feed, embedding): SNS/SQS on AWS.

    ``publish`` raises when the event did not go out; the outbox keeps it for the sweeper.
    """

    def publish(self, event: Event) -> None: ...


@runtime_checkable
class BatchEvents(Events, Protocol):
    """Events that also go out several at once: one queue commit locally, SNS batches of ten
    on AWS. Returns the ids of those published (the rest stay in the outbox)."""

    def publish_many(self, events: Sequence[Event]) -> list[str]: ...


class ConnectionGone(Exception):
    """The WebSocket connection no longer exists (API Gateway's ``GoneException``)."""


class Connections(Protocol):
    """Writes to live WebSocket connections: API Gateway's Management API on AWS, the open
    sockets of ``kontex dev`` locally."""

    def post(self, connection_id: str, data: bytes) -> None:
        """Send one message; raises ``ConnectionGone`` when the connection is gone."""
        ...

    def close(self, connection_id: str) -> None: ...


class Queue(Protocol):
    """Named work queues (SQS on AWS, an in-process queue locally)."""

    def send(
        self, queue: str, bodies: Sequence[str], delay_seconds: int = 0, *, durable: bool = True
    ) -> None:
        """Queue messages, delivered no sooner than ``delay_seconds`` from now. Once it returns
        they survive a crash of the process; ``durable`` (the default) asks that they survive
        a power loss too (the local queue: an fsync; SQS always is)."""
        ...


PIPELINES = ("spans", "capture", "feed", "embed")  # the queues whose lag /health reports


class Pipelines(Protocol):
    """The lag of each pipeline (the local queue file; SQS and CloudWatch on AWS)."""

    def lag(self) -> list[PipelineLag]: ...


# -- search -----------------------------------------------------------------------------------


class Embedder(Protocol):
    """Text to dense vectors (Voyage AI, or the offline model). Raises ``Transient`` when the
    service is down or keeps refusing."""

    @property
    def name(self) -> str:
        """The model, as the collection and the points record it."""
        ...

    @property
    def dimensions(self) -> int: ...

    @property
    def max_chars(self) -> int:
        """A chunk of at most this many characters fits the model's input."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...
    def embed_query(self, text: str) -> list[float]: ...


class VectorIndex(Protocol):
    """Points of every account in one collection, each query filtered on its account.

    ``mode``: ``hybrid`` (dense and sparse fused by reciprocal rank), ``dense`` or ``sparse``.
    Raises ``Transient`` when the store is unreachable.
    """

    def upsert(self, points: Sequence[Point]) -> None: ...
    def existing(self, ids: Sequence[str]) -> set[str]: ...
    def query(self, q: IndexQuery) -> list[IndexHit]: ...
    def delete(self, account_id: str, ids: Sequence[str]) -> None:
        """Remove the account's points of these ids."""
        ...

    def count(self, account_id: str | None = None) -> int: ...


# -- the proxy's upstream API ----------------------------------------------------------------


class Upstream(Protocol):
    """The API the proxy forwards to (Anthropic, OpenAI), asynchronous: the proxy is an ASGI
    app. Which headers go and come back, and the errors (``UpstreamError``,
    ``UpstreamTimeout``, raised by ``request`` or while ``chunks`` is read):
    ``kontex.domain.forwarding``."""

    async def request(self, sent: UpstreamRequest) -> UpstreamResponse:
        """The answer, its body read lazily."""
        ...
