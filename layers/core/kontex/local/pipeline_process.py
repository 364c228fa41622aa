"""``kontex dev``'s pipeline process: the ``spans`` and ``capture`` queues' workers, in a process
of their own (docs/design.md, "The local stack"), as they are Lambdas of their own on AWS.

In the server they shared one interpreter lock with uvicorn, the ingest and proxy handlers,
the API's resident environment and the feed worker: on SQLite the server was at about one core
while spans arrived (0.7 ms of CPU a span), and an ingest request waited for the span worker
between its own steps. Here the span path has a core of its own; the server keeps what must
stay beside the WebSocket connections (the ``feed`` worker) and what answers callers.

The process takes its orders from the server over one pipe: it loads its workers at once (while
the server migrates), starts them when told "consume" (with the search process's address, which
the server learns meanwhile), and stops when told "stop" or when the server is gone (its end of
the pipe closes, even on SIGKILL): it never outlives ``kontex dev``.
"""

from __future__ import annotations

import logging
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kontex.local.worker_process import WorkerProcess, told
from kontex.settings import Settings

if TYPE_CHECKING:
    from kontex.bootstrap import Container

log = logging.getLogger("kontex.dev")
QUEUES = frozenset({"spans", "capture"})  # the queues whose worker runs here
STOP_SECONDS = 30.0  # for each worker to finish its batch (local_queue: 10 s a thread)


class PipelineProcess(WorkerProcess):
    """The pipeline process, started at once (it loads its workers); ``consume()`` starts
    them once the server's migrations are done, ``check()`` says when it failed."""

    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        super().__init__(run, (settings, str(root) if root else None), "pipeline")
        self.pid: int | None = None  # once it consumes
        self._failed: str | None = None

    def consume(self, update: dict[str, Any]) -> None:
        """Start the workers, with ``update`` to the settings (the search process's address).
        Not waited for: the server serves meanwhile (messages wait in the queue, and resume
        once the workers start), and ``check()`` reports a start that failed."""
        self.tell(("consume", update))

    def check(self) -> str | None:
        """Why the workers do not run (could not start, or the process exited), said once on
        the server's output; None while they run (a chore of the local sweeper)."""
        if self._failed is None:
            try:
                while self.pid is None and self._failed is None and self._conn.poll(0):
                    kind, value = self._conn.recv()
                    if kind == "consuming":
                        self.pid = int(value)
                    else:
                        self._failed = f"the pipeline process could not start: {value}"
            except (EOFError, OSError):  # its end closed: it exited (below)
                pass
            if self._failed is None and not self.process.is_alive():
                self._failed = f"the pipeline process exited (status {self.process.exitcode})"
            if self._failed is not None:
                log.error(
                    "%s: spans and captures wait in the queue until kontex dev restarts",
                    self._failed,
                )
        return self._failed

    def close(self, timeout: float = STOP_SECONDS) -> None:
        """Stop it: each worker finishes its batch; killed if it hangs."""
        super().close(timeout)


def run(settings: Settings, root: str | None, conn: Connection) -> None:
    """The process's body: load the workers, consume their queues once told, until told."""
    # Ctrl-C reaches the whole process group: the server handles it and stops us in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from kontex import bootstrap
    from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
    from kontex.local.workers import log_to_stdout, register_workers

    log_to_stdout()
    queue = LocalQueue(settings.kontex_data_dir / QUEUE_FILE)
    try:
        try:
            register_workers(queue, Path(root) if root else None, QUEUES)
            container = bootstrap.Container(settings)
            container.queue = queue  # type: ignore[assignment]
            container.events = container.local_topic(queue)  # type: ignore[assignment]
            bootstrap.configure(container)
            warm(container)
        except Exception as error:  # a worker module that does not load
            conn.send(("error", f"{type(error).__name__}: {error}"))
            return
        word = told(conn)
        if not (isinstance(word, tuple) and word[0] == "consume"):
            return  # "stop" before it started, or the server is gone
        container.settings = settings.model_copy(update=word[1])  # before index or embedder
        queue.start()
        conn.send(("consuming", os.getpid()))
        told(conn)  # "stop", or the server is gone
    finally:
        queue.close()


def warm(container: Container) -> None:
    """What the span worker's first batch would load, loaded while the server migrates: the
    store's adapter (no connection yet) and the tokenizer (about 0.2 s of the first batch,
    profiled)."""
    from kontex import tokens

    container.store  # noqa: B018 (built, not used: a cached property)
    tokens.encoding()
