"""One writer at a time on a SQLite file, across the processes of a data dir, woken at once.

SQLite lets one writer in at a time; a process that meets the file locked by another waits in
its busy handler, which sleeps 1 to 100 ms between tries (not woken when the lock is freed).
Within one process the store and the queue already queue their writers on a thread lock; in
``kontex dev`` several processes write the same files (the server's ingest and API, the
pipeline process's span and capture workers, the search process's embed worker), so each
writer also takes this lock: ``flock`` on a file beside the database (never the database
itself, whose POSIX locks a second descriptor's close would drop), which the kernel hands to
the next waiter as soon as it is released.

It excludes processes, not the threads of one process (they share the descriptor): callers
hold their own thread lock around it. Where ``fcntl`` does not exist (Windows) it does
nothing, and SQLite's busy handler remains the only wait.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

SUFFIX = "-writer.lock"


class WriterLock:
    """The cross-process writer lock of the SQLite file at ``database`` (None: in memory, a
    lock of nothing)."""

    def __init__(self, database: str | Path | None) -> None:
        self.path = Path(f"{database}{SUFFIX}") if database not in (None, ":memory:") else None
        self._fd: int | None = None
        if self.path is not None and fcntl is not None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def __enter__(self) -> WriterLock:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
