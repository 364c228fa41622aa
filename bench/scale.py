"""Scale simulation (issue 26, part 4): N copies of the functions, as Lambda runs them, against
PgBouncer in transaction pooling mode (the stand-in for RDS Proxy) and PostgreSQL.

    python bench/scale.py [--copies 1,8,32,64] [--seconds 20] [--pool-size 20]
                          [--port 19601] [--json /tmp/scale.json]

Each copy is its own process, like a Lambda execution environment: it loads the function's
module (``functions/ingest/handler.py``, ``functions/workers/spans.py``,
``functions/api/handler.py``), builds its own container from the environment on the first
event (so its own database connection, through PgBouncer, with the settings a deployed function
has behind RDS Proxy: ``KONTEX_DATABASE_POOLED=1``, no prepared statements), and handles one
event at a time by calling ``lambda_handler(event, context)`` with API Gateway (HTTP API,
payload 2.0) and SQS-shaped events. The processes are forked from this driver after it has
imported the modules (a warm start: cold starts are bench/coldstart.py's subject).

Two loads, one after the other, for each N:

- **ingest**: N copies of the ingest function, each a closed loop posting OTLP/protobuf
  requests of 100 spans (bench/ingest.py's agent traces, fresh trace and span ids each time);
  what each queues goes to an in-memory SQS stand-in held by this driver (a
  ``multiprocessing`` queue: no SQS, no local queue file), from which N copies of the span
  worker take batches of up to 10 messages (``infra/workers.py`` BATCH_SIZE, no batching
  window) as SQS events. The worker's delayed retries go back on it after their delay.
- **REST**: N copies of the API function, each a closed loop of one client: a snapshot write
  (``POST /v1/tasks/{id}/snapshots``, the bundle growing a turn each time), its read
  (``GET /v1/snapshots/{id}``), the session's snapshot list and its timeline.

Per N and load: throughput (spans accepted and spans stored a second; REST requests a second),
p50/p99 latency of each call, the database connections used (``pg_stat_activity`` for the
database, sampled every 0.5 s: peak and mean), PgBouncer's ``SHOW POOLS`` (peak cl_active,
cl_waiting, sv_active, maxwait) and ``SHOW STATS`` (transactions a second, mean wait for a server
connection), and CPU: the machine's (``/proc/stat``), the copies' own (sum of their CPU time),
PostgreSQL's server processes for the database and PgBouncer's.

PostgreSQL at ``KONTEX_SCALE_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/kontex_scale``; its ``public`` schema is dropped and
migrated afresh at each start). PgBouncer is Debian's, started as tests/pgbouncer.py starts it,
on --port, with --pool-size server connections for the database (RDS Proxy's
``MaxConnectionsPercent`` of the instance's max_connections plays this part on AWS).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue as queue_module
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/kontex_scale"
SPANS_PER_REQUEST = 100
SQS_BATCH = 10  # infra/workers.py BATCH_SIZE
PROMPT_CHARS = 400  # as bench/aws_cost.py's OTLP unit
DRAINED_AFTER_S = 2.0  # a span-worker copy stops when the queue has been empty this long
TEMPLATES = 8  # distinct OTLP bodies each ingest copy cycles through (ids renewed each time)
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# -- the environment a copy runs in ----------------------------------------------------------
def function_env(bouncer_url: str, data_dir: Path) -> dict[str, str]:
    """What a deployed function has behind RDS Proxy, pointed at PgBouncer."""
    return {
        "KONTEX_DATABASE_URL": bouncer_url,
        "KONTEX_DATABASE_POOLED": "1",
        "KONTEX_DATABASE_PREPARE": "0",
        "KONTEX_DATA_DIR": str(data_dir),
        "KONTEX_API_KEY_SECRET": "scale",
        "KONTEX_RATE_LIMIT_PER_HOUR": "100000000",
        "KONTEX_SNAPSHOT_WRITES_PER_HOUR": "100000000",
        "POWERTOOLS_METRICS_DISABLED": "1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "LOG_LEVEL": "WARNING",
    }


class CollectingQueue:
    """The container's queue in an ingest or worker copy: what it sends goes to the driver's
    SQS stand-in (delayed messages through the driver's delay line)."""

    def __init__(self, ready: Any, delayed: Any) -> None:
        self.ready, self.delayed = ready, delayed
        self.sent = 0

    def send(self, queue: str, bodies: list[str], delay_seconds: int = 0) -> None:
        for body in bodies:
            if delay_seconds:
                self.delayed.put((time.monotonic() + delay_seconds, body))
            else:
                self.ready.put(body)
            self.sent += 1


def _container(queue: Any = None) -> Any:
    """This copy's own container, from its environment (its own connection)."""
    from kontex import bootstrap
    from kontex.settings import Settings

    made = bootstrap.Container(Settings.from_env())
    if queue is not None:
        made.queue = queue  # type: ignore[misc]
    bootstrap.configure(made)
    return made


def _renew_ids(template: bytes) -> bytes:
    """The OTLP body with fresh trace and span ids (parent links kept), so every request
    carries spans the store has not seen."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(template)
    traces: dict[bytes, bytes] = {}
    spans: dict[bytes, bytes] = {}
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                span.trace_id = traces.setdefault(span.trace_id, secrets.token_bytes(16))
                span.span_id = spans.setdefault(span.span_id, secrets.token_bytes(8))
                if span.parent_span_id:
                    span.parent_span_id = spans.setdefault(
                        span.parent_span_id, secrets.token_bytes(8)
                    )
    return request.SerializeToString()


def _cpu() -> float:
    return time.process_time()


def ingest_copy(ctx: dict[str, Any], index: int, templates: list[bytes]) -> None:
    from kontex.http.apigw import LocalContext, http_api_event
    from kontex.local.server import load_handler

    handler = load_handler("ingest")
    made = _container(CollectingQueue(ctx["ready"], ctx["delayed"]))
    headers = [
        ("authorization", f"Bearer {ctx['key']}"),
        ("content-type", "application/x-protobuf"),
    ]
    bodies = [_renew_ids(t) for t in templates]
    ctx["barrier"].wait()
    ctx["go"].wait()
    deadline = ctx["start"].value + ctx["seconds"]
    latencies: list[float] = []
    errors, cpu0, n = 0, _cpu(), 0
    while time.time() < deadline:
        body = bodies[n % len(bodies)]
        n += 1
        event = http_api_event("POST", "/ingest/v1/traces", headers, body)
        started = time.perf_counter()
        reply = handler(event, LocalContext(function_name="kontex-ingest"))
        latencies.append((time.perf_counter() - started) * 1000)
        if reply["statusCode"] != 200:
            errors += 1
        bodies[(n - 1) % len(bodies)] = _renew_ids(body)  # not timed: the client's work
    ctx["results"].put(
        {"role": "ingest", "calls": {"OTLP POST (100 spans)": latencies}, "errors": errors}
        | {"cpu_s": _cpu() - cpu0, "sent": made.queue.sent}
    )


def worker_copy(ctx: dict[str, Any], index: int) -> None:
    from kontex.adapters.local_queue import sqs_record
    from kontex.functions import worker_paths
    from kontex.http.apigw import LocalContext
    from kontex.local.server import load_worker

    handler = load_worker(worker_paths()["spans"]).lambda_handler
    _container(CollectingQueue(ctx["ready"], ctx["delayed"]))
    ctx["barrier"].wait()
    ctx["go"].wait()
    deadline = ctx["start"].value + ctx["seconds"]
    latencies: list[float] = []
    messages = errors = 0
    cpu0 = _cpu()
    last_work = time.time()
    while time.time() < deadline:
        try:
            bodies = [ctx["ready"].get(timeout=0.2)]
        except queue_module.Empty:
            if time.time() - last_work > DRAINED_AFTER_S:
                break  # the queue is drained: this copy's share of the run is over
            continue
        while len(bodies) < SQS_BATCH:  # what a poll finds there, up to a batch
            try:
                bodies.append(ctx["ready"].get_nowait())
            except queue_module.Empty:
                break
        records = [
            sqs_record("spans", f"{index}-{messages + i}", body, 1) for i, body in enumerate(bodies)
        ]
        started = time.perf_counter()
        answer = handler({"Records": records}, LocalContext(function_name="kontex-spans"))
        latencies.append((time.perf_counter() - started) * 1000)
        messages += len(bodies)
        failed = answer.get("batchItemFailures", [])
        errors += len(failed)
        last_work = time.time()
    ctx["results"].put(
        {
            "role": "worker",
            "last_work": last_work,
            "calls": {"span-worker batch": latencies},
            "messages": messages,
            "errors": errors,
            "cpu_s": _cpu() - cpu0,
        }
    )


def api_copy(ctx: dict[str, Any], index: int) -> None:
    from kontex.http.apigw import LocalContext, http_api_event
    from kontex.local.server import load_handler

    handler = load_handler("api")
    made = _container()
    key = ctx["key"]
    if ctx["key_per_copy"]:  # a client (and account) of its own: no counter row shared
        from kontex.services import keys

        _, key = keys.create_key(made.deps, f"scale-{index}")
    headers = [("authorization", f"Bearer {key}"), ("content-type", "application/json")]
    errors = 0

    def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
        nonlocal errors
        data = json.dumps(body).encode() if body is not None else b""
        reply = handler(
            http_api_event(method, path, headers, data), LocalContext(function_name="kontex-api")
        )
        if reply["statusCode"] >= 300:
            errors += 1
            return {}
        return json.loads(reply["body"]) if reply.get("body") else {}

    session = call("POST", "/v1/sessions", {"name": f"scale-{index}"})
    task = call("POST", f"/v1/sessions/{session['id']}/tasks", {"name": "t"})
    messages: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]
    calls: dict[str, list[float]] = {
        "POST snapshot": [],
        "GET snapshot": [],
        "GET session snapshots": [],
        "GET timeline": [],
    }

    def timed(name: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        started = time.perf_counter()
        answer = call(method, path, body)
        calls[name].append((time.perf_counter() - started) * 1000)
        return answer

    ctx["barrier"].wait()
    ctx["go"].wait()
    deadline = ctx["start"].value + ctx["seconds"]
    cpu0, turn = _cpu(), 0
    while time.time() < deadline:
        turn += 1
        messages += [
            {"role": "user", "content": f"question {turn} " * 20},
            {"role": "assistant", "content": f"answer {turn} " * 40},
        ]
        if len(messages) > 41:  # a sliding window, as an agent's context
            messages = messages[:1] + messages[-40:]
        made = timed(
            "POST snapshot",
            "POST",
            f"/v1/tasks/{task['id']}/snapshots",
            {"label": f"s{turn}", "bundle": {"messages": messages}},
        )
        if made:
            timed("GET snapshot", "GET", f"/v1/snapshots/{made['id']}")
        timed("GET session snapshots", "GET", f"/v1/sessions/{session['id']}/snapshots")
        timed("GET timeline", "GET", f"/v1/sessions/{session['id']}/snapshots/timeline")
    ctx["results"].put({"role": "api", "calls": calls, "errors": errors, "cpu_s": _cpu() - cpu0})


def _run_copy(target: Any, env: dict[str, str], *args: Any) -> None:
    os.environ.update(env)
    try:
        target(*args)
    except BaseException as exc:  # report it: a copy that dies must not hang the driver
        ctx = args[0]
        ctx["results"].put({"role": "failed", "error": repr(exc)})
        raise


# -- the driver's measurements ---------------------------------------------------------------
def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Sampler(threading.Thread):
    """Every 0.5 s: the database's server connections and PgBouncer's pool for it."""

    def __init__(self, admin_url: str, bouncer: Any, dbname: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.db = psycopg.connect(admin_url, autocommit=True)
        self.console = bouncer.admin()
        self.console.prepare_threshold = None  # the admin console takes simple queries only
        self.dbname = dbname
        self.stop = threading.Event()
        self.samples: list[dict[str, float]] = []
        self.backend_cpu: dict[int, list[float]] = {}  # pid -> [first seen, last seen]

    def pools(self) -> dict[str, float]:
        cursor = self.console.execute("SHOW POOLS")
        names = [c.name for c in cursor.description or []]
        for row in cursor.fetchall():
            pool = dict(zip(names, row, strict=False))
            if pool["database"] == self.dbname:
                return {
                    k: float(pool.get(k) or 0)
                    for k in ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used")
                } | {"maxwait_s": float(pool["maxwait"]) + float(pool["maxwait_us"]) / 1e6}
        return {}

    def stats(self) -> dict[str, float]:
        cursor = self.console.execute("SHOW STATS")
        names = [c.name for c in cursor.description or []]
        for row in cursor.fetchall():
            stat = dict(zip(names, row, strict=False))
            if stat["database"] == self.dbname:
                return {k: float(v) for k, v in stat.items() if k != "database"}
        return {}

    def server_pids(self) -> list[int]:
        rows = self.db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.dbname,),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def run(self) -> None:
        while not self.stop.wait(0.5):
            pids = self.server_pids()
            for pid in pids:
                cpu = process_cpu(pid)
                self.backend_cpu.setdefault(pid, [cpu, cpu])[1] = cpu
            self.samples.append({"connections": len(pids)} | self.pools())

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.db.close()
        self.console.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_load(
    load: str,
    copies: int,
    seconds: float,
    env: dict[str, str],
    key: str,
    templates: list[bytes],
    admin_url: str,
    bouncer: Any,
    dbname: str,
    pending: list[str],
) -> dict[str, Any]:
    """One load with N copies for ``seconds``. ``pending`` is the SQS stand-in's content
    between loads: the ingest load appends what it queued, the spans load starts from it and
    leaves what it did not process."""
    context = mp.get_context("fork")
    target = {"ingest": ingest_copy, "spans": worker_copy, "rest": api_copy}[load]
    ctx: dict[str, Any] = {
        "key": key,
        "key_per_copy": KEY_PER_COPY[0],
        "seconds": seconds,
        "ready": context.Queue(),
        "delayed": context.Queue(),
        "results": context.Queue(),
        "barrier": context.Barrier(copies + 1),
        "start": context.Value("d", 0.0),
        "go": context.Event(),
    }
    children = []
    for i in range(copies):
        args: tuple[Any, ...] = (ctx, i, templates) if load == "ingest" else (ctx, i)
        child = context.Process(target=_run_copy, args=(target, env, *args), daemon=True)
        child.start()
        children.append(child)
    queued = len(pending)
    if load == "spans":
        for body in pending:
            ctx["ready"].put(body)
        pending.clear()
    ctx["barrier"].wait(timeout=600)  # every copy loaded and connected
    sampler = Sampler(admin_url, bouncer, dbname)
    stats0 = _stats_now(bouncer, dbname)
    bouncer_cpu0 = process_cpu(bouncer.process.pid)
    cpu0 = machine_cpu()
    ctx["start"].value = time.time()
    ctx["go"].set()
    sampler.start()
    delayed: list[tuple[float, str]] = []
    results: list[dict[str, Any]] = []
    deadline = ctx["start"].value + seconds
    while len(results) < copies:
        try:  # the delay line: the worker's delayed retries back on the queue when due
            while True:
                delayed.append(ctx["delayed"].get_nowait())
        except queue_module.Empty:
            pass
        now = time.monotonic()
        for item in [d for d in delayed if d[0] <= now]:
            delayed.remove(item)
            ctx["ready"].put(item[1])
        try:
            results.append(ctx["results"].get(timeout=0.2))
        except queue_module.Empty:
            if time.time() > deadline + 300:
                raise RuntimeError(f"copies did not finish: {len(results)}/{copies}") from None
    elapsed = time.time() - ctx["start"].value
    cpu1 = machine_cpu()
    bouncer_cpu = process_cpu(bouncer.process.pid) - bouncer_cpu0
    sampler.close()
    stats1 = _stats_now(bouncer, dbname)
    load_after = loadavg()
    failed = [r for r in results if r["role"] == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} copies failed: {failed[0]['error']}")
    while True:  # what is left on the SQS stand-in (and the delay line) stays for later
        try:
            pending.append(ctx["ready"].get(timeout=0.5))
        except queue_module.Empty:
            break
    pending.extend(body for _, body in delayed)
    for child in children:
        child.join(timeout=30)
    calls: dict[str, list[float]] = {}
    for r in results:
        for name, values in r["calls"].items():
            calls.setdefault(name, []).extend(values)
    busy = seconds
    if load == "spans":  # the copies stop once the queue is drained
        busy = max([r["last_work"] for r in results] + [ctx["start"].value + 0.001])
        busy = min(seconds, busy - ctx["start"].value)
    xacts = stats1.get("total_xact_count", 0) - stats0.get("total_xact_count", 0)
    wait_us = stats1.get("total_wait_time", 0) - stats0.get("total_wait_time", 0)
    samples = sampler.samples
    out: dict[str, Any] = {
        "load": load,
        "copies": copies,
        "seconds": round(busy, 1),
        "loadavg_after": load_after,
        "calls": {
            name: {
                "count": len(values),
                "per_s": round(len(values) / busy, 1),
                "p50_ms": round(percentile(values, 0.5), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
            }
            for name, values in calls.items()
        },
        "errors": sum(r.get("errors", 0) for r in results),
        "db_connections_peak": max((s["connections"] for s in samples), default=0),
        "db_connections_mean": round(statistics.mean(s["connections"] for s in samples), 1)
        if samples
        else 0,
        "pool_peak": {
            k: max((s.get(k, 0) for s in samples), default=0)
            for k in ("cl_active", "cl_waiting", "sv_active", "maxwait_s")
        },
        "xact_per_s": round(xacts / elapsed, 1),
        "wait_ms_per_xact": round(wait_us / 1000 / max(xacts, 1), 2),
        "cpu": {
            "machine_busy_cores": round(
                (cpu1[0] - cpu0[0]) / max(1.0, cpu1[1] - cpu0[1]) * (os.cpu_count() or 1), 2
            ),
            "copies_cores": round(sum(r.get("cpu_s", 0) for r in results) / elapsed, 2),
            "postgres_cores": round(
                sum(last - first for first, last in sampler.backend_cpu.values()) / elapsed, 2
            ),
            "pgbouncer_cores": round(bouncer_cpu / elapsed, 2),
        },
    }
    out["raw"] = {  # for the Lambda projection: totals over the run
        "elapsed_s": elapsed,
        "copies_cpu_s": sum(r.get("cpu_s", 0) for r in results),
        "postgres_cpu_s": sum(last - first for first, last in sampler.backend_cpu.values()),
        "xacts": xacts,
        "units": sum(
            len(v) for k, v in calls.items() if load != "spans" or k == "span-worker batch"
        ),
    }
    if load == "ingest":
        requests = len(calls.get("OTLP POST (100 spans)", []))
        sent = sum(r.get("sent", 0) for r in results)
        out["spans_per_s"] = round(requests * SPANS_PER_REQUEST / busy, 1)
        out["messages_queued"] = sent
        out["spans_per_message"] = round(requests * SPANS_PER_REQUEST / max(sent, 1), 1)
    elif load == "spans":
        messages = sum(r.get("messages", 0) for r in results)
        out["raw"]["units"] = messages  # a unit of the spans load: one message (a request's)
        out["messages_at_start"] = queued
        out["messages_processed"] = messages
        out["messages_left"] = len(pending)
        out["spans_per_s"] = round(messages * SPANS_PER_MESSAGE[0] / busy, 1)
    else:
        out["rest_per_s"] = round(sum(len(v) for v in calls.values()) / busy, 1)
    return out


SPANS_PER_MESSAGE = [float(SPANS_PER_REQUEST)]  # as the last ingest load measured it
KEY_PER_COPY = [False]  # --key-per-copy


def _stats_now(bouncer: Any, dbname: str) -> dict[str, float]:
    with bouncer.admin() as console:
        cursor = console.execute("SHOW STATS")
        names = [c.name for c in cursor.description or []]
        for row in cursor.fetchall():
            stat = dict(zip(names, row, strict=False))
            if stat["database"] == dbname:
                return {k: float(v) for k, v in stat.items() if k != "database"}
    return {}


def start_bouncer(admin_url: str, port: int, pool_size: int) -> tuple[Any, str, str]:
    """tests/pgbouncer.py's PgBouncer on ``port``, with one pool for the database."""
    from urllib.parse import urlsplit

    from tests import pgbouncer

    pgbouncer._free_port = lambda: port  # type: ignore[attr-defined]  # our port range
    bouncer = pgbouncer.PgBouncer(admin_url)
    parts = urlsplit(admin_url)
    dbname = (parts.path or "/postgres").lstrip("/")
    bouncer.databases.append(
        f"{dbname} = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}"
        f" dbname={dbname} user={parts.username or 'postgres'} pool_size={pool_size}"
    )
    bouncer._write()
    with bouncer.admin() as console:
        console.pgconn.exec_(b"RELOAD")
    return bouncer, f"postgresql://{bouncer.user}@127.0.0.1:{bouncer.port}/{dbname}", dbname


def fresh_database(admin_url: str, data_dir: Path) -> str:
    """A migrated, empty schema and one API key (returned)."""
    import psycopg

    from kontex import bootstrap
    from kontex.adapters.postgres_store import PostgresStore
    from kontex.services import keys
    from kontex.settings import Settings

    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute("DROP SCHEMA IF EXISTS public CASCADE")
        db.execute("CREATE SCHEMA public")
    store = PostgresStore(admin_url)
    store.migrate()
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "scale"}, kontex_data_dir=data_dir)
    made = bootstrap.Container(config, store=store)
    _, key = keys.create_key(made.deps, "scale")
    store.close()
    return key


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| load | N | throughput | p50 / p99 ms | DB conns peak (mean) | cl_active / "
        "cl_waiting / sv_active peak | maxwait s | xact/s | wait ms/xact | CPU cores: machine"
        " / copies / postgres / pgbouncer | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["load"] == "ingest":
            otlp = r["calls"].get("OTLP POST (100 spans)", {})
            throughput = f"{r['spans_per_s']} spans/s accepted"
            latency = f"OTLP POST {otlp.get('p50_ms')} / {otlp.get('p99_ms')}"
        elif r["load"] == "spans":
            batch = r["calls"].get("span-worker batch", {})
            throughput = (
                f"{r['spans_per_s']} spans/s stored ({r['messages_processed']} of"
                f" {r['messages_at_start']} msgs in {r['seconds']} s)"
            )
            latency = f"batch {batch.get('p50_ms')} / {batch.get('p99_ms')}"
        else:
            throughput = f"{r['rest_per_s']} req/s"
            latency = "; ".join(
                f"{name} {c['p50_ms']} / {c['p99_ms']}" for name, c in r["calls"].items()
            )
        pool = r["pool_peak"]
        cpu = r["cpu"]
        lines.append(
            f"| {r['load']} | {r['copies']} | {throughput} | {latency} |"
            f" {r['db_connections_peak']} ({r['db_connections_mean']}) |"
            f" {pool['cl_active']:.0f} / {pool['cl_waiting']:.0f} / {pool['sv_active']:.0f} |"
            f" {pool['maxwait_s']:.2f} | {r['xact_per_s']} | {r['wait_ms_per_xact']} |"
            f" {cpu['machine_busy_cores']} / {cpu['copies_cores']} / {cpu['postgres_cores']} /"
            f" {cpu['pgbouncer_cores']} | {r['loadavg_after']} |"
        )
    return "\n".join(lines)


LAMBDA_VCPU = 1024 / 1769  # Lambda gives a full vCPU at 1,769 MB; the functions have 1,024
PROXY_RTT_S = 0.001  # RDS Proxy and the network add about a millisecond a transaction
DB_VCPU = 16 * 0.25  # prod's db_max_acu = 16 (infra/config.py), a quarter vCPU an ACU


def throughput(load: str, units_per_s: float) -> str:
    if load == "ingest":
        return f"{units_per_s * SPANS_PER_REQUEST:,.0f} spans/s"
    if load == "spans":
        return f"{units_per_s * SPANS_PER_MESSAGE[0]:,.0f} spans/s"
    return f"{units_per_s:,.0f} req/s"


def projection(rows: list[dict[str, Any]]) -> str:
    """What N copies would do on Lambda, where each has its own CPU: per unit, the CPU the
    copies spent (stretched to a 1,024 MB function's share of a vCPU), the database's CPU and
    a round trip a transaction, from the run with the fewest copies of each load. Copies add
    throughput until the writer's CPU (``DB_VCPU``) is busy: the knee is that N."""
    lines = [
        "| load | unit | CPU ms / unit (here) | DB CPU ms / unit | transactions / unit |"
        " Lambda wall ms / unit | per copy / s | N at the writer's 16 ACU | throughput there |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "ingest": "OTLP request (100 spans)",
        "spans": f"queue message ({SPANS_PER_MESSAGE[0]:.0f} spans)",
    }
    firsts: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["load"] not in firsts or row["copies"] < firsts[row["load"]]["copies"]:
            firsts[row["load"]] = row
    for load, row in firsts.items():
        raw = row["raw"]
        units = max(1, raw["units"])
        cpu = raw["copies_cpu_s"] / units
        db = raw["postgres_cpu_s"] / units
        xacts = raw["xacts"] / units
        wall = cpu / LAMBDA_VCPU + db + xacts * PROXY_RTT_S
        per_copy = 1 / wall
        knee = DB_VCPU / (db * per_copy) if db > 0 else float("inf")
        lines.append(
            f"| {load} | {names.get(load, 'REST request')} | {cpu * 1000:.1f} | {db * 1000:.1f} |"
            f" {xacts:.1f} | {wall * 1000:.1f} | {per_copy:.1f} | {knee:.0f} |"
            f" {throughput(load, knee * per_copy)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", default="1,8,32,64")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--port", type=int, default=19601)
    parser.add_argument("--loads", default="ingest,spans,rest")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--key-per-copy",
        action="store_true",
        help="each REST copy its own API key (by default all share one, as a team's agents)",
    )
    parser.add_argument(
        "--write", type=Path, help="replace the table between this script's markers in a file"
    )
    args = parser.parse_args(argv)
    KEY_PER_COPY[0] = args.key_per_copy
    admin_url = os.environ.get("KONTEX_SCALE_DATABASE_URL", DEFAULT_URL)

    from bench.ingest import batches
    from kontex.functions import worker_paths
    from kontex.local.server import load_handler, load_worker

    # the modules loaded once here; each forked copy still loads its own (a warm environment)
    load_handler("api"), load_handler("ingest"), load_worker(worker_paths()["spans"])
    templates = batches(SPANS_PER_REQUEST * TEMPLATES, TEMPLATES, PROMPT_CHARS)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kontex-scale-") as tmp:
        data_dir = Path(tmp)
        key = fresh_database(admin_url, data_dir)
        bouncer, bouncer_url, dbname = start_bouncer(admin_url, args.port, args.pool_size)
        env = function_env(bouncer_url, data_dir)
        pending: list[str] = []
        try:
            for copies in [int(n) for n in args.copies.split(",")]:
                for load in args.loads.split(","):
                    row = run_load(
                        load,
                        copies,
                        args.seconds,
                        env,
                        key,
                        templates,
                        admin_url,
                        bouncer,
                        dbname,
                        pending,
                    )
                    if load == "ingest":
                        SPANS_PER_MESSAGE[0] = row["spans_per_message"]
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            log = bouncer.log_text()
            bouncer.stop()
        notable = [line for line in log.splitlines() if " ERROR " in line or " WARNING " in line]
        print(f"PgBouncer log: {len(notable)} errors or warnings", file=sys.stderr)
        for line in notable[-20:]:
            print(line, file=sys.stderr)
    text = (
        f"{table(rows)}\n\nOn Lambda (from the run with the fewest copies):\n\n{projection(rows)}"
    )
    print(text)
    if args.write:
        from bench.aws_cost import write_block

        write_block(args.write, "bench/scale.py", text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
