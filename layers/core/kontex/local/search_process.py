"""``kontex dev``'s search process: the vector index (Qdrant local mode, which locks its folder
for one client), the embedding model and the ``embed`` queue's worker, in one process of its
own (docs/design.md, "The local stack").

The embed worker spends most of its time in the model and the rest in Python: beside the API's
resident environment and the other workers it got about half a core, sharing their global
lock. Here it has a process, and the model's memory (onnxruntime and the weights, about
290 MB) is held once, by the process that uses it most: the server and the API's processes
embed queries and read the index through this process's ``IndexServer``
(kontex/adapters/local_index.py), as they did through the main process before.

The process stops when the server says so, or when the server is gone (its end of the pipe
closes, even on SIGKILL): it never outlives ``kontex dev``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import secrets
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from kontex.local.worker_process import WorkerProcess, lower_priority, told
from kontex.settings import Settings

log = logging.getLogger("kontex.dev")
QUEUES = frozenset({"embed"})  # the queues whose worker runs here
START_SECONDS = 120.0  # how long the server waits for the index to open
STOP_SECONDS = 30.0  # for the embed worker to finish its batch (local_queue: 10 s a thread)
M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def fewer_arenas(count: int = ARENAS) -> bool:
    """At most ``count`` glibc malloc arenas in this process (glibc makes one per thread, up to
    8 a core: the index server's connection threads, the queue's, onnxruntime's buffers, each
    with its own free pages). Measured while `bench/ingest.py`'s embed backlog drained: 240 MB
    at queryable against 286 with the default, the same drain rate; a fixed
    ``M_MMAP_THRESHOLD`` (128 KB) held it to 214 MB but drained about 40% slower (each model
    call's buffers mapped and faulted in anew), so it is not set (docs/benchmarks.md, "Search
    freshness, second round"). True when set (glibc), else False."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, count))
    except (OSError, AttributeError):  # musl, or no libc found
        return False


class SearchProcess(WorkerProcess):
    """The search process, started at once; ``address()`` waits until it serves the index,
    ``consume()`` starts its worker (after the server's migrations)."""

    def __init__(self, settings: Settings, root: Path | None = None) -> None:
        self.authkey = secrets.token_hex(16)
        super().__init__(run, (settings, self.authkey, str(root) if root else None), "search")
        self._address: str | None = None

    def address(self, timeout: float = START_SECONDS) -> str:
        """``host:port`` of its ``IndexServer``, once the index is open."""
        if self._address is None:
            self._address = str(self.answer("ready", timeout))
        return self._address

    def consume(self) -> None:
        """Start the embed worker (queued messages resume at once)."""
        self.tell("consume")

    def close(self, timeout: float = STOP_SECONDS) -> None:
        """Stop it: the worker finishes its batch, the index is released; killed if it hangs."""
        super().close(timeout)


def run(settings: Settings, authkey: str, root: str | None, conn: Connection) -> None:
    """The process's body: open the index, serve it, consume the embed queue until told."""
    fewer_arenas()  # before any thread of ours starts
    from kontex import bootstrap
    from kontex.adapters.local_index import IndexServer
    from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
    from kontex.local.workers import log_to_stdout, start_workers

    # Ctrl-C reaches the whole process group: the server handles it and stops us in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the model, its threads and the index it serves: when both cores are busy the span path
    # gets them first and the embed worker catches up behind its queue
    lower_priority(settings.kontex_dev_search_nice, "search")
    log_to_stdout()
    container = bootstrap.Container(settings)
    queue = LocalQueue(settings.kontex_data_dir / QUEUE_FILE)
    container.queue = queue  # type: ignore[assignment]
    container.events = container.local_topic(queue)  # type: ignore[assignment]
    bootstrap.configure(container)
    try:
        server = IndexServer(container.index, container.embedder, authkey.encode())
    except Exception as error:  # the folder locked by another client, a bad Qdrant URL...
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    try:
        conn.send(("ready", server.address))
        threading.Thread(
            target=warm, args=(container.embedder,), name="kontex-search-warm", daemon=True
        ).start()
        if told(conn) == "consume":
            start_workers(settings.kontex_data_dir, Path(root) if root else None, queue, QUEUES)
            told(conn)  # "stop", or the server is gone
    finally:
        queue.close()
        server.close()
        getattr(container.index, "close", lambda: None)()  # Qdrant's local folder, released


def warm(embedder: Any) -> None:
    """Load the embedding model behind the ready answer, at this process's lower priority: the
    server serves meanwhile, and the first snapshot to embed (or the first search) finds the
    model loaded instead of loading it (about 1.3 s of CPU, which an ingest burst right after
    start used to share its cores with). An embedder with nothing to load (Voyage AI's
    client) has no ``warm``."""
    load = getattr(embedder, "warm", None)
    if load is None:
        return
    started = time.monotonic()
    try:
        if load():
            log.info("search: the embedding model loaded in %.1f s", time.monotonic() - started)
    except Exception:  # the first embedding will fail the same way, and say so where it is
        log.exception("search: the embedding model did not load")
