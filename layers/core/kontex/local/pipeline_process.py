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

The ``spans`` queue may have more than one consumer: ``KONTEX_DEV_SPAN_PROCESSES`` processes
(``span_processes``: by default two with two cores or more, on either database), the
local analogue of the span Lambda's concurrency. The first consumes ``capture`` too
(``kontex-pipeline``); the others ``spans`` alone (``kontex-spans-2``, ..., ``SPAN_NICE`` steps
nicer than the server, so ingest's requests get the cores first). A message goes to
one of them (the queue's claim), and the span service is safe under concurrency as concurrent
Lambdas are (derived ids, a conflict retried record by record). What a run left in flight is
resumed once, by the server, before any of them claims (``Pipelines.consume``): a resume by one
after another's claim would hand that batch out twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kontex.local.worker_process import WorkerProcess, lower_priority, told
from kontex.settings import Settings

if TYPE_CHECKING:
    from kontex.adapters.local_queue import LocalQueue
    from kontex.bootstrap import Container

log = logging.getLogger("kontex.dev")
QUEUES = frozenset({"spans", "capture"})  # the queues whose workers run in these processes
SPANS = frozenset({"spans"})  # the queues of the second and later processes
MAX_SPAN_PROCESSES = 2  # the default's cap (measured on 2 cores)
# the second and later span processes run this many steps nicer than the server: ingest's
# requests get the cores first (p50 13-17 ms, not 21-23, at the same spans/s: measured)
SPAN_NICE = 5
STOP_SECONDS = 30.0  # for each worker to finish its batch (local_queue: 10 s a thread)


def span_processes(settings: Settings) -> int:
    """How many processes consume the span queue: ``KONTEX_DEV_SPAN_PROCESSES``, or (0, the
    default) one a core, at most ``MAX_SPAN_PROCESSES``, on either database: on SQLite too,
    where the one writer takes their write transactions in turn, since the span worker's
    CPU-only work now runs before its write transaction (docs/benchmarks.md, "Ingest on main,
    quiet: two span processes on SQLite too")."""
    if settings.kontex_dev_span_processes > 0:
        return settings.kontex_dev_span_processes
    return max(1, min(MAX_SPAN_PROCESSES, os.cpu_count() or 1))


class PipelineProcess(WorkerProcess):
    """One pipeline process, started at once (it loads the workers of ``queues``);
    ``consume()`` starts them once the server's migrations are done, ``check()`` says when it
    failed. ``name``: "pipeline" (``kontex-pipeline``), or "spans-2"... for the others;
    ``nice``: steps nicer than the server it runs."""

    def __init__(
        self,
        settings: Settings,
        root: Path | None = None,
        queues: frozenset[str] = QUEUES,
        name: str = "pipeline",
        nice: int = 0,
    ) -> None:
        args = (settings, str(root) if root else None, sorted(queues), nice)
        super().__init__(run, args, name)
        self.queues = queues
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
                        self._failed = f"the {self.name} process could not start: {value}"
            except (EOFError, OSError):  # its end closed: it exited (below)
                pass
            if self._failed is None and not self.process.is_alive():
                self._failed = f"the {self.name} process exited (status {self.process.exitcode})"
        return self._failed

    def close(self, timeout: float = STOP_SECONDS) -> None:
        """Stop it: each worker finishes its batch; killed if it hangs."""
        super().close(timeout)


class Pipelines:
    """The pipeline processes of ``kontex dev``: the first consumes ``spans`` and ``capture``,
    each other ``spans`` (``span_processes``); all started at once, loading their workers."""

    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self.processes = [PipelineProcess(settings, root)]
        self.processes += [
            PipelineProcess(settings, root, SPANS, f"spans-{n}", SPAN_NICE)
            for n in range(2, span_processes(settings) + 1)
        ]
        self._said: set[str] = set()  # the processes whose failure was said

    def consume(self, update: dict[str, Any], queue: LocalQueue) -> None:
        """Resume the pipelines' queues in ``queue`` (the server's handle on the file: what a
        run left in flight is delivered again), then start every process's workers. Not
        waited for (``PipelineProcess.consume``)."""
        queue.resume(QUEUES)
        for process in self.processes:
            process.consume(update)

    def check(self) -> str | None:
        """Said once on the server's output for each process that could not start or exited,
        with what waits for it; the first such failure (None while all run): a chore of the
        local sweeper."""
        first = None
        for process in self.processes:
            failed = process.check()
            if failed is None:
                continue
            first = first or failed
            if process.name in self._said:
                continue
            self._said.add(process.name)
            log.error("%s: %s", failed, self._consequence())
        return first

    def _consequence(self) -> str:
        running = [p for p in self.processes if p.check() is None]
        served = {queue for p in running for queue in p.queues}
        waiting = [queue for queue in ("spans", "capture") if queue not in served]
        words = {"spans": "spans", "capture": "captures"}
        said = []
        if waiting:
            said.append(
                f"{' and '.join(words[q] for q in waiting)} wait in the queue until kontex dev"
                " restarts"
            )
        if "spans" in served:
            others = sum("spans" in p.queues for p in running)
            said.append(f"spans go on in {others} other process{'es' if others > 1 else ''}")
        return "; ".join(said)

    def close(self, timeout: float = STOP_SECONDS) -> None:
        """Stop them all at once: each worker finishes its batch; a process that hangs is
        killed."""
        for process in self.processes:
            with contextlib.suppress(OSError):  # it has gone already
                process.tell("stop")
        for process in self.processes:
            process.close(timeout)


def run(
    settings: Settings, root: str | None, queues: list[str], nice: int, conn: Connection
) -> None:
    """The process's body: load the workers of ``queues``, consume them once told (their
    resume is the server's: ``Pipelines.consume``), until told; ``nice`` steps nicer than the
    server."""
    # Ctrl-C reaches the whole process group: the server handles it and stops us in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lower_priority(nice, "span")
    from kontex import bootstrap
    from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
    from kontex.local.workers import log_to_stdout, register_workers

    log_to_stdout()
    queue = LocalQueue(settings.kontex_data_dir / QUEUE_FILE)
    try:
        try:
            register_workers(queue, Path(root) if root else None, queues)
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
        queue.start(resume=False)
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
