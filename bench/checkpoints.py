"""Checkpoints side by side: Kontex snapshots and LangGraph's own checkpointers, one process.

The workload: ``--tasks`` agent tasks (LangGraph: threads) each take ``--steps`` steps; every
step adds one message of about 800 bytes and checkpoints the LAST ``--window`` messages (50:
about 40 KB of state), written round robin across the tasks. Each side gets the data as its
users hold it, made before the clock starts:

- Kontex: ``{"role", "content"}`` dicts; the ``ContextBundle`` is built from them inside the
  timed region, then ``snapshots.create_snapshot``. ``--mode full`` (today's): every step
  writes the whole window. ``--mode delta``: every step writes only the new message, with a
  ``SnapshotBase`` naming the task's previous snapshot and the slice of its messages kept
  (``(1, None)`` once the window is full and slides; the service's delta write,
  ``bundles.write_delta``). The latest snapshot of a task is read with
  ``snapshots.read_latest`` when the engine has it, else ``store.latest_snapshot`` +
  ``get_bundle`` (see ``read_latest`` below). Blobs in a local folder.
- LangGraph: LangChain message objects (``HumanMessage`` / ``AIMessage``, one object per message,
  shared by the windows that hold it, as a graph's state holds them), in a checkpoint
  (``empty_checkpoint()`` with ``channel_values={"messages": [...]}``, its channel version from
  the saver's ``get_next_version``) written with ``put(config, checkpoint, metadata,
  new_versions)`` after the thread's previous checkpoint; read with
  ``get_tuple({"configurable": {"thread_id": ..., "checkpoint_ns": ""}})``. Serialised by the
  saver's own ``JsonPlusSerializer``. The same in both modes: a LangGraph saver always writes
  the whole ``messages`` channel when it changed.

Durability is the same on both sides: on SQLite both connections run WAL with
``synchronous=NORMAL`` (``--sqlite-synchronous``, default ``normal``: Kontex's own setting, see
``SqliteStore._connect``; SqliteSaver would otherwise run with SQLite's default, FULL, which
syncs the WAL at every commit). ``full`` sets both to FULL instead. The setting is read back
from both connections and printed. PostgreSQL: both on the server's defaults (``fsync`` on,
``synchronous_commit`` on).

The two sides alternate write by write (and read by read), so a change of machine load hits
both alike. Reported per backend (sqlite: ``SqliteSaver``; postgres: ``PostgresSaver``):
writes/s with per-write latency p50/p99, reads of the latest checkpoint/snapshot per second
(round robin over the tasks, ``--rounds`` times each), stored bytes per snapshot (growth over
the empty schema, divided by the number of snapshots) and the Kontex/LangGraph ratio of each.
The bytes ratio is LangGraph / Kontex, so for every ratio >= 1.0 means Kontex is better.

    python bench/checkpoints.py [--tasks 10] [--steps 100] [--window 50] [--rounds 20]
                                [--backend sqlite|postgres|all] [--mode full|delta|all]
                                [--sqlite-synchronous normal|full] [--json]

Needs the ``bench`` extra (``pip install -e '.[bench]'``). PostgreSQL is reached at
``KONTEX_BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``); Kontex
and LangGraph each get a fresh schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kontex import tokens
from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.sqlite_store import SqliteStore
from kontex.domain import models
from kontex.domain.models import ContextBundle, Message, Snapshot
from kontex.services import keys, sessions, snapshots
from kontex.services.deps import Deps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from storage_growth import Unavailable, _pg_schema, machine, pg_url  # noqa: E402

BACKENDS = ("sqlite", "postgres")
MODES = ("full", "delta")
Plan = list[list[list[dict[str, Any]]]]  # [step][task] -> the window after that step
MESSAGE_BYTES = 800

# -- the workload ------------------------------------------------------------------------------

_WORDS = (  # noqa: SIM905 (a paragraph reads better than 90 quoted words)
    "the agent reads file test snapshot retry pool query index schema error timeout worker "
    "queue session task message tool call result cache config handler request response "
    "latency budget window token chain manifest blob store write read commit rollback "
    "migration fixture assert value limit offset cursor page batch stream event trace span "
    "function module import return raise check guard validate measure refactor rename split "
    "before after while because when then also only every each other first last next "
    "slow fast stale empty partial legacy new large small flaky sealed nested concurrent"
).split()


def _text(rng: random.Random, size: int) -> str:
    """About ``size`` bytes of prose with identifiers and numbers (compresses like chat text)."""
    words: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.06:
            word = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}()"
        elif roll < 0.1:
            word = str(rng.randint(2, 99_999))
        elif roll < 0.12:
            word = f"{rng.getrandbits(48):012x}"
        else:
            word = rng.choice(_WORDS)
        if rng.random() < 0.08:
            word += "."
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def workload(tasks: int, steps: int, window: int, seed: int = 11) -> Plan:
    """``[step][task]`` -> the last ``window`` messages of that task after that step."""
    rng = random.Random(seed)
    histories: list[list[dict[str, Any]]] = [[] for _ in range(tasks)]
    plan: list[list[list[dict[str, Any]]]] = []
    for step in range(steps):
        row = []
        for task, history in enumerate(histories):
            role = "user" if step % 2 == 0 else "assistant"
            text = f"[task {task} step {step}] " + _text(rng, MESSAGE_BYTES)
            history.append({"role": role, "content": text[:MESSAGE_BYTES]})
            row.append(list(history[-window:]))
        plan.append(row)
    return plan


def as_langchain(plan: Plan) -> list[list[list[Any]]]:
    """The plan with LangChain messages, as a LangGraph user holds them: one ``HumanMessage`` or
    ``AIMessage`` per message, the same object in every window that holds it."""
    from langchain_core.messages import AIMessage, HumanMessage

    made: dict[int, Any] = {}

    def one(message: dict[str, Any]) -> Any:
        if id(message) not in made:
            kind = HumanMessage if message["role"] == "user" else AIMessage
            made[id(message)] = kind(content=message["content"])
        return made[id(message)]

    return [[[one(m) for m in window] for window in row] for row in plan]


def pairs(messages: list[Any]) -> list[tuple[str, Any]]:
    """(role, content) of dicts and of LangChain messages alike, to compare what was read."""
    roles = {"human": "user", "ai": "assistant"}
    return [
        (m["role"], m["content"]) if isinstance(m, dict) else (roles[m.type], m.content)
        for m in messages
    ]


# -- Kontex ------------------------------------------------------------------------------------


def read_latest(deps: Deps, account_id: str, task_id: str) -> tuple[Snapshot, ContextBundle]:
    """The task's latest snapshot and its bundle: ``snapshots.read_latest`` (one transaction)
    when the engine has it, else the latest snapshot row and then its bundle."""
    native = getattr(snapshots, "read_latest", None)
    if native is not None:
        result: tuple[Snapshot, ContextBundle] = native(deps, account_id, task_id)
        return result
    with deps.store.unit(write=False) as uow:
        head = uow.snapshots.head(account_id, task_id)
    snapshot = head[0] if head else None
    if snapshot is None:
        raise LookupError(f"task {task_id} has no snapshot")
    return snapshot, snapshots.get_bundle(deps, account_id, snapshot.id)


def snapshot_base() -> Any:
    """``SnapshotBase`` of the delta write API, where the engine has it."""
    found = getattr(models, "SnapshotBase", None)
    if found is None:
        raise NotImplementedError(
            "--mode delta needs the service's delta write (SnapshotBase in kontex.domain.models"
            " and create_snapshot(..., base=)), which this engine does not have"
        )
    return found


class KontexSide:
    name = "kontex"

    def __init__(
        self, deps: Deps, database_bytes: Callable[[], int], tasks: int, mode: str = "full"
    ) -> None:
        tokens.count_text("warm up")  # loads the tokenizer once, before any write is timed
        self.deps = deps
        self.mode = mode
        self.base_class = snapshot_base() if mode == "delta" else None
        self.heads: list[str | None] = [None] * tasks  # delta: the task's last snapshot
        self.lengths = [0] * tasks  # delta: messages in it
        self._database_bytes = database_bytes
        self.empty_bytes = self.stored_bytes()
        key, _ = keys.create_key(deps, "checkpoint bench")
        self.account = key.account_id
        session = sessions.create_session(deps, self.account, "checkpoints bench")
        self.tasks = [
            sessions.create_task(deps, self.account, session.id, f"task {i}").id
            for i in range(tasks)
        ]

    def write(self, task: int, step: int, messages: list[dict[str, Any]]) -> None:
        if self.mode == "full":
            bundle = ContextBundle(messages=[Message(**m) for m in messages])
            snapshots.create_snapshot(
                self.deps, self.account, self.tasks[task], f"step {step}", bundle
            )
            return
        # delta: each step appends one message; the window drops from the front what it lost
        head = self.heads[task]
        new = messages[-1:] if head is not None else messages
        base = None
        if head is not None:
            dropped = self.lengths[task] - (len(messages) - len(new))
            base = self.base_class(snapshot_id=head, messages=(dropped, None) if dropped else None)
        bundle = ContextBundle(messages=[Message(**m) for m in new])
        written = snapshots.create_snapshot(
            self.deps, self.account, self.tasks[task], f"step {step}", bundle, base=base
        )
        self.heads[task], self.lengths[task] = written.id, len(messages)

    def read(self, task: int) -> list[dict[str, Any]]:
        _, bundle = read_latest(self.deps, self.account, self.tasks[task])
        return [{"role": m.role, "content": m.content} for m in bundle.messages]

    def stored_bytes(self) -> int:
        return self._database_bytes() + self.deps.blobs.size_of_prefix("")

    @staticmethod
    def read_path() -> str:
        if getattr(snapshots, "read_latest", None) is not None:
            return "snapshots.read_latest"
        return "store.latest_snapshot + snapshots.get_bundle"


# -- LangGraph ---------------------------------------------------------------------------------


class LangGraphSide:
    name = "langgraph"

    def __init__(self, saver: Any, stored_bytes: Callable[[], int], tasks: int) -> None:
        self.saver = saver
        self._stored_bytes = stored_bytes
        saver.setup()
        self.empty_bytes = stored_bytes()
        self.configs: list[dict[str, Any]] = [
            {"configurable": {"thread_id": f"thread-{i}", "checkpoint_ns": ""}}
            for i in range(tasks)
        ]
        self.versions: list[Any] = [None] * tasks

    def write(self, task: int, step: int, messages: list[Any]) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        version = self.saver.get_next_version(self.versions[task], None)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": list(messages)}
        checkpoint["channel_versions"] = {"messages": version}
        checkpoint["versions_seen"] = {"agent": {"messages": version}}
        checkpoint["updated_channels"] = ["messages"]
        metadata = {"source": "loop", "step": step, "parents": {}}
        self.configs[task] = self.saver.put(
            self.configs[task], checkpoint, metadata, {"messages": version}
        )
        self.versions[task] = version

    def read(self, task: int) -> list[Any]:
        thread_id = self.configs[task]["configurable"]["thread_id"]
        found = self.saver.get_tuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        )
        if found is None:
            raise LookupError(f"thread {thread_id} has no checkpoint")
        messages: list[Any] = found.checkpoint["channel_values"]["messages"]
        return messages

    def stored_bytes(self) -> int:
        return self._stored_bytes()


# -- measuring ---------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Side:
    name: str
    writes: int = 0
    write_latencies: list[float] = field(default_factory=list, repr=False)
    reads: int = 0
    read_latencies: list[float] = field(default_factory=list, repr=False)
    empty_bytes: int = 0
    stored_bytes: int = 0
    read_path: str = ""

    def summary(self) -> dict[str, Any]:
        growth = self.stored_bytes - self.empty_bytes
        return {
            "name": self.name,
            "writes": self.writes,
            "writes_per_second": round(self.writes / sum(self.write_latencies), 1),
            "write_p50_ms": round(statistics.median(self.write_latencies) * 1000, 2),
            "write_p99_ms": round(_percentile(self.write_latencies, 0.99) * 1000, 2),
            "reads": self.reads,
            "reads_per_second": round(self.reads / sum(self.read_latencies), 1),
            "read_p50_ms": round(statistics.median(self.read_latencies) * 1000, 2),
            "read_p99_ms": round(_percentile(self.read_latencies, 0.99) * 1000, 2),
            "empty_bytes": self.empty_bytes,
            "stored_bytes": self.stored_bytes,
            "bytes_per_snapshot": round(growth / self.writes),
            **({"read_path": self.read_path} if self.read_path else {}),
        }


@dataclass
class Work:
    """The workload, as each side's users hold it (``as_langchain``), and the read rounds."""

    plan: Plan
    langchain: list[list[list[Any]]]
    rounds: int
    mode: str = "full"
    synchronous: str = "normal"


def run(kontex: KontexSide, langgraph: LangGraphSide, work: Work) -> dict[str, Any]:
    sides = [kontex, langgraph]
    plans: dict[str, list[list[list[Any]]]] = {"kontex": work.plan, "langgraph": work.langchain}
    stats = {s.name: Side(s.name, empty_bytes=s.empty_bytes) for s in sides}
    stats["kontex"].read_path = kontex.read_path()
    turn = 0
    for step in range(len(work.plan)):
        for task in range(len(work.plan[step])):
            order = sides if turn % 2 == 0 else sides[::-1]  # alternate who goes first
            turn += 1
            for side in order:
                messages = plans[side.name][step][task]
                started = time.perf_counter()
                side.write(task, step, messages)
                stats[side.name].write_latencies.append(time.perf_counter() - started)
                stats[side.name].writes += 1

    tasks = len(work.plan[-1])
    rounds = work.rounds
    for side in sides:  # both give back exactly what was written last
        for task in range(tasks):
            if pairs(side.read(task)) != pairs(work.plan[-1][task]):
                raise AssertionError(f"{side.name}: task {task} read back differs from the written")

    turn = 0
    for _ in range(rounds):
        for task in range(tasks):
            order = sides if turn % 2 == 0 else sides[::-1]
            turn += 1
            for side in order:
                started = time.perf_counter()
                side.read(task)
                stats[side.name].read_latencies.append(time.perf_counter() - started)
                stats[side.name].reads += 1

    for side in sides:
        stats[side.name].stored_bytes = side.stored_bytes()
    k, lg = stats["kontex"].summary(), stats["langgraph"].summary()
    return {
        "kontex": k,
        "langgraph": lg,
        "ratios": {  # >= 1.0: Kontex is better
            "writes_per_second": round(k["writes_per_second"] / lg["writes_per_second"], 2),
            "reads_per_second": round(k["reads_per_second"] / lg["reads_per_second"], 2),
            "bytes_per_snapshot": round(lg["bytes_per_snapshot"] / k["bytes_per_snapshot"], 2),
        },
    }


# -- backends ----------------------------------------------------------------------------------


def _sqlite_used_bytes(conn: sqlite3.Connection) -> int:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def run_sqlite(work: Work) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    tasks = len(work.plan[0])
    pragma = f"PRAGMA synchronous={work.synchronous.upper()}"
    with tempfile.TemporaryDirectory(prefix="kontex-bench-") as tmp:
        store = SqliteStore(Path(tmp) / "kontex.db")
        store.migrate()
        # the same durability on both sides: the bench runs in one thread, so the store's
        # connection (one per thread) is the one every write of the Kontex side uses
        store.raw().execute(pragma)
        conn = sqlite3.connect(Path(tmp) / "langgraph.db", check_same_thread=False)
        conn.execute(pragma)
        try:
            deps = Deps(store=store, blobs=LocalBlobs(Path(tmp) / "blobs"), api_key_secret=b"x")
            kontex = KontexSide(deps, store.database_bytes, tasks, work.mode)
            langgraph = LangGraphSide(SqliteSaver(conn), lambda: _sqlite_used_bytes(conn), tasks)
            result = run(kontex, langgraph, work)
            result["durability"] = {  # read back after the run, from both connections
                side: "journal_mode={}, synchronous={}".format(
                    c.execute("PRAGMA journal_mode").fetchone()[0],
                    SYNCHRONOUS[c.execute("PRAGMA synchronous").fetchone()[0]],
                )
                for side, c in (("kontex", store.raw()), ("langgraph", conn))
            }
            return result
        finally:
            conn.close()
            store.close()


def _pg_schema_bytes(conn: Any) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS total"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname = current_schema()"
    ).fetchone()
    return int(row["total"])


@contextmanager
def _langgraph_postgres(url: str) -> Iterator[tuple[Any, Callable[[], int]]]:
    """``PostgresSaver`` on its own connection (autocommit, dict rows, no prepared statements,
    as ``PostgresSaver.from_conn_string`` makes it) whose ``search_path`` is the fresh schema."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row

    with Connection.connect(
        url, autocommit=True, prepare_threshold=0, row_factory=dict_row
    ) as conn:
        yield PostgresSaver(conn), lambda: _pg_schema_bytes(conn)


def run_postgres(work: Work) -> dict[str, Any]:
    from kontex.adapters.postgres_store import PostgresStore

    tasks = len(work.plan[0])
    url = pg_url()
    with ExitStack() as stack:
        kontex_url = stack.enter_context(_pg_schema(url))
        langgraph_url = stack.enter_context(_pg_schema(url))
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="kontex-bench-"))
        store = PostgresStore(kontex_url, max_size=2)
        stack.callback(store.close)
        store.migrate()
        saver, saver_bytes = stack.enter_context(_langgraph_postgres(langgraph_url))
        deps = Deps(store=store, blobs=LocalBlobs(Path(tmp) / "blobs"), api_key_secret=b"x")
        kontex = KontexSide(deps, store.database_bytes, tasks, work.mode)
        langgraph = LangGraphSide(saver, saver_bytes, tasks)
        result = run(kontex, langgraph, work)
        settings = (
            "SELECT current_setting('fsync') AS f, current_setting('synchronous_commit') AS s"
        )
        row = saver.conn.execute(settings).fetchone()
        result["durability"] = {
            "both": f"fsync={row['f']}, synchronous_commit={row['s']} (server defaults)"
        }
        return result


RUNNERS: dict[str, Callable[[Work], dict[str, Any]]] = {
    "sqlite": run_sqlite,
    "postgres": run_postgres,
}


# -- output ------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "langgraph",
        "langgraph-checkpoint",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "psycopg",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def table(backend: str, result: dict[str, Any], mode: str = "full") -> str:
    k, lg, r = result["kontex"], result["langgraph"], result["ratios"]
    saver = {"sqlite": "SqliteSaver", "postgres": "PostgresSaver"}[backend]
    rows = [
        (
            "writes/s",
            f"{k['writes_per_second']:,.1f}",
            f"{lg['writes_per_second']:,.1f}",
            f"{r['writes_per_second']:.2f}",
        ),
        (
            "write latency p50 / p99 (ms)",
            f"{k['write_p50_ms']:.2f} / {k['write_p99_ms']:.2f}",
            f"{lg['write_p50_ms']:.2f} / {lg['write_p99_ms']:.2f}",
            "",
        ),
        (
            "read-latest/s",
            f"{k['reads_per_second']:,.1f}",
            f"{lg['reads_per_second']:,.1f}",
            f"{r['reads_per_second']:.2f}",
        ),
        (
            "read latency p50 / p99 (ms)",
            f"{k['read_p50_ms']:.2f} / {k['read_p99_ms']:.2f}",
            f"{lg['read_p50_ms']:.2f} / {lg['read_p99_ms']:.2f}",
            "",
        ),
        (
            "stored bytes per snapshot",
            f"{k['bytes_per_snapshot']:,}",
            f"{lg['bytes_per_snapshot']:,}",
            f"{r['bytes_per_snapshot']:.2f}",
        ),
        (
            "stored total (empty schema)",
            f"{k['stored_bytes'] / 1024:,.0f} KiB ({k['empty_bytes'] / 1024:,.0f})",
            f"{lg['stored_bytes'] / 1024:,.0f} KiB ({lg['empty_bytes'] / 1024:,.0f})",
            "",
        ),
    ]
    header = (f"{backend}, {mode}", "Kontex", f"LangGraph {saver}", "ratio (>= 1: Kontex better)")
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(4)]
    lines = [
        "| "
        + " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        + " |"
        for line in [header, *rows]
    ]
    rule = "|" + "|".join(["-" * (widths[0] + 2), *("-" * (w + 1) + ":" for w in widths[1:])]) + "|"
    return "\n".join([lines[0], rule, *lines[1:]])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--window", type=int, default=50, help="messages per checkpoint")
    parser.add_argument("--rounds", type=int, default=20, help="read-latest rounds over the tasks")
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument(
        "--mode",
        choices=[*MODES, "all"],
        default="full",
        help="what Kontex writes per step: the whole window (full) or only the new message"
        " over the previous snapshot (delta); LangGraph always writes the whole window",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("normal", "full"),
        default="normal",
        help="PRAGMA synchronous of both SQLite connections (default: Kontex's own, NORMAL)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    if min(args.tasks, args.steps, args.window, args.rounds) < 1:
        parser.error("--tasks, --steps, --window and --rounds must be at least 1")
    modes = MODES if args.mode == "all" else (args.mode,)
    if "delta" in modes:
        try:
            snapshot_base()
        except NotImplementedError as error:
            parser.error(str(error))

    plan = workload(args.tasks, args.steps, args.window)
    langchain = as_langchain(plan)
    last = plan[-1][0]
    state_json = json.dumps(last).encode()
    state_bytes = len(state_json)
    compressible = round(state_bytes / len(zlib.compress(state_json)), 2)
    load_before = machine()["load_average"]
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for mode in modes:
        work = Work(plan, langchain, args.rounds, mode, args.sqlite_synchronous)
        for backend in BACKENDS if args.backend == "all" else (args.backend,):
            if backend in skipped:
                continue
            try:
                results.setdefault(mode, {})[backend] = RUNNERS[backend](work)
            except Unavailable as error:
                if args.backend != "all":
                    raise SystemExit(str(error)) from None
                skipped[backend] = str(error)

    info = machine()
    info["load_average_before"] = load_before
    report = {
        "tasks": args.tasks,
        "steps": args.steps,
        "window": args.window,
        "rounds": args.rounds,
        "modes": list(modes),
        "sqlite_synchronous": args.sqlite_synchronous.upper(),
        "langgraph_messages": "langchain_core HumanMessage / AIMessage",
        "state_bytes": state_bytes,
        "state_zlib_ratio": compressible,  # how well the text compresses (PostgreSQL TOAST)
        "machine": info,
        "versions": _versions(),
        "results": results,
        "skipped": skipped,
        "ratios_note": "every ratio >= 1.0 means Kontex is better "
        "(writes/s and reads/s: Kontex / LangGraph; bytes per snapshot: LangGraph / Kontex)",
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return report
    print(
        f"Checkpoints: {args.tasks} tasks x {args.steps} steps, the last {args.window} messages"
        f" per checkpoint (~{state_bytes / 1000:.0f} KB of state as JSON, {compressible}x"
        " smaller with zlib), round robin;"
        f" read-latest {args.rounds} rounds"
    )
    print(
        f"Machine: {info['cpus']} x {info['cpu']}; load average {load_before} before,"
        f" {info['load_average']} after; Python {info['python']}, SQLite {info['sqlite']}"
    )
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    print(
        "LangGraph is given LangChain messages (HumanMessage / AIMessage); Kontex role/content"
        f" dicts. SQLite: synchronous={args.sqlite_synchronous.upper()} on both sides."
    )
    for mode, by_backend in results.items():
        for backend, result in by_backend.items():
            print()
            print(table(backend, result, mode))
            for side, setting in result["durability"].items():
                print(f"durability ({side}): {setting}")
    print()
    print(
        "Modes: full: Kontex writes the whole window each step; delta: only the new message,"
        " over the previous snapshot (SnapshotBase). LangGraph writes the whole window in both."
    )
    print(f"Kontex reads the latest snapshot with {KontexSide.read_path()}.")
    print("Ratios: " + report["ratios_note"] + ".")
    for backend, reason in skipped.items():
        print(f"\n{backend} skipped: {reason}")
    return report


if __name__ == "__main__":
    main()
