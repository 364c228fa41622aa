"""The in-process stand-in for SQS + Lambda event source mappings.

Messages sent to a named queue are handed, in batches of up to ``batch_size``, to the worker
handler registered for that queue, as the SQS event Lambda would get. Records the handler
reports in ``batchItemFailures`` (or all of them, when it raises) are delivered again with a
higher ``ApproximateReceiveCount``; after ``max_receive_count`` receives they go to the
queue's dead letters, as a redrive policy would move them to a DLQ. Up to ``concurrency``
batches of a queue are handled at once, as an event source's maximum concurrency allows.
"""

from __future__ import annotations

import hashlib
import logging
import queue as stdlib_queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kontex.local.apigw import LocalContext

log = logging.getLogger("kontex.queue")
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class _Message:
    message_id: str
    body: str
    receives: int = 0


def sqs_record(queue: str, message_id: str, body: str, receives: int) -> dict[str, Any]:
    now = str(int(time.time() * 1000))
    return {
        "messageId": message_id,
        "receiptHandle": f"{message_id}#{receives}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receives),
            "SentTimestamp": now,
            "SenderId": "kontex-local",
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:local:000000000000:{queue}",
        "awsRegion": "local",
    }


class LocalQueue:
    def __init__(
        self, *, batch_size: int = 10, max_receive_count: int = 3, concurrency: int = 1
    ) -> None:
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.max_receive_count = max_receive_count
        self._handlers: dict[str, Handler] = {}
        self._pending: dict[str, stdlib_queue.Queue[_Message]] = defaultdict(stdlib_queue.Queue)
        self.dead_letters: dict[str, list[str]] = defaultdict(list)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._busy = 0
        self._idle = threading.Condition()

    def register(self, queue: str, handler: Handler) -> None:
        self._handlers[queue] = handler

    def send(self, queue: str, bodies: Sequence[str]) -> None:
        if queue not in self._handlers:
            raise LookupError(f"no worker is registered for queue {queue!r}")
        with self._idle:
            self._busy += len(bodies)
        for body in bodies:
            self._pending[queue].put(_Message(str(uuid.uuid4()), body))

    def start(self) -> None:
        for name in self._handlers:
            for n in range(self.concurrency):
                thread = threading.Thread(
                    target=self._run, args=(name,), daemon=True, name=f"kontex-queue-{name}-{n}"
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every message sent so far is processed or dead-lettered."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def _take_batch(self, name: str) -> list[_Message]:
        pending = self._pending[name]
        try:
            batch = [pending.get(timeout=0.1)]
        except stdlib_queue.Empty:
            return []
        while len(batch) < self.batch_size:
            try:
                batch.append(pending.get_nowait())
            except stdlib_queue.Empty:
                break
        return batch

    def _run(self, name: str) -> None:
        while not self._stop.is_set():
            batch = self._take_batch(name)
            if batch:
                self.deliver(name, batch)

    def deliver(self, name: str, batch: list[_Message]) -> None:
        for message in batch:
            message.receives += 1
        event = {"Records": [sqs_record(name, m.message_id, m.body, m.receives) for m in batch]}
        try:
            result = self._handlers[name](event, LocalContext(function_name=f"kontex-{name}"))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception:
            log.exception("worker for %s failed on a batch of %d", name, len(batch))
            failed = {m.message_id for m in batch}
        done = 0
        for message in batch:
            if message.message_id not in failed:
                done += 1
            elif message.receives >= self.max_receive_count:
                log.error("message %s moved to the %s dead letters", message.message_id, name)
                self.dead_letters[name].append(message.body)
                done += 1
            else:
                self._pending[name].put(message)
        with self._idle:
            self._busy -= done
            self._idle.notify_all()
