"""The queue workers of ``kontex dev``, wherever they run: each ``functions/workers/<queue>.py``
consuming its queue of the data dir's durable queue file (adapters/local_queue.py), in the
server or in one of its worker processes (local/pipeline_process.py, local/search_process.py).

Kept apart from local/server.py so those processes load the workers without the HTTP server.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Collection
from pathlib import Path
from types import ModuleType

from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue, batch_failure_reasons
from kontex.functions import worker_paths


def load_worker(path: Path) -> ModuleType:
    """A worker module (``functions/workers/<queue>.py``), loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"kontex_workers_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"no worker at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def register_workers(
    local_queue: LocalQueue,
    root: Path | None = None,
    queues: Collection[str] | None = None,
) -> LocalQueue:
    """Each ``functions/workers/<queue>.py`` registered on ``local_queue`` as its queue's
    consumer (of ``queues``, when given: the others are consumed by another process), not
    started yet."""
    for queue, path in worker_paths(root).items():
        if queues is not None and queue not in queues:
            local_queue.expect(queue)
            continue
        module = load_worker(path)
        processor = getattr(module, "processor", None)
        reasons = batch_failure_reasons(processor) if processor is not None else None
        window = float(getattr(module, "BATCH_WINDOW_SECONDS", 0.0))
        local_queue.register(queue, module.lambda_handler, reasons, window)
    return local_queue


def start_workers(
    data_dir: Path | None,
    root: Path | None = None,
    local_queue: LocalQueue | None = None,
    queues: Collection[str] | None = None,
) -> LocalQueue:
    """The durable queue in ``data_dir`` (in memory when None), with each
    ``functions/workers/<queue>.py`` consuming its queue (of ``queues``, when given: the others
    are consumed by another process); pending messages resume at once."""
    if local_queue is None:
        local_queue = LocalQueue(data_dir / QUEUE_FILE if data_dir is not None else None)
    register_workers(local_queue, root, queues)
    local_queue.start()
    return local_queue


def log_to_stdout() -> None:
    """One line per request (and the worker warnings) on stdout, as ``kontex dev: ...``."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("kontex dev: %(message)s"))
    for name in ("kontex.access", "kontex.dev", "kontex.queue", "kontex.outbox", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
