"""Search quality and speed on the labelled set in tests/data/search/, with the offline embedder.

The set: ``snapshots.json`` (42 snapshots of agent work, each on its own topic: a user message,
the assistant's answer, some tool calls and files) and ``queries.json`` (36 queries, each with
the snapshot(s) it should find; 14 of them exact identifiers, error codes or file paths such as
``parse_jwt_claims``, ``E11000``, ``middleware/ratelimit.go``).

1. Each snapshot is written through the snapshot use case (SQLite in a temporary folder), one
   session per snapshot, and embedded through the embed use case into Qdrant local mode on
   disk, as ``kontex dev`` runs it: **embed throughput** is snapshots/s of that step (the
   model's time and the on-disk writes).
2. Every query runs in the three modes (``dense`` only, ``sparse`` only, ``hybrid``: Qdrant's
   prefetch of both fused by reciprocal rank) through ``services.search.search``:
   **recall@5** (the share of queries whose expected snapshot is in the first 5) and **MRR**
   (mean of 1/rank of the first expected snapshot in the first 10, 0 when absent).
3. **Query latency**: the hybrid queries again, ``--rounds`` times each, timed in process
   (embedding the query, the fused Qdrant query, grouping), p50 and p99. With ``--http`` also
   through a real ``kontex dev`` (the set written over REST, each ``GET /v1/search`` timed by
   the client, key check and the API process included).
4. **Freshness** (``--freshness N``): a LangGraph-like workload on a real ``kontex dev``
   (offline model, Qdrant local mode, SQLite): one thread of a ReAct agent whose messages
   channel is a sliding window of the last ``--window`` messages (a question, a tool call, the
   tool's result, an answer, over and over, each message naming its own case number), put by
   ``KontexSaver`` (the checkpoint API: LangChain messages, every other channel a serialised
   file, deltas) one after the other, as fast as the API answers. A WebSocket subscriber to the
   thread's session times each ``snapshot.embedded`` (written after the snapshot's points and
   their mapping are stored: findable). Reported: the writes/s; **embed throughput** while the
   workload runs, in snapshots/s and items/s (the pieces of content the worker maps, each
   looked up; and the new points it writes); **the delay from write to findable** (p50, p95,
   max: from the put's answer to its ``snapshot.embedded``); **the time until the last
   snapshot is findable** (from the last put's answer until ``GET /v1/search`` for the last
   message's case number answers the last snapshot); 20 messages probed by their case number
   (the newest snapshot holding each must be among the 10 answers); and
   the embed use case's **capacity** alone: the same snapshots embedded again in process into
   an empty collection, nothing else of the stack running. The load average is printed.

    python bench/search_eval.py [--rounds 5] [--http] [--freshness 1000 [--window 50]]
        [--port P] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "search"
MODES = ("dense", "sparse", "hybrid")


def load_set() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    snapshots = json.loads((DATA / "snapshots.json").read_text())
    queries = json.loads((DATA / "queries.json").read_text())
    return snapshots, queries


@dataclass
class Quality:
    recall_at_5: float
    mrr: float
    missed: list[str] = field(default_factory=list)


@dataclass
class Freshness:
    snapshots: int
    window: int
    write_seconds: float
    writes_per_second: float
    embed_seconds: float  # from the first put to the last snapshot.embedded
    embed_snapshots_per_second: float
    items_per_second: float  # pieces of content mapped (each looked up in the index)
    embedded_per_second: float  # new points written (their vectors embedded or cached)
    delay_ms_p50: float
    delay_ms_p95: float
    delay_ms_max: float
    last_findable_seconds: float  # after the last put's answer, by GET /v1/search
    probes: int
    probes_found: int
    probes_missed: list[str]  # case numbers whose newest holder search did not answer
    capacity_snapshots_per_second: float  # the embed use case alone, in process
    capacity_items_per_second: float
    capacity_embedded_per_second: float
    load_average: list[float] = field(default_factory=list)  # before, after the live run
    memory_mb: float = 0.0  # PSS of kontex dev's process tree after the run
    memory_by_process: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    snapshots: int
    queries: int
    points: int
    embed_seconds: float
    embed_snapshots_per_second: float
    quality: dict[str, Quality]
    query_ms_p50: float
    query_ms_p99: float
    http_ms_p50: float | None = None
    http_ms_p99: float | None = None
    freshness: Freshness | None = None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build(folder: Path) -> tuple[Any, str, dict[str, str], float]:
    """The set written and embedded; returns deps, the account, key -> snapshot id, seconds."""
    from kontex.adapters.local_blobs import LocalBlobs
    from kontex.adapters.offline_embedder import OfflineEmbedder
    from kontex.adapters.qdrant_index import QdrantIndex
    from kontex.adapters.sqlite_store import SqliteStore
    from kontex.domain.models import ContextBundle
    from kontex.services import keys, search, sessions, snapshots
    from kontex.services.deps import Deps

    store = SqliteStore(folder / "kontex.db")
    store.migrate()
    embedder = OfflineEmbedder()
    embedder.embed_query("warm up")  # the model's load is not throughput
    index = QdrantIndex("eval", embedder.dimensions, path=folder / "qdrant")
    deps = Deps(store=store, blobs=LocalBlobs(folder / "blobs"), api_key_secret=b"bench")
    deps.embedder, deps.index = embedder, index
    account = keys.create_key(deps, "eval")[0].account_id
    snaps, _ = load_set()
    ids: dict[str, str] = {}
    for s in snaps:
        session = sessions.create_session(deps, account, s["key"])
        task = sessions.create_task(deps, account, session.id, "work")
        bundle = ContextBundle.model_validate(s["bundle"])
        ids[s["key"]] = snapshots.create_snapshot(deps, account, task.id, s["label"], bundle).id
    started = time.perf_counter()
    for snapshot_id in ids.values():
        search.embed_snapshot(deps, account, snapshot_id, announce=False)
    return deps, account, ids, time.perf_counter() - started


def evaluate(deps: Any, account: str, ids: dict[str, str], mode: str) -> Quality:
    from kontex.services import search

    _, queries = load_set()
    hits5 = 0
    reciprocal = 0.0
    missed: list[str] = []
    for query in queries:
        expected = {ids[k] for k in query["expected"]}
        found = search.search(deps, account, query["q"], limit=10, mode=mode).results  # type: ignore[arg-type]
        ranked = [h.snapshot_id for h in found]
        rank = next((i + 1 for i, sid in enumerate(ranked) if sid in expected), None)
        if rank is not None and rank <= 5:
            hits5 += 1
        else:
            missed.append(query["q"])
        reciprocal += 1 / rank if rank else 0.0
    return Quality(hits5 / len(queries), reciprocal / len(queries), missed)


def latency(deps: Any, account: str, rounds: int) -> list[float]:
    from kontex.services import search

    _, queries = load_set()
    times: list[float] = []
    for _ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            search.search(deps, account, query["q"], limit=10)
            times.append((time.perf_counter() - started) * 1000)
    return times


def http_latency(rounds: int, port: int | None = None) -> list[float]:
    """The set over REST on a real ``kontex dev``, then each ``GET /v1/search`` timed."""
    sys.path.insert(0, str(ROOT))
    from tests.e2e.stack import Http, create_key, start_dev, stop_dev

    snaps, queries = load_set()
    offline = {"VOYAGE_API_KEY": "", "QDRANT_URL": ""}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        create_key(data, "bootstrap", offline)
        stack = start_dev(data, offline, port)
        try:
            api = Http(stack.base, create_key(data, "bench", offline))
            last = ""
            for s in snaps:
                session = api("POST", "/v1/sessions", {"name": s["key"]})[1]
                task = api("POST", f"/v1/sessions/{session['id']}/tasks", {"name": "w"})[1]
                body = {"label": s["label"], "bundle": s["bundle"]}
                last = api("POST", f"/v1/tasks/{task['id']}/snapshots", body)[1]["id"]
            deadline = time.monotonic() + 300
            probe = "/v1/search?" + urllib.parse.urlencode({"q": snaps[-1]["label"]})
            while time.monotonic() < deadline:  # until the last snapshot is embedded
                if any(r["snapshot_id"] == last for r in api("GET", probe)[1]["results"]):
                    break
                time.sleep(0.2)
            times: list[float] = []
            for _ in range(rounds):
                for query in queries:
                    path = "/v1/search?" + urllib.parse.urlencode({"q": query["q"]})
                    started = time.perf_counter()
                    status, _ = api("GET", path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert status == 200
        finally:
            stop_dev(stack)
    return times


# -- freshness -------------------------------------------------------------------------------

GLUE = ("the", "a", "of", "to", "in", "for", "with", "on", "after", "before", "when", "why", "how")
TOPICS = (
    "login token expiry clock skew refresh session cookie",
    "database migration index lock timeout replica lag",
    "payment webhook retry idempotency key duplicate charge",
    "cache eviction memory pressure hit ratio warmup",
    "deploy rollback canary health check error budget",
    "search ranking recall query embedding latency",
)


def _words(rng: random.Random, topic: str, n: int) -> str:
    vocabulary = [*topic.split(), *GLUE]
    return " ".join(rng.choice(vocabulary) for _ in range(n))


def agent_messages(count: int, seed: int = 23) -> list[Any]:
    """A ReAct agent's messages: question, tool call, tool result, answer, over and over; each
    names its own case number (``case0042``), so each is findable as itself."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    rng = random.Random(seed)
    made: list[Any] = []
    for n in range(count):
        topic = TOPICS[(n // 4) % len(TOPICS)]
        case = f"case{n:04d}"
        kind = n % 4
        mid = str(uuid.UUID(int=rng.getrandbits(128)))
        if kind == 0:
            text = f"{case}: why does {_words(rng, topic, 12)}?"
            made.append(HumanMessage(text, id=mid))
        elif kind == 1:
            call = {"name": "lookup", "args": {"query": f"{case} {_words(rng, topic, 6)}"},
                    "id": f"call_{n}"}  # fmt: skip
            made.append(AIMessage("", tool_calls=[call], id=mid))
        elif kind == 2:
            text = f"{case} results: " + ". ".join(_words(rng, topic, 16) for _ in range(5))
            made.append(ToolMessage(text, tool_call_id=f"call_{n - 1}", id=mid))
        else:
            made.append(AIMessage(f"{case}: {_words(rng, topic, 40)}.", id=mid))
    return made


def _checkpoint(step: int, messages: list[Any]) -> dict[str, Any]:
    """A checkpoint as LangGraph's loop writes one: the messages channel and its other channels
    (serialised by the saver as files, as LangGraph's own are: state, never searched)."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.base.id import uuid6

    checkpoint = empty_checkpoint()
    checkpoint["id"] = str(uuid6(clock_seq=step))
    checkpoint["channel_values"] = {
        "messages": messages,
        "__pregel_tasks": [{"node": "tools" if step % 2 else "agent", "step": step}],
        "remaining_steps": 25 - step % 25,
        "branch:to:agent": None,
    }
    checkpoint["channel_versions"] = {"messages": step, "__pregel_tasks": step}
    return checkpoint  # type: ignore[return-value]


class _Embedded(threading.Thread):
    """A WebSocket subscriber to one session: when each snapshot.embedded arrives."""

    def __init__(self, base: str, key: str, session_id: str) -> None:
        super().__init__(daemon=True)
        from websockets.sync.client import connect

        self.ws = connect(base.replace("http://", "ws://") + "/ws", max_size=2**22)
        self.ws.send(json.dumps({"authorization": key}))
        assert json.loads(self.ws.recv())["success"]
        self.ws.send(
            json.dumps({"id": "s", "action": "subscribe", "data": {"session_id": session_id}})
        )
        assert json.loads(self.ws.recv())["success"]
        self.at: dict[str, float] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.start()

    def run(self) -> None:
        try:
            for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                if message.get("type") == "snapshot.embedded":
                    sid = message["data"]["snapshot_id"]
                    self.at.setdefault(sid, now)
                    self.data[sid] = message["data"]
        except Exception:  # closed
            return


def freshness(count: int = 1000, window: int = 50, port: int | None = None) -> Freshness:
    """The freshness run (see the module's docstring)."""
    sys.path.insert(0, str(ROOT))
    from kontex_client.langgraph import KontexSaver
    from tests.e2e.stack import Http, create_key, start_dev, stop_dev

    env = {
        "VOYAGE_API_KEY": "",
        "QDRANT_URL": "",
        "KONTEX_CHECKPOINT_REQUESTS_PER_HOUR": "1000000",
        "KONTEX_RATE_LIMIT_PER_HOUR": "1000000",
    }
    messages = agent_messages(count + 1)
    thread = "freshness"
    config: dict[str, Any] = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    written: dict[str, float] = {}
    order: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        create_key(data, "bootstrap", env)
        stack = start_dev(data, env, port)
        # its output read as it comes: a full pipe would stop the server's threads mid-print
        threading.Thread(target=_drain, args=(stack.process.stdout,), daemon=True).start()
        try:
            key = create_key(data, "bench", env)
            api = Http(stack.base, key)
            saver = KontexSaver(base_url=stack.base, api_key=key)

            def put(step: int) -> str:
                nonlocal config
                shown = messages[max(0, step + 1 - window) : step + 1]
                meta = {"source": "loop", "step": step, "parents": {}}
                config = saver.put(config, _checkpoint(step, shown), meta, {})  # type: ignore[arg-type]
                return saver._last[(thread, "")].snapshot_id  # the put's snapshot

            put(0)  # makes the thread's session (untimed)
            session_id = api("GET", "/v1/sessions?limit=1")[1]["data"][0]["id"]
            listener = _Embedded(stack.base, key, session_id)
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            for step in range(1, count + 1):
                sid = put(step)
                written[sid] = time.perf_counter()
                order.append(sid)
            wrote = time.perf_counter() - started
            deadline = time.monotonic() + 1800
            while len([s for s in order if s in listener.at]) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(listener.at)} of {count} embedded in 30 min")
                time.sleep(0.05)
            # the last snapshot by search, from the last put's answer (the feed may lag)
            last_case = f"case{count:04d}"
            probe = "/v1/search?" + urllib.parse.urlencode({"q": last_case, "limit": 3})
            while True:
                results = api("GET", probe)[1]["results"]
                if any(r["snapshot_id"] == order[-1] for r in results):
                    findable = time.perf_counter() - written[order[-1]]
                    break
                time.sleep(0.01)
            load_after = os.getloadavg()[0]
            memory = _memory(stack.process.pid)
            # some messages by their case number: the newest snapshot holding it is found
            rng = random.Random(5)
            picked = sorted(rng.sample(range(1, count + 1), min(20, count)))
            missed = []
            for step in picked:
                newest = order[min(step + window - 1, count) - 1]
                q = urllib.parse.urlencode({"q": f"case{step:04d}", "limit": 10})
                results = api("GET", f"/v1/search?{q}")[1]["results"]
                if not any(r["snapshot_id"] == newest for r in results):
                    missed.append(f"case{step:04d}")
            listener.ws.close()
        finally:
            stop_dev(stack)
        capacity = _capacity(data, order)
    delays = [(listener.at[s] - written[s]) * 1000 for s in order]
    span = max(listener.at[s] for s in order) - started
    points = sum(int(listener.data[s]["points"]) for s in order)
    new = sum(int(listener.data[s]["written"]) for s in order)
    return Freshness(
        snapshots=count,
        window=window,
        write_seconds=round(wrote, 2),
        writes_per_second=round(count / wrote, 1),
        embed_seconds=round(span, 2),
        embed_snapshots_per_second=round(count / span, 1),
        items_per_second=round(points / span, 1),
        embedded_per_second=round(new / span, 1),
        delay_ms_p50=round(_percentile(delays, 0.5), 1),
        delay_ms_p95=round(_percentile(delays, 0.95), 1),
        delay_ms_max=round(max(delays), 1),
        last_findable_seconds=round(findable, 2),
        probes=len(picked),
        probes_found=len(picked) - len(missed),
        probes_missed=missed,
        capacity_snapshots_per_second=capacity[0],
        capacity_items_per_second=capacity[1],
        capacity_embedded_per_second=capacity[2],
        load_average=[round(load_before, 2), round(load_after, 2)],
        memory_mb=round(sum(memory.values()), 1),
        memory_by_process=memory,
    )


def _memory(pid: int) -> dict[str, float]:
    """PSS in MB of ``kontex dev`` (``pid``) and each process under it, by role."""
    from bench.peers import _children, tree_pss_mb

    found = {"server": round(tree_pss_mb(pid) - sum(tree_pss_mb(c) for c in _children(pid)), 1)}
    for n, child in enumerate(_children(pid)):
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        role = "resource tracker" if b"resource_tracker" in command else f"process {n}"
        found[role] = tree_pss_mb(child)
    return found


def _drain(stream: Any) -> None:
    for _ in iter(stream.readline, ""):
        pass


def _capacity(data: Path, order: list[str]) -> tuple[float, float, float]:
    """The same snapshots embedded again by the embed use case alone, in process, into an empty
    collection (the model loaded first), in batches of ten as the local queue hands them to
    the worker (``search.handle_events``): snapshots/s, items/s, points written/s."""
    from kontex import bootstrap
    from kontex.services import search
    from kontex.settings import Settings

    config = Settings.from_env(
        {"VOYAGE_API_KEY": "", "QDRANT_URL": "", "KONTEX_QDRANT_COLLECTION": "capacity"},
        kontex_data_dir=data,
    )
    container = bootstrap.Container(config)
    deps = container.deps
    account = next(search.existing_snapshots(deps)).account_id  # the bench's one account
    deps.search_ports()[0].embed_query("warm up")
    deps.search_ports()[1].count()
    points = new = 0
    started = time.perf_counter()
    for at in range(0, len(order), 10):
        events = [
            {"type": "snapshot.created", "account_id": account, "data": {"snapshot_id": sid}}
            for sid in order[at : at + 10]
        ]
        for done in search.handle_events(deps, events):
            assert isinstance(done, search.Embedded), done
            points, new = points + done.points, new + done.written
    seconds = time.perf_counter() - started
    container.index.close()  # type: ignore[attr-defined]
    n = len(order)
    return round(n / seconds, 1), round(points / seconds, 1), round(new / seconds, 1)


def run(
    rounds: int = 5,
    http: bool = False,
    fresh: int | None = None,
    window: int = 50,
    port: int | None = None,
) -> Report:
    snaps, queries = load_set()
    with tempfile.TemporaryDirectory() as tmp:
        deps, account, ids, seconds = build(Path(tmp))
        quality = {mode: evaluate(deps, account, ids, mode) for mode in MODES}
        times = latency(deps, account, rounds)
        points = deps.search_ports()[1].count(account)
        deps.search_ports()[1].close()
    report = Report(
        snapshots=len(snaps),
        queries=len(queries),
        points=points,
        embed_seconds=round(seconds, 2),
        embed_snapshots_per_second=round(len(snaps) / seconds, 1),
        quality=quality,
        query_ms_p50=round(_percentile(times, 0.5), 1),
        query_ms_p99=round(_percentile(times, 0.99), 1),
    )
    if http:
        over_http = http_latency(rounds, port)
        report.http_ms_p50 = round(_percentile(over_http, 0.5), 1)
        report.http_ms_p99 = round(_percentile(over_http, 0.99), 1)
    if fresh:
        report.freshness = freshness(fresh, window, port)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the queries")
    parser.add_argument("--http", action="store_true", help="also time GET /v1/search")
    parser.add_argument(
        "--freshness", type=int, metavar="N", help="also the freshness run of N snapshots"
    )
    parser.add_argument("--window", type=int, default=50, help="messages in the sliding window")
    parser.add_argument(
        "--port", type=int, help="kontex dev's port for --http and --freshness (a free one if not)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.rounds, args.http, args.freshness, args.window, args.port)
    if args.json:
        print(json.dumps(asdict(report), indent=1))
        return 0
    print(f"set: {report.snapshots} snapshots ({report.points} points), {report.queries} queries")
    print(
        f"embed: {report.embed_seconds} s, {report.embed_snapshots_per_second} snapshots/s"
        " (offline model, Qdrant local mode on disk)"
    )
    print(f"{'mode':<8} {'recall@5':>9} {'MRR':>6}  missed")
    for mode, q in report.quality.items():
        print(f"{mode:<8} {q.recall_at_5:>9.3f} {q.mrr:>6.3f}  {'; '.join(q.missed) or '-'}")
    print(f"query (in process, hybrid): p50 {report.query_ms_p50} ms, p99 {report.query_ms_p99} ms")
    if report.http_ms_p50 is not None:
        print(
            f"GET /v1/search on kontex dev: p50 {report.http_ms_p50} ms,"
            f" p99 {report.http_ms_p99} ms"
        )
    f = report.freshness
    if f is not None:
        print(
            f"freshness: {f.snapshots} sliding-window checkpoints (window {f.window}) put in"
            f" {f.write_seconds} s ({f.writes_per_second}/s)"
        )
        print(
            f"  embedded while written: {f.embed_snapshots_per_second} snapshots/s,"
            f" {f.items_per_second} items/s mapped, {f.embedded_per_second} points/s written"
        )
        print(
            f"  write -> findable: p50 {f.delay_ms_p50} ms, p95 {f.delay_ms_p95} ms,"
            f" max {f.delay_ms_max} ms; the last snapshot findable {f.last_findable_seconds} s"
            f" after its write; probes found {f.probes_found}/{f.probes}"
        )
        print(
            f"  the embed use case alone: {f.capacity_snapshots_per_second} snapshots/s,"
            f" {f.capacity_items_per_second} items/s, {f.capacity_embedded_per_second} points/s"
        )
        print(f"  memory after the run (PSS): {f.memory_mb} MB, {f.memory_by_process}")
        print(f"  load average {f.load_average} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
