"""The ``Store`` port on a DB-API database: units of work over one transaction each.

Subclasses (``sqlite_store.py``, ``postgres_store.py``) supply the transaction (``_tx``), the
migrations and how a value reaches their driver; every statement lives in the repository
module of its aggregate.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kontex.adapters.sql.base import Tx, Work

if TYPE_CHECKING:
    from kontex.adapters.sql.archive import SqlArchive
    from kontex.adapters.sql.checkpoints import SqlCheckpoints
    from kontex.adapters.sql.connections import SqlConnections
    from kontex.adapters.sql.content import SqlContent
    from kontex.adapters.sql.keys import SqlKeys
    from kontex.adapters.sql.outbox import SqlOutbox
    from kontex.adapters.sql.queries import SqlQueries
    from kontex.adapters.sql.search import SqlSearchChanges
    from kontex.adapters.sql.sessions import SqlSessions
    from kontex.adapters.sql.snapshots import SqlSnapshots
    from kontex.adapters.sql.spans import SqlSpans
    from kontex.adapters.sql.tasks import SqlTasks
    from kontex.adapters.sql.threads import SqlThreads
    from kontex.adapters.sql.traces import SqlTraces
    from kontex.adapters.sql.upgrade import SqlUpgrade
    from kontex.ports import Event  # (kontex.port_transport: loads with the first event)

log = logging.getLogger("kontex.store")


class SqlUnitOfWork:
    """The ``UnitOfWork`` port: the repositories of one open transaction, each made (and its
    module loaded) when the unit first uses it: a cold start loads the statements of the
    repositories its first request touches, not all fifteen (docs/benchmarks.md, "Cold start,
    fourth round (issue 25)")."""

    def __init__(self, work: Work) -> None:
        self._work = work
        self.announced: list[Event] = []

    @cached_property
    def keys(self) -> SqlKeys:
        from kontex.adapters.sql.keys import SqlKeys

        return SqlKeys(self._work)

    @cached_property
    def sessions(self) -> SqlSessions:
        from kontex.adapters.sql.sessions import SqlSessions

        return SqlSessions(self._work)

    @cached_property
    def tasks(self) -> SqlTasks:
        from kontex.adapters.sql.tasks import SqlTasks

        return SqlTasks(self._work)

    @cached_property
    def snapshots(self) -> SqlSnapshots:
        from kontex.adapters.sql.snapshots import SqlSnapshots

        return SqlSnapshots(self._work)

    @cached_property
    def content(self) -> SqlContent:
        from kontex.adapters.sql.content import SqlContent

        return SqlContent(self._work)

    @cached_property
    def queries(self) -> SqlQueries:
        from kontex.adapters.sql.queries import SqlQueries

        return SqlQueries(self._work)

    @cached_property
    def spans(self) -> SqlSpans:
        from kontex.adapters.sql.spans import SqlSpans

        return SqlSpans(self._work)

    @cached_property
    def traces(self) -> SqlTraces:
        from kontex.adapters.sql.traces import SqlTraces

        return SqlTraces(self._work)

    @cached_property
    def threads(self) -> SqlThreads:
        from kontex.adapters.sql.threads import SqlThreads

        return SqlThreads(self._work)

    @cached_property
    def checkpoints(self) -> SqlCheckpoints:
        from kontex.adapters.sql.checkpoints import SqlCheckpoints

        return SqlCheckpoints(self._work)

    @cached_property
    def connections(self) -> SqlConnections:
        from kontex.adapters.sql.connections import SqlConnections

        return SqlConnections(self._work)

    @cached_property
    def outbox(self) -> SqlOutbox:
        from kontex.adapters.sql.outbox import SqlOutbox

        return SqlOutbox(self._work)

    @cached_property
    def upgrade(self) -> SqlUpgrade:
        from kontex.adapters.sql.upgrade import SqlUpgrade

        return SqlUpgrade(self._work)

    @cached_property
    def archive(self) -> SqlArchive:
        from kontex.adapters.sql.archive import SqlArchive

        return SqlArchive(self._work)

    @cached_property
    def search_changes(self) -> SqlSearchChanges:
        from kontex.adapters.sql.search import SqlSearchChanges

        return SqlSearchChanges(self._work)

    def announce(self, event: Event, *, swept: bool = False) -> None:
        self.outbox.add(event)
        if not swept:  # swept: left to the sweeper (a bulk write's many events)
            self.announced.append(event)


def _publish_nothing(events: Sequence[Event]) -> None:
    """No publisher bound: events stay in the outbox for the sweeper."""


class SqlStore(abc.ABC):
    dialect: str
    _lock_clause = ""  # how a writer locks the task row it writes to (PostgreSQL: FOR UPDATE)
    _publish: Callable[[Sequence[Event]], object] = staticmethod(_publish_nothing)

    @abc.abstractmethod
    def _tx(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> AbstractContextManager[Tx]:
        """A transaction: committed when the block ends, rolled back when it raises;
        ``durable=False``: its commit need not wait for the disk; ``autocommit``: where the
        driver can, each round trip's statements commit as they run (``Store.unit``)."""

    @abc.abstractmethod
    def migrate(self) -> list[str]: ...

    def _json(self, value: Any) -> Any:
        """How a JSON document is passed as a parameter (overridden per driver)."""
        return value

    def publish_with(self, publish: Callable[[Sequence[Event]], object]) -> None:
        self._publish = publish

    @contextmanager
    def unit(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> Iterator[SqlUnitOfWork]:
        with self._tx(write=write, durable=durable, autocommit=autocommit) as tx:
            work = Work(tx, self.dialect, self._lock_clause if write else "", self._json)
            uow = SqlUnitOfWork(work)
            yield uow
            work.flush()
        if uow.announced:  # committed: now the world may hear of it
            self._publish(uow.announced)
