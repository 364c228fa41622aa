"""The ``Store`` port over a writer and a reader (an Aurora reader behind its own RDS Proxy
endpoint): read units of read-only requests go to the reader, everything else to the writer.

The consistency rule (docs/design.md, "Reads on readers"): only a unit opened with
``write=False`` inside ``reading_from_replica()`` reads from the reader, and only until the
request has written: a write unit, and every unit after it in the same request, go to the
writer. The API enters ``reading_from_replica()`` for GET requests only; a use case that writes
(every POST, PUT, PATCH, DELETE, the workers, MCP) never leaves the writer, so the reads it
makes to decide what to write see the latest committed state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kontex.ports import Store, UnitOfWork

if TYPE_CHECKING:  # (kontex.port_transport: loads with the first event)
    from kontex.ports import Event


@dataclass
class _Routing:
    wrote: bool = False  # a write unit ran: the rest of the request stays on the writer
    read_replica: bool = False  # a read unit went to the reader


_routing: ContextVar[_Routing | None] = ContextVar("kontex_read_routing", default=None)


@contextmanager
def reading_from_replica() -> Iterator[_Routing]:
    """Read units opened in this block may go to the reader (the API: a GET request)."""
    routing = _Routing()
    token = _routing.set(routing)
    try:
        yield routing
    finally:
        _routing.reset(token)


class RoutedStore:
    """A writer store and a reader store behind one ``Store``."""

    def __init__(self, writer: Store, reader: Store) -> None:
        self.writer = writer
        self.reader = reader

    def migrate(self) -> list[str]:
        return self.writer.migrate()  # the reader replicates the writer's schema

    def publish_with(self, publish: Callable[[Sequence[Event]], object]) -> None:
        self.writer.publish_with(publish)  # only write units announce

    def unit(
        self, write: bool = True, durable: bool = True, autocommit: bool = False
    ) -> AbstractContextManager[UnitOfWork]:
        routing = _routing.get()
        if routing is not None:
            if write:
                routing.wrote = True
            elif not routing.wrote:
                routing.read_replica = True
                return self.reader.unit(write=False)
        return self.writer.unit(write=write, durable=durable, autocommit=autocommit)

    def close(self) -> None:
        for store in (self.writer, self.reader):
            close = getattr(store, "close", None)
            if close is not None:
                close()
