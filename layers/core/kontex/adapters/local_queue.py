"""The local stand-in for SQS + Lambda event source mappings: a durable queue in the data dir.

Messages live in a SQLite file (``queue.db`` in the data dir). ``send`` returns only once they
are committed, so whatever the caller acknowledges (ingest answers 200 after ``send``) survives
a crash of the process: at start every message still in the file is delivered again.

Delivery is SQS-shaped: messages of a named queue are handed, in batches of up to
``batch_size``, to the worker handler registered for that queue, as the SQS event Lambda would
get. Records the handler reports in ``batchItemFailures`` (or all of them, when it raises) are
sorted by the rule of ``kontex.domain.retry``, as the workers sort them on AWS
(``adapters/sqs_batch.py``): one that failed for good (the worker's ``Reasons`` says it is
permanent: a body that does not parse, input refused) moves to the dead letters at once, with
its reason; any other is delivered again after a backoff (``QUEUE_RETRY``: 1 s, doubling, at
most 60 s), with a higher ``ApproximateReceiveCount``, and moves to the dead letters only after
``max_receive_count`` receives (16: about ten minutes, so a minute-long database outage loses
nothing), as a redrive policy would move it to a DLQ. ``kontex dead-letters list|replay`` reads
and replays them.

Durability: WAL. A ``send`` commits with ``synchronous=FULL``, so what ingest acknowledged
survives a power loss as well as a killed process: one fsync per ``send``, and ingest sends one
message per request. Everything else commits with ``NORMAL`` (survives a killed process, not
always a power loss; no fsync): a topic's fan-out (``send_each(durable=False)``: an event is no
more durable than the change it announces, committed with ``NORMAL`` in the store, and search
can be rebuilt by ``kontex reindex``), the proxy's captures (``send(durable=False)``: queued
after the caller already has its answer, so no acknowledgement waits for the fsync; a killed
proxy loses none), and the receipts and deletions of delivery (one lost
to a power loss is a message delivered again, which consumers are ready for). Before this split
a checkpoint's one event cost ten fsyncs (its send, then a claim and a delete per consumer, and
the same for the ``snapshot.embedded`` that followed): about 16 ms of disk per request here.

Several processes share the file (``kontex dev``: the API's worker processes send into it, the
pipeline process consumes ``spans`` and ``capture``, the search process ``embed`` and the
server ``feed``): a claim is a ``BEGIN IMMEDIATE`` transaction, so one message goes to one
consumer, and ``start`` resumes only the queues it consumes. Every write transaction first
takes the file's writer lock (``adapters/writer_lock.py``), so writers in other processes wait
there, woken at once, rather than in SQLite's busy handler.

On Linux each send also pokes the process consuming each queue it sends to, through a datagram
on an abstract Unix socket named after the file and the queue, so messages from another
process are picked up at once instead of at the next poll (``poll_seconds``, which stays the
fallback).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kontex import ports
from kontex.adapters.writer_lock import WriterLock
from kontex.domain.retry import QUEUE_RETRY, Failure, RetryPolicy, describe
from kontex.http.apigw import LocalContext
from kontex.ports import PIPELINES

if TYPE_CHECKING:  # (kontex.port_values: loads with the first lag asked for)
    from kontex.ports import PipelineLag

log = logging.getLogger("kontex.queue")
Handler = Callable[[dict[str, Any], Any], Any]
# After a batch: message id -> why it failed and whether for good, when the worker can tell.
Reasons = Callable[[], dict[str, Failure]]

QUEUE_FILE = "queue.db"
INSERT_MESSAGE_SQL = (
    "INSERT INTO messages (id, queue, body, sent_at, available_at, first_received_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
# ``first_received_at`` of a message not received yet: a REAL of the size a time has on disk
# (NULL has none, an integral value is stored as an integer), so a claim that sets the time
# (and counts the receive, 0 -> 1: no bytes either way) leaves the row's size as it is, and
# SQLite overwrites the row's first page in place instead of writing the whole record, body
# and overflow pages, again (a span message is up to a few hundred KB: docs/benchmarks.md,
# "Spans on PostgreSQL, less CPU a span"). Rows written before it hold NULL.
NOT_RECEIVED = -0.5
CLAIM_SQL = (
    "UPDATE messages SET receives = receives + 1, available_at = ?,"
    " first_received_at = CASE WHEN first_received_at IS NULL OR first_received_at < 0"
    " THEN ? ELSE first_received_at END WHERE id = ?"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    receives INTEGER NOT NULL DEFAULT 0,
    sent_at REAL NOT NULL,
    first_received_at REAL,
    available_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, available_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    receives INTEGER NOT NULL,
    reason TEXT NOT NULL,
    sent_at REAL NOT NULL,
    failed_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class _Message:
    message_id: str
    body: str
    receives: int
    sent_at: float
    first_received_at: float


@dataclass(frozen=True)
class DeadLetter:
    id: str
    queue: str
    body: str
    receives: int
    reason: str
    sent_at: float
    failed_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "receives": self.receives,
            "reason": self.reason,
            "sent_at": _iso(self.sent_at),
            "failed_at": _iso(self.failed_at),
            "body": self.body,
        }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def sqs_record(
    queue: str,
    message_id: str,
    body: str,
    receives: int,
    sent_at: float | None = None,
    first_received_at: float | None = None,
) -> dict[str, Any]:
    now = time.time()
    sent = str(int((sent_at or now) * 1000))
    first = str(int((first_received_at or now) * 1000))
    return {
        "messageId": message_id,
        "receiptHandle": f"{message_id}#{receives}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receives),
            "SentTimestamp": sent,
            "SenderId": "kontex-local",
            "ApproximateFirstReceiveTimestamp": first,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:local:000000000000:{queue}",
        "awsRegion": "local",
    }


def _received(first: float | None, now: float) -> float:
    """When a claimed message was first received: ``now`` for its first receive."""
    return first if first is not None and first >= 0 else now


def wake_address(path: Path, queue: str) -> str | None:
    """The abstract Unix socket the consumer of ``queue`` in this file listens on (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha256(f"{path.resolve()}\0{queue}".encode()).hexdigest()[:32]
    return f"\0kontex-queue-{digest}"


def open_queue_file(path: Path) -> sqlite3.Connection:
    """The queue's SQLite file, created readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    # a delivered message's pages are freed, not first overwritten with zeros (SQLite builds
    # with SECURE_DELETE, Debian's among them, zero every overflow page of a deleted
    # several-hundred-KB span message: as much writing as the send, 10 ms a batch of ten);
    # "fast" still zeroes what costs no extra I/O. What the queue carries is stored in the
    # data dir's database anyway (docs/benchmarks.md, "Spans on PostgreSQL, less CPU a span")
    conn.execute("PRAGMA secure_delete=FAST")
    conn.executescript(_SCHEMA)
    return conn


class LocalQueue:
    """A durable queue per name, each consumed by one worker thread.

    ``path`` None keeps the file in memory (unit tests): the same code, no durability.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        batch_size: int = 10,
        max_receive_count: int = QUEUE_RETRY.max_receives,
        backoff_seconds: float = QUEUE_RETRY.first_delay,
        max_backoff_seconds: float = QUEUE_RETRY.max_delay,
        visibility_timeout: float = 300.0,
        poll_seconds: float = 0.05,
        concurrency: int = 1,
    ) -> None:
        self.batch_size = batch_size
        self.concurrency = concurrency  # worker threads per queue (one: SQLite has one writer)
        # transient failures: again after retry.delay(receives), dead after max_receives
        self.retry = RetryPolicy(max_receive_count, backoff_seconds, max_backoff_seconds)
        self.visibility_timeout = visibility_timeout
        self.poll_seconds = poll_seconds
        self._path = Path(path) if path is not None else None
        self._listeners: dict[str, socket.socket] = {}  # queue -> its bound wake socket
        self._addresses: dict[str, str] = {}  # queue -> its wake address ("": none)
        self._poker: socket.socket | None = None
        if path is None:
            self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._conn.executescript(_SCHEMA)
        else:
            self._conn = open_queue_file(Path(path))
        self._lock = threading.RLock()
        self._writers = WriterLock(self._path)  # the file's writers in other processes
        self._synchronous = "FULL"  # the connection's setting (open_queue_file's)
        self._handlers: dict[str, Handler] = {}
        self._elsewhere: set[str] = set()  # queues another process consumes (``expect``)
        self._reasons: dict[str, Reasons] = {}
        self._windows: dict[str, float] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._wake = threading.Condition()

    # -- sending --------------------------------------------------------------------------

    def register(
        self,
        queue: str,
        handler: Handler,
        reasons: Reasons | None = None,
        batch_window: float = 0.0,
    ) -> None:
        """``reasons`` (optional) tells, after a batch, why its failed records failed.
        ``batch_window`` (seconds; Lambda's MaximumBatchingWindowInSeconds): a batch is handed
        over once it is full or its first message has waited that long, not at once."""
        self._handlers[queue] = handler
        if batch_window > 0:
            self._windows[queue] = batch_window
        if reasons is not None:
            self._reasons[queue] = reasons

    def expect(self, queue: str) -> None:
        """A queue whose worker runs in another process: messages to it are taken here."""
        self._elsewhere.add(queue)

    def send(
        self, queue: str, bodies: Sequence[str], delay_seconds: int = 0, *, durable: bool = True
    ) -> None:
        """Store the messages; they are in the file when this returns (a killed process loses
        none), and delivered once ``delay_seconds`` have passed. ``durable`` (the default):
        committed with an fsync, so they survive a power loss too; ``False``: committed
        without one (the proxy's captures, queued after the caller has its answer)."""
        self.send_each([(queue, body) for body in bodies], delay_seconds, durable)

    def send_each(
        self, messages: Sequence[tuple[str, str]], delay_seconds: int = 0, durable: bool = True
    ) -> None:
        """(queue, body) pairs, possibly to several queues, stored in one transaction: all of
        them or none (a topic's fan-out). ``durable=False``: committed without an fsync."""
        queues = {q for q, _ in messages}
        for queue in queues:
            if self._handlers and queue not in self._handlers and queue not in self._elsewhere:
                raise LookupError(f"no worker is registered for queue {queue!r}")
        now = time.time()
        rows = [
            (str(uuid.uuid4()), q, body, now, now + delay_seconds, NOT_RECEIVED)
            for q, body in messages
        ]
        with self._transaction(durable) as conn:
            conn.executemany(INSERT_MESSAGE_SQL, rows)
        with self._wake:
            self._wake.notify_all()
        self._poke(queues)

    @contextlib.contextmanager
    def _transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction on the queue file: committed (``durable``: with an fsync), or
        rolled back when it raises."""
        with self._lock:
            mode = "FULL" if durable else "NORMAL"
            if self._synchronous != mode:  # a connection setting: changed between transactions
                self._conn.execute(f"PRAGMA synchronous={mode}")
                self._synchronous = mode
            with self._writers:  # other processes' writers wait here, woken at once
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")

    def _poke(self, queues: set[str]) -> None:
        """Wake the process consuming each queue, when it is another one (best effort: it
        polls too)."""
        if self._path is None:
            return
        for queue in queues:
            if queue in self._listeners:  # ours: notified above
                continue
            address = self._addresses.get(queue)
            if address is None:  # the path resolved once per queue, not on every send
                address = self._addresses[queue] = wake_address(self._path, queue) or ""
            if not address:
                continue
            try:
                if self._poker is None:
                    self._poker = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._poker.setblocking(False)
                self._poker.sendto(b"!", address)
            except OSError:  # nobody listens (no `kontex dev`), or its buffer is full: it polls
                pass

    def _bind_wake(self, queue: str) -> None:
        """Listen for the pokes of other processes sending to ``queue``."""
        address = wake_address(self._path, queue) if self._path is not None else None
        if address is None or queue in self._listeners:
            return
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.bind(address)
        except OSError:  # another process consumes this queue of the file: we poll
            listener.close()
            return
        listener.settimeout(0.5)
        self._listeners[queue] = listener
        thread = threading.Thread(
            target=self._listen, args=(listener,), daemon=True, name=f"kontex-queue-wake-{queue}"
        )
        thread.start()
        self._threads.append(thread)

    def _listen(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                listener.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._wake:
                self._wake.notify_all()

    # -- consuming ------------------------------------------------------------------------

    def start(self, resume: bool = True) -> None:
        """Consume the registered queues. ``resume`` (the default): first ``resume`` them,
        whatever an earlier process left in flight delivered again now (the queues another
        process consumes are its to resume). ``False`` where several processes consume one
        queue: one resume by whoever starts them, before any of them claims (a resume after a
        claim would hand that batch out a second time)."""
        names = sorted(self._handlers)
        if resume:
            self.resume(names)
        self._stop.clear()
        for name in names:
            self._bind_wake(name)
        for name in self._handlers:
            for n in range(self.concurrency):
                thread = threading.Thread(
                    target=self._run, args=(name,), daemon=True, name=f"kontex-queue-{name}-{n}"
                )
                thread.start()
                self._threads.append(thread)

    def resume(self, names: Collection[str]) -> int:
        """Make every message of the queues ``names`` visible at once, the ones in flight and
        the ones waiting for a retry's backoff: what an earlier process left is delivered
        again now. The count of their messages (said, when there are any)."""
        names = sorted(names)
        marks = ", ".join("?" * len(names))
        with self._transaction() as conn:
            now = time.time()
            conn.execute(
                "UPDATE messages SET available_at = ?"
                f" WHERE available_at > ? AND queue IN ({marks})",
                (now, now, *names),
            )
            pending = int(
                conn.execute(
                    f"SELECT count(*) FROM messages WHERE queue IN ({marks})", names
                ).fetchone()[0]
            )
        if pending:
            log.warning("resuming %d queued message(s) left by an earlier run", pending)
        return pending

    def stop(self) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()

    def pending(self, queue: str | None = None) -> int:
        with self._lock:
            if queue is None:
                return int(self._conn.execute("SELECT count(*) FROM messages").fetchone()[0])
            row = self._conn.execute("SELECT count(*) FROM messages WHERE queue = ?", (queue,))
            return int(row.fetchone()[0])

    def lag(self) -> list[PipelineLag]:
        """Each pipeline's messages waiting or in flight, the age of its oldest (from when it
        was first sent, across redeliveries) and its dead letters (the ``Pipelines`` port)."""
        with self._lock:
            waiting = self._conn.execute(
                "SELECT queue, count(*), min(sent_at) FROM messages GROUP BY queue"
            ).fetchall()
            dead = dict(
                self._conn.execute("SELECT queue, count(*) FROM dead_letters GROUP BY queue")
            )
        now = time.time()
        found = {name: (int(n), max(0.0, now - oldest)) for name, n, oldest in waiting}
        names = list(dict.fromkeys([*PIPELINES, *sorted(found), *sorted(dead)]))
        return [
            ports.PipelineLag(
                name=name,
                depth=found.get(name, (0, None))[0],
                oldest_age_seconds=found.get(name, (0, None))[1],
                dead_letters=int(dead.get(name, 0)),
            )
            for name in names
        ]

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every message sent so far is processed or dead-lettered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.02)
        return self.pending() == 0

    def _claim(self, name: str) -> list[_Message]:
        now = time.time()
        with self._lock:  # a read first: an idle consumer's poll takes no writer lock
            ready = self._conn.execute(
                "SELECT 1 FROM messages WHERE queue = ? AND available_at <= ? LIMIT 1",
                (name, now),
            ).fetchone()
        if ready is None:
            return []
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id, body, receives, sent_at, first_received_at FROM messages"
                " WHERE queue = ? AND available_at <= ? ORDER BY seq LIMIT ?",
                (name, now, self.batch_size),
            ).fetchall()
            conn.executemany(CLAIM_SQL, [(now + self.visibility_timeout, now, r[0]) for r in rows])
        return [_Message(r[0], r[1], r[2] + 1, r[3], _received(r[4], now)) for r in rows]

    def batch_window(self, queue: str) -> float:
        """The queue's batching window in seconds (0: a batch is handed over at once)."""
        return self._windows.get(queue, 0.0)

    def _linger(self, name: str, window: float) -> bool:
        """Wait until the queue holds a full batch or its first visible message has waited
        ``window`` seconds: True then, False when nothing is visible (or it stops)."""
        while not self._stop.is_set():
            now = time.time()
            with self._lock:
                count, first = self._conn.execute(
                    "SELECT count(*), min(available_at) FROM (SELECT available_at FROM messages"
                    " WHERE queue = ? AND available_at <= ? ORDER BY seq LIMIT ?)",
                    (name, now, self.batch_size),
                ).fetchone()
            if not count:
                return False
            if count >= self.batch_size or first + window <= now:
                return True
            with self._wake:
                self._wake.wait(min(first + window - now, self.poll_seconds))
        return False

    def _run(self, name: str) -> None:
        window = self._windows.get(name, 0.0)
        while not self._stop.is_set():
            try:
                # with a window, nothing is claimed until a batch is ready (a message sent
                # meanwhile would otherwise go alone)
                ready = self._linger(name, window) if window else True
                batch = self._claim(name) if ready else []
            except sqlite3.Error:
                log.exception("could not read the %s queue", name)
                batch = []
            if batch:
                self.deliver(name, batch)
                continue
            with self._wake:
                self._wake.wait(self.poll_seconds)

    def deliver(self, name: str, batch: list[_Message]) -> None:
        event = {
            "Records": [
                sqs_record(name, m.message_id, m.body, m.receives, m.sent_at, m.first_received_at)
                for m in batch
            ]
        }
        reasons: dict[str, Failure] = {}
        try:
            result = self._handlers[name](event, LocalContext(function_name=f"kontex-{name}"))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            if failed and name in self._reasons:
                reasons = self._reasons[name]()
        except Exception as error:
            # Powertools raises when every record of a batch failed; it still knows why each
            # did. A handler that raised by itself failed the whole batch: retried, as on AWS
            log.warning("worker for %s failed on a batch of %d: %s", name, len(batch), error)
            failed = {m.message_id for m in batch}
            reasons = {m.message_id: Failure(describe(error)) for m in batch}
            if name in self._reasons:
                reasons.update(self._reasons[name]())
        now = time.time()
        done, retry, dead = [], [], []
        for message in batch:
            if message.message_id not in failed:
                done.append((message.message_id,))
                continue
            failure = reasons.get(message.message_id) or Failure("reported in batchItemFailures")
            if failure.permanent or message.receives >= self.retry.max_receives:
                log.error(
                    "message %s moved to the %s dead letters after %d receive(s)%s: %s",
                    message.message_id,
                    name,
                    message.receives,
                    " (a permanent failure)" if failure.permanent else "",
                    failure.reason,
                )
                dead.append((message, failure.reason))
            else:
                retry.append((now + self.retry.delay(message.receives), message.message_id))
        with self._transaction() as conn:
            conn.executemany("DELETE FROM messages WHERE id = ?", done)
            conn.executemany("UPDATE messages SET available_at = ? WHERE id = ?", retry)
            conn.executemany(
                "INSERT OR REPLACE INTO dead_letters"
                " (id, queue, body, receives, reason, sent_at, failed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (m.message_id, name, m.body, m.receives, reason, m.sent_at, now)
                    for m, reason in dead
                ],
            )
            conn.executemany(
                "DELETE FROM messages WHERE id = ?", [(m.message_id,) for m, _ in dead]
            )

    # -- dead letters ---------------------------------------------------------------------

    def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        sql = "SELECT id, queue, body, receives, reason, sent_at, failed_at FROM dead_letters"
        args: tuple[str, ...] = ()
        if queue is not None:
            sql, args = sql + " WHERE queue = ?", (queue,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [DeadLetter(*r) for r in rows]

    def replay(self, ids: Sequence[str] | None = None) -> list[str]:
        """Move dead letters (these ids, or all of them) back to their queues as new
        messages, their receive count reset. Returns the ids replayed."""
        now = time.time()
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, queue, body FROM dead_letters ORDER BY seq").fetchall()
            chosen = [r for r in rows if ids is None or r[0] in set(ids)]
            conn.executemany(
                INSERT_MESSAGE_SQL,
                [(str(uuid.uuid4()), q, body, now, now, NOT_RECEIVED) for _, q, body in chosen],
            )
            conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(r[0],) for r in chosen])
        with self._wake:
            self._wake.notify_all()
        self._poke({r[1] for r in chosen})
        return [r[0] for r in chosen]

    def close(self) -> None:
        self.stop()
        if self._poker is not None:
            self._poker.close()
        with self._lock:
            self._conn.close()
            self._writers.close()


def batch_failure_reasons(processor: Any) -> Reasons:
    """Why a Powertools ``BatchProcessor``'s last batch failed: message id -> its exception,
    described, and whether it is permanent (``kontex.domain.retry.permanent``)."""

    def reasons() -> dict[str, Failure]:
        found: dict[str, Failure] = {}
        for record, info in zip(
            getattr(processor, "fail_messages", []),
            getattr(processor, "exceptions", []),
            strict=False,
        ):
            message_id = getattr(record, "message_id", None) or getattr(record, "messageId", "")
            error = info[1] if isinstance(info, tuple) and len(info) > 1 else info
            if isinstance(error, BaseException):
                found[str(message_id)] = Failure.of(error)
            else:
                found[str(message_id)] = Failure(str(error))
        return found

    return reasons
