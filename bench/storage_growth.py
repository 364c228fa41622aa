"""Storage growth: what a long agent run costs to keep, snapshot after snapshot.

A simulated coding agent works for ``--turns`` turns in one session and task. Each turn adds a
user message, an assistant message (a text block, and on tool turns a ``tool_use`` block), and
on tool turns a ``tool`` message carrying a ``tool_result`` of 1-3 KB, a tool call and a log
event; files are read into the context over the run and some are edited later. After every
turn one snapshot is created. ``--history`` says what it holds: ``append`` the WHOLE history so
far, the way an agent framework checkpoints; ``sliding`` the last 50 messages only; ``compacted``
a history compacted every 20 turns (the oldest messages, all but the system message and the
last 10, replaced by one summary message, then appending continues); ``all`` runs the three.
Content is generated from a seeded random source, so runs are comparable.

Reported per backend:

- distinct: bytes of the distinct content (canonical JSON of each distinct message, tool call
  and log event, plus each distinct file body), deduplicated by SHA-256;
- naive: bytes of the full bundle JSON stored once per snapshot;
- stored: blob bytes plus database bytes (``database_bytes()`` of the store), as a ratio of
  distinct; also without the migrated empty schema, which is a fixed cost, not growth;
- snapshot writes per second, bundle reads per second (every snapshot read back), and the
  mean time to read the last (largest) bundle;
- with ``--blobs s3``: the Kontex blob store is ``S3Blobs`` on moto's in-process S3 (fake
  credentials, nothing leaves the process), and the S3 requests its client sends are counted
  (botocore ``before-call`` / ``after-call`` hooks) per snapshot write and per bundle read.

    python bench/storage_growth.py [--turns 200] [--backend sqlite|postgres|all]
        [--history append|sliding|compacted|all] [--blobs local|s3] [--json]

PostgreSQL is reached at ``KONTEX_BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the run uses a fresh schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import secrets
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.sqlite_store import SqliteStore
from kontex.domain.models import ContextBundle, ContextFile, LogEvent, Message, ToolCall
from kontex.ports import BlobStore
from kontex.services import keys, sessions, snapshots
from kontex.services.bundles import canonical
from kontex.services.deps import Deps

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgres")
LAST_BUNDLE_READS = 5

# -- a deterministic agent run ---------------------------------------------------------------

_NOUNS = [
    "snapshot writer",
    "retry policy",
    "session purge",
    "token counter",
    "manifest",
    "chain",
    "migration",
    "connection pool",
    "blob store",
    "API handler",
    "rate limiter",
    "cursor",
    "rollback path",
    "enrich window",
    "integration test",
    "fixture",
    "event feed",
    "queue",
    "worker",
    "schema",
    "index",
    "config loader",
    "error mapper",
    "tool call",
    "log event",
]
_VERBS = [
    "refactor",
    "check",
    "fix",
    "rename",
    "split",
    "document",
    "measure",
    "speed up",
    "test",
    "simplify",
    "trace",
    "guard",
    "validate",
    "cache",
    "retry",
    "log",
]
_ADJECTIVES = [
    "flaky",
    "slow",
    "missing",
    "duplicated",
    "stale",
    "oversized",
    "unbounded",
    "sealed",
    "idempotent",
    "concurrent",
    "nested",
    "empty",
    "partial",
    "legacy",
    "new",
]
_USER_SENTENCES = [
    "Can you {verb} the {noun} before we ship this?",
    "The {noun} looks {adj} on the staging run from this morning.",
    "I think the {adj} {noun} is why the {noun2} times out under load.",
    "Please keep the public interface of the {noun} unchanged.",
    "We saw {n} failures in CI last night, all around the {noun}.",
    "After that, {verb} the {noun2} and tell me what changed.",
    "Don't touch the {noun2}; another team owns it.",
    "Our p95 for the {noun} went from {n} ms to {m} ms after the last deploy.",
    "Could you also look at why the {noun} logs a warning on every call?",
    "Use the existing helpers in {path} rather than adding a new module.",
    "Make sure the tests still pass on both SQLite and PostgreSQL.",
    "If the {noun} needs a migration, write it as a new numbered file.",
    "What would it take to make the {noun} {adj2} by design?",
    "Ping me when the {noun2} change is ready for review.",
]
_ASSISTANT_SENTENCES = [
    "I'll start by reading {path} to see how the {noun} is built.",
    "The {noun} calls the {noun2} on every request; that is the {adj} part.",
    "Next I'll {verb} the {noun} and run the focused tests.",
    "The tests pass now; {n} cases cover the {noun}.",
    "I found the cause: the {noun2} is {adj} when the {noun} retries.",
    "Let me grep for other callers of the {noun} first.",
    "That change keeps the interface and removes {n} lines.",
]
_PATHS = [
    "layers/core/kontex/services/snapshots.py",
    "layers/core/kontex/services/bundles.py",
    "layers/core/kontex/adapters/sqlite_store.py",
    "layers/core/kontex/adapters/s3_blobs.py",
    "layers/core/kontex/domain/models.py",
    "functions/api/app.py",
    "tests/conftest.py",
    "tests/services/test_snapshots.py",
    "layers/core/kontex/settings.py",
    "README.md",
    "layers/core/kontex/adapters/postgres_store.py",
    "functions/worker/handler.py",
]
_TOOLS = ["read_file", "read_file", "grep", "run_tests", "edit_file"]
Status = Literal["success", "error"]
History = Literal["append", "sliding", "compacted"]
HISTORIES: tuple[History, ...] = ("append", "sliding", "compacted")
WINDOW = 50  # sliding: messages per snapshot
COMPACT_EVERY = 20  # compacted: turns between compactions
KEEP_AFTER_COMPACTION = 10  # compacted: the most recent messages kept beside the summary


def _ident(rng: random.Random) -> str:
    return "_".join(rng.choice(_NOUNS).replace(" ", "_").lower().split("_")[:2])


class AgentRun:
    """Generates the turns of one agent run; each call of ``turn`` returns the bundle to snapshot.

    ``history`` says what the snapshot's messages are: ``append`` the whole history so far;
    ``sliding`` only the last ``WINDOW`` messages (the agent still remembers everything, the
    snapshot holds the window); ``compacted`` the history compacted every ``COMPACT_EVERY``
    turns: all but the system message and the last ``KEEP_AFTER_COMPACTION`` messages are
    replaced by one summary message, then appending continues. Tool calls, files and log events
    are the same in all three.
    """

    def __init__(self, seed: int = 7, history: History = "append") -> None:
        self.history = history
        self.rng = random.Random(seed)
        self.started = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self.now = self.started
        self.messages: list[Message] = [
            Message(role="system", content="You are a careful coding agent working in a repo.")
        ]
        self.tool_calls: list[ToolCall] = []
        self.files: list[ContextFile] = []
        self.log_events: list[LogEvent] = []
        self.sources: dict[str, str] = {}  # the repository's files as they stand
        self.turns = 0

    # text ---------------------------------------------------------------------------------

    def _fill(self, template: str) -> str:
        r = self.rng
        return template.format(
            verb=r.choice(_VERBS),
            noun=r.choice(_NOUNS),
            noun2=r.choice(_NOUNS),
            adj=r.choice(_ADJECTIVES),
            adj2=r.choice(_ADJECTIVES),
            path=r.choice(_PATHS),
            n=r.randint(2, 90),
            m=r.randint(100, 900),
        )

    def _prose(self, templates: list[str], low: int, high: int) -> str:
        target = self.rng.randint(low, high)
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < target:
            sentences.append(self._fill(self.rng.choice(templates)))
        text = " ".join(sentences)
        return text if len(text) <= high else text[: text.rfind(" ", 0, high)] + "."

    def _code(self, path: str, low: int = 1000, high: int = 3000) -> str:
        r = self.rng
        target = r.randint(low, high)
        lines = [f'"""{path}: {self._fill("the {noun} and the {noun2}.")}"""', ""]
        lines += [f"from kontex.{_ident(r)} import {_ident(r)}" for _ in range(r.randint(2, 5))]
        while sum(len(x) + 1 for x in lines) < target:
            name = _ident(r)
            verb = r.choice(_VERBS).replace(" ", "_")
            lines += [
                "",
                "",
                f"def {verb}_{name}(value, limit={r.randint(9, 99)}):",
            ]
            lines.append(
                f'    """{self._fill("{verb} the {noun} when it is {adj}.").capitalize()}"""'
            )
            for _ in range(r.randint(2, 7)):
                lines.append(
                    r.choice(
                        [
                            f"    if value is None or len(value) > limit * {r.randint(2, 16)}:",
                            f"        raise ValueError('{self._fill('{adj} {noun}')}')",
                            f"    {name} = {_ident(r)}(value, retries={r.randint(0, 5)})",
                            f"    # {self._fill('the {noun2} is {adj} here')}",
                            f"    total += sum(item.{_ident(r)} for item in {name})",
                            f"    log.info('{self._fill('{verb} {noun}')}', n={r.randint(1, 999)})",
                        ]
                    )
                )
            lines.append(f"    return {name}")
        return "\n".join(lines)[:high] + "\n"

    def _source(self, path: str) -> str:
        if path not in self.sources:
            self.sources[path] = self._code(path)
        return self.sources[path]

    # tools --------------------------------------------------------------------------------

    def _run_tool(self, tool: str) -> tuple[dict[str, Any], str, Any, Status]:
        """``(input, result text, output summary, status)`` of one tool call."""
        r = self.rng
        if tool == "edit_file" and self.files:
            current = r.choice(self.files)
            lines = current.content.splitlines()
            at = r.randrange(len(lines))
            lines.insert(at, f"    # {self._fill('{verb} the {noun}: {adj} before this change')}")
            lines[min(at + 1, len(lines) - 1)] = f"    {_ident(r)} = {_ident(r)}({r.randint(1, 9)})"
            content = "\n".join(lines) + "\n"
            self.sources[current.path] = content
            self._put_file(current.path, content)
            return {"path": current.path, "line": at + 1}, content, {"lines": len(lines)}, "success"
        if tool in ("read_file", "edit_file"):
            path = r.choice(_PATHS)
            content = self._source(path)
            self._put_file(path, content)
            return {"path": path}, content, {"bytes": len(content.encode())}, "success"
        if tool == "grep":
            pattern = _ident(r)
            hits: list[str] = []
            while sum(len(h) + 1 for h in hits) < r.randint(1000, 3000):
                hits.append(f"{r.choice(_PATHS)}:{r.randint(1, 400)}:    {pattern} = {_ident(r)}()")
            return {"pattern": pattern}, "\n".join(hits), {"matches": len(hits)}, "success"
        failed = r.random() < 0.25
        lines = [f"============ test session starts (seed {r.randint(1, 10**6)}) ============"]
        while sum(len(x) + 1 for x in lines) < r.randint(1000, 3000):
            outcome = "FAILED" if failed and r.random() < 0.1 else "PASSED"
            lines.append(f"tests/services/test_{_ident(r)}.py::test_{_ident(r)} {outcome}")
        lines.append(f"===== {len(lines) - 1} tests in {r.uniform(0.5, 40):.2f}s =====")
        status: Status = "error" if failed else "success"
        return {"args": ["-q", "tests/services"]}, "\n".join(lines), {"exit": int(failed)}, status

    def _compact(self) -> None:
        """Replace the oldest messages (not the system message) by one summary message."""
        old = self.messages[1:-KEEP_AFTER_COMPACTION]
        if not old:
            return
        summary = f"Summary of the {len(old)} earlier messages: " + self._prose(
            _ASSISTANT_SENTENCES, 600, 1500
        )
        self.messages = [
            self.messages[0],
            Message(role="user", content=summary),
            *self.messages[-KEEP_AFTER_COMPACTION:],
        ]

    def _put_file(self, path: str, content: str) -> None:
        for i, existing in enumerate(self.files):
            if existing.path == path:
                if existing.content != content:
                    self.files[i] = ContextFile(path=path, content=content)  # edited in place
                return
        self.files.append(ContextFile(path=path, content=content))

    # turns --------------------------------------------------------------------------------

    def turn(self) -> tuple[str, ContextBundle]:
        r = self.rng
        self.turns += 1
        self.now += timedelta(seconds=r.randint(5, 90))
        self.messages.append(Message(role="user", content=self._prose(_USER_SENTENCES, 300, 800)))
        blocks: list[dict[str, Any]] = [
            {"type": "text", "text": self._prose(_ASSISTANT_SENTENCES, 80, 400)}
        ]
        tool = r.choice(_TOOLS) if r.random() < 0.7 else None
        if tool is not None:
            call_id = f"toolu_{r.getrandbits(96):024x}"
            tool_input, result, output, status = self._run_tool(tool)
            blocks.append({"type": "tool_use", "id": call_id, "name": tool, "input": tool_input})
            self.messages.append(Message(role="assistant", content=blocks))
            self.messages.append(
                Message(
                    role="tool",
                    content=[{"type": "tool_result", "tool_use_id": call_id, "content": result}],
                )
            )
            self.tool_calls.append(
                ToolCall(
                    id=call_id,
                    tool=tool,
                    input=tool_input,
                    output=output,
                    status=status,
                    timestamp=self.now,
                )
            )
            self.log_events.append(
                LogEvent(
                    message=f"tool {tool} finished",
                    level="warning" if status == "error" else "info",
                    timestamp=self.now,
                    data={"tool": tool, "ms": r.randint(3, 4000), "turn": self.turns},
                )
            )
        else:
            self.messages.append(Message(role="assistant", content=blocks))
        if self.history == "compacted" and self.turns % COMPACT_EVERY == 0:
            self._compact()
        messages = self.messages
        if self.history == "sliding":
            messages = messages[-WINDOW:]
        bundle = ContextBundle(
            messages=list(messages),
            tool_calls=list(self.tool_calls),
            files=list(self.files),
            log_events=list(self.log_events),
            model="claude-sonnet-4",
            captured_at=self.now,
        )
        return f"turn {self.turns}", bundle


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    deps: Deps
    database_bytes: Callable[[], int]
    tables: Callable[[], dict[str, int]]  # bytes per table with its indexes, largest first
    requests: RequestCounter | None = None  # object-store requests, when the blobs are on S3


@dataclass
class Result:
    backend: str
    history: str
    blobs: str  # "local" (a folder) or "s3" (moto)
    turns: int
    messages: int
    tool_calls: int
    files: int
    distinct_items: int
    distinct_bytes: int
    naive_bytes: int
    blob_bytes: int
    db_bytes: int
    db_empty_bytes: int  # the migrated schema before the run: fixed, not growth
    stored_bytes: int  # blob_bytes + db_bytes
    stored_ratio: float  # stored / distinct
    growth_ratio: float  # (stored - db_empty) / distinct
    naive_ratio: float  # naive / distinct
    write_seconds: float
    snapshots_per_second: float
    read_seconds: float
    bundles_per_second: float
    last_bundle_ms: float
    db_tables: dict[str, int]
    # S3 only: object-store requests per snapshot write / per bundle read, by operation
    requests_per_write: dict[str, float] | None = None
    requests_per_read: dict[str, float] | None = None
    requests_last_read: dict[str, float] | None = None  # one read of the last bundle
    puts_already_there_per_write: float | None = None  # PutObject answered 412: not written


class RequestCounter:
    """Counts the S3 requests a boto3 client sends, by operation (botocore event hooks)."""

    def __init__(self, client: Any) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-call.s3", self._before)
        client.meta.events.register("after-call.s3", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.counts[model.name] += 1
            self.counts["total"] += 1

    def _after(self, model: Any, http_response: Any, **_: Any) -> None:
        if model.name == "PutObject" and http_response.status_code == 412:
            with self._lock:
                self.counts["PutObject 412"] += 1

    def take(self) -> Counter[str]:
        """The counts since the last ``take``, and a fresh start."""
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts


def _per(counts: Counter[str], n: int) -> dict[str, float]:
    return {name: round(count / n, 2) for name, count in sorted(counts.items())}


class _Distinct:
    """Distinct content by SHA-256: what the run said, each thing counted once."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def add(self, data: bytes) -> None:
        self.sizes.setdefault(hashlib.sha256(data).hexdigest(), len(data))

    def add_bundle(self, dumped: dict[str, Any]) -> None:
        for name in ("messages", "tool_calls", "log_events"):
            for item in dumped[name]:
                self.add(canonical(item))
        for f in dumped["files"]:
            self.add(f["content"].encode("utf-8"))

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


def _comparable(bundle: ContextBundle) -> dict[str, Any]:
    dumped = bundle.model_dump(mode="json")
    return {
        "messages": dumped["messages"],
        "tool_calls": dumped["tool_calls"],
        "files": [(f["path"], f["content"], f["content_hash"]) for f in dumped["files"]],
        "log_events": dumped["log_events"],
    }


def run(backend: Backend, turns: int, history: History = "append") -> Result:
    deps = backend.deps
    db_empty = backend.database_bytes()
    key, _ = keys.create_key(deps, "storage bench")
    account = key.account_id
    session = sessions.create_session(deps, account, "storage growth", metadata={"turns": turns})
    task = sessions.create_task(deps, account, session.id, "agent run")

    agent = AgentRun(history=history)
    distinct = _Distinct()
    naive = 0
    written: list[str] = []
    write_seconds = 0.0
    bundle = ContextBundle()
    requests = backend.requests
    if requests is not None:
        requests.take()  # the set-up above sends none, but start from zero anyway
    write_requests: Counter[str] = Counter()
    for _ in range(turns):
        label, bundle = agent.turn()
        dumped = bundle.model_dump(mode="json")
        naive += len(canonical(dumped))
        distinct.add_bundle(dumped)
        started = time.perf_counter()
        snap = snapshots.create_snapshot(deps, account, task.id, label, bundle)
        write_seconds += time.perf_counter() - started
        if requests is not None:
            write_requests += requests.take()
        written.append(snap.id)

    started = time.perf_counter()
    last = ContextBundle()
    for snapshot_id in written:
        last = snapshots.get_bundle(deps, account, snapshot_id)
    read_seconds = time.perf_counter() - started
    read_requests = requests.take() if requests is not None else Counter()
    if _comparable(last) != _comparable(bundle):
        raise AssertionError(f"{backend.name}: the last bundle read back differs from the written")

    started = time.perf_counter()
    for _ in range(LAST_BUNDLE_READS):
        snapshots.get_bundle(deps, account, written[-1])
    last_ms = (time.perf_counter() - started) / LAST_BUNDLE_READS * 1000
    last_requests = requests.take() if requests is not None else Counter()

    blob_bytes = deps.blobs.size_of_prefix("")
    db_bytes = backend.database_bytes()
    stored = blob_bytes + db_bytes
    s3 = requests is not None
    return Result(
        backend=backend.name,
        history=history,
        blobs="s3" if s3 else "local",
        turns=turns,
        messages=len(bundle.messages),
        tool_calls=len(bundle.tool_calls),
        files=len(bundle.files),
        distinct_items=len(distinct.sizes),
        distinct_bytes=distinct.total,
        naive_bytes=naive,
        blob_bytes=blob_bytes,
        db_bytes=db_bytes,
        db_empty_bytes=db_empty,
        stored_bytes=stored,
        stored_ratio=round(stored / distinct.total, 3),
        growth_ratio=round((stored - db_empty) / distinct.total, 3),
        naive_ratio=round(naive / distinct.total, 3),
        write_seconds=round(write_seconds, 3),
        snapshots_per_second=round(turns / write_seconds, 1),
        read_seconds=round(read_seconds, 3),
        bundles_per_second=round(turns / read_seconds, 1),
        last_bundle_ms=round(last_ms, 1),
        db_tables=backend.tables(),
        requests_per_write=_per(write_requests, turns) if s3 else None,
        requests_per_read=_per(read_requests, turns) if s3 else None,
        requests_last_read=_per(last_requests, LAST_BUNDLE_READS) if s3 else None,
        puts_already_there_per_write=(
            round(write_requests["PutObject 412"] / turns, 2) if s3 else None
        ),
    )


# -- backends ----------------------------------------------------------------------------------


def _sqlite_tables(store: SqliteStore) -> dict[str, int]:
    """Bytes per table, its indexes included (``dbstat``; empty when SQLite lacks it)."""
    try:
        rows = store.raw().execute(
            "SELECT COALESCE(m.tbl_name, d.name) AS owner, SUM(d.pgsize) AS bytes"
            " FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name"
            " GROUP BY owner ORDER BY bytes DESC, owner"
        )
        return {str(name): int(size) for name, size in rows}
    except sqlite3.OperationalError:
        return {}


BLOB_STORES = ("local", "s3")
S3_BUCKET = "kontex-bench-blobs"
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
_REAL_AWS = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@contextmanager
def _blob_store(kind: str, folder: Path) -> Iterator[tuple[BlobStore, RequestCounter | None]]:
    """The Kontex blob store: a local folder, or ``S3Blobs`` on moto's in-process S3.

    On S3 every request the adapter's client sends is counted. Fake credentials only: with
    moto active no request leaves the process, and no real AWS account is ever read.
    """
    if kind == "local":
        yield LocalBlobs(folder), None
        return
    import boto3
    from moto import mock_aws

    from kontex.adapters.s3_blobs import S3Blobs

    saved = {name: os.environ.get(name) for name in (*_FAKE_AWS, *_REAL_AWS)}
    os.environ.update(_FAKE_AWS)
    for name in _REAL_AWS:
        os.environ.pop(name, None)
    try:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=S3_BUCKET)
            counter = RequestCounter(client)
            yield S3Blobs(S3_BUCKET, client), counter
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_sqlite(turns: int, history: History = "append", blobs: str = "local") -> Result:
    with tempfile.TemporaryDirectory(prefix="kontex-bench-") as tmp:
        store = SqliteStore(Path(tmp) / "kontex.db")
        store.migrate()
        try:
            with _blob_store(blobs, Path(tmp) / "blobs") as (blob_store, requests):
                deps = Deps(store=store, blobs=blob_store, api_key_secret=b"x")
                backend = Backend(
                    "sqlite", deps, store.database_bytes, lambda: _sqlite_tables(store), requests
                )
                return run(backend, turns, history)
        finally:
            store.close()


class Unavailable(Exception):
    """A backend's server cannot be reached (``--backend all`` then skips it)."""


@contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    import psycopg

    schema = f"kontex_bench_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise Unavailable(f"PostgreSQL unreachable at {url}: {error}".splitlines()[0]) from error
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in url else "?"
            yield f"{url}{sep}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def pg_url() -> str:
    return os.environ.get("KONTEX_BENCH_DATABASE_URL", DEFAULT_PG_URL)


def run_postgres(turns: int, history: History = "append", blobs: str = "local") -> Result:
    from kontex.adapters.postgres_store import PostgresStore

    with _pg_schema(pg_url()) as schema_url, tempfile.TemporaryDirectory(prefix="kontex-") as tmp:
        store = PostgresStore(schema_url, max_size=2)
        store.migrate()

        def tables() -> dict[str, int]:
            with store.pool.connection() as conn:
                rows = conn.execute(
                    "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes"
                    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE c.relkind = 'r' AND n.nspname = current_schema()"
                    " ORDER BY bytes DESC, name"
                ).fetchall()
            return {str(r["name"]): int(r["bytes"]) for r in rows}

        try:
            with _blob_store(blobs, Path(tmp) / "blobs") as (blob_store, requests):
                deps = Deps(store=store, blobs=blob_store, api_key_secret=b"x")
                backend = Backend("postgres", deps, store.database_bytes, tables, requests)
                return run(backend, turns, history)
        finally:
            store.close()


RUNNERS: dict[str, Callable[[int, History, str], Result]] = {
    "sqlite": run_sqlite,
    "postgres": run_postgres,
}


# -- output ------------------------------------------------------------------------------------


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


_ROWS: list[tuple[str, Callable[[Result], str]]] = [
    ("messages / tool calls / files", lambda r: f"{r.messages} / {r.tool_calls} / {r.files}"),
    ("distinct items", lambda r: f"{r.distinct_items:,}"),
    ("distinct content", lambda r: _kib(r.distinct_bytes)),
    ("naive (full bundle per snapshot)", lambda r: _kib(r.naive_bytes)),
    ("stored: blobs", lambda r: _kib(r.blob_bytes)),
    ("stored: database", lambda r: _kib(r.db_bytes)),
    ("  of which the empty schema", lambda r: _kib(r.db_empty_bytes)),
    ("stored: total", lambda r: _kib(r.stored_bytes)),
    ("stored / distinct", lambda r: f"{r.stored_ratio:.2f}x"),
    ("(stored - empty schema) / distinct", lambda r: f"{r.growth_ratio:.2f}x"),
    ("naive / distinct", lambda r: f"{r.naive_ratio:.2f}x"),
    ("snapshot writes", lambda r: f"{r.snapshots_per_second:,.1f} /s"),
    ("bundle reads (every snapshot)", lambda r: f"{r.bundles_per_second:,.1f} /s"),
    ("read of the last bundle (mean)", lambda r: f"{r.last_bundle_ms:,.1f} ms"),
]


def _markdown(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True))
        return "| " + " | ".join([first, *rest]) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2), *("-" * (w + 1) + ":" for w in widths[1:])])
    return "\n".join([fmt(header), rule + "|", *(fmt(line) for line in body)])


def _column(result: Result) -> str:
    name = f"{result.backend} {result.history}"
    return f"{name} (s3)" if result.blobs == "s3" else name


def _requests(per: dict[str, float] | None) -> str:
    if per is None:
        return "-"
    return f"{per.get('total', 0):,.1f}"


_S3_OPERATIONS = ("PutObject", "HeadObject", "GetObject")
_S3_ROWS: list[tuple[str, Callable[[Result], str]]] = [
    ("S3 requests per snapshot write", lambda r: _requests(r.requests_per_write)),
    *(
        (
            f"  {op}",
            lambda r, op=op: f"{(r.requests_per_write or {}).get(op, 0):,.1f}",
        )
        for op in _S3_OPERATIONS
    ),
    ("  PutObject answered 412 (already there)", lambda r: f"{r.puts_already_there_per_write}"),
    ("S3 requests per bundle read (every snapshot)", lambda r: _requests(r.requests_per_read)),
    ("S3 requests to read the last bundle", lambda r: _requests(r.requests_last_read)),
]


def table(results: list[Result]) -> str:
    header = [f"{results[0].turns} turns" if results else "", *(_column(r) for r in results)]
    rows = list(_ROWS)
    if any(r.blobs == "s3" for r in results):
        rows += _S3_ROWS
    return _markdown(header, [[name, *(cell(r) for r in results)] for name, cell in rows])


def breakdown(result: Result, top: int = 6) -> str:
    """The largest tables of a backend (each with its indexes), as a share of the database."""
    rows = [
        [name, _kib(size), f"{size / result.db_bytes:.0%}"]
        for name, size in list(result.db_tables.items())[:top]
    ]
    header = [f"{_column(result)}: largest tables", "bytes", "of database"]
    return _markdown(header, rows)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument(
        "--history",
        choices=[*HISTORIES, "all"],
        default="append",
        help="what each snapshot holds: the whole history (append), the last "
        f"{WINDOW} messages (sliding), or a history compacted every {COMPACT_EVERY} turns",
    )
    parser.add_argument(
        "--blobs",
        choices=BLOB_STORES,
        default="local",
        help="the Kontex blob store: a local folder, or S3Blobs on moto's in-process S3 "
        "(counts the object-store requests per write and per read)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.turns < 1:
        parser.error("--turns must be at least 1")

    histories: tuple[History, ...] = HISTORIES if args.history == "all" else (args.history,)
    load_before = machine()["load_average"]
    results: list[Result] = []
    skipped: dict[str, str] = {}
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        try:
            for history in histories:
                results.append(RUNNERS[backend](args.turns, history, args.blobs))
        except Unavailable as error:
            if args.backend != "all":
                raise SystemExit(str(error)) from None
            skipped[backend] = str(error)

    info = machine()
    info["load_average_before"] = load_before
    report = {
        "turns": args.turns,
        "histories": list(histories),
        "blobs": args.blobs,
        "machine": info,
        "results": [asdict(r) for r in results],
        "skipped": skipped,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"Storage growth: {args.turns} turns, one snapshot per turn, blobs {args.blobs}"
            f" ({info['cpus']} x {info['cpu']}, load average {load_before} before,"
            f" {info['load_average']} after)"
        )
        print()
        print(table(results))
        for result in results:
            if result.db_tables:
                print()
                print(breakdown(result))
        for backend, reason in skipped.items():
            print(f"\n{backend} skipped: {reason}")
    return report


if __name__ == "__main__":
    main()
