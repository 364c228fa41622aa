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

    python bench/search_eval.py [--rounds 5] [--http] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.parse
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


def http_latency(rounds: int) -> list[float]:
    """The set over REST on a real ``kontex dev``, then each ``GET /v1/search`` timed."""
    sys.path.insert(0, str(ROOT))
    from tests.e2e.stack import Http, create_key, start_dev, stop_dev

    snaps, queries = load_set()
    offline = {"VOYAGE_API_KEY": "", "QDRANT_URL": ""}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        create_key(data, "bootstrap", offline)
        stack = start_dev(data, offline)
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


def run(rounds: int = 5, http: bool = False) -> Report:
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
        over_http = http_latency(rounds)
        report.http_ms_p50 = round(_percentile(over_http, 0.5), 1)
        report.http_ms_p99 = round(_percentile(over_http, 0.99), 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the queries")
    parser.add_argument("--http", action="store_true", help="also time GET /v1/search")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.rounds, args.http)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
