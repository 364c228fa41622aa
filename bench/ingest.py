"""Ingest benchmark: OTLP spans per second from the first request to every span queryable.

    python bench/ingest.py [--spans 5000] [--requests 50] [--prompt-chars 3000]
                           [--backend sqlite|postgres|all] [--phoenix] [--rounds 3]
                           [--profile /tmp/ingest] [--worker-cpu] [--json]

Starts `kontex dev` (in-process queue, local folder for bundles) in a temporary data dir, on
SQLite in that dir or on PostgreSQL at ``KONTEX_BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``, in a fresh schema dropped afterwards). Records
agent traces of four OpenLLMetry spans with the OpenTelemetry SDK (a workflow span, an LLM span
that calls a tool, the tool span, a second LLM span with the tool result; system and user
prompts of --prompt-chars characters each, about 4.6 KB a span), encodes them with the
exporter's own protobuf encoder, posts them in --requests requests, and waits until every span
is processed (none pending in the spans table) and every snapshot (three per trace) is counted
by GET /v1/usage.
--profile samples the stack with py-spy (raw collapsed stacks, per thread) while it runs.
--worker-cpu runs the span worker alone in this process (ingest's messages, then the worker's
``store_batch`` in queue batches of 10): CPU milliseconds per span (and, on PostgreSQL, of the
database's backends), for comparing two versions of the worker on a machine too loaded for
end-to-end figures.
Both systems are timed started: before the clock each takes one trace of its own (``warm_up``)
and is waited for until it is stored (and, for `kontex dev`, until a search answers: its search
process loads the model behind its ready answer).
--phoenix runs the same traffic into Arize Phoenix (its own cached venv, bench/peers.py) timed
until its SQLite database holds every span. Each system reports the memory (PSS) of its whole
process tree after the run; embedding runs as `kontex dev` runs it (offline model, in process).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import peers  # noqa: E402
from bench.peers import tree_processes, tree_pss_mb  # noqa: E402
from tests.e2e import stack  # noqa: E402
from tests.e2e.stack import create_key, start_dev, stop_dev  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

WORDS = [
    "agent",
    "tool",
    "file",
    "read",
    "write",
    "plan",
    "test",
    "refactor",
    "function",
    "class",
    "module",
    "error",
    "retry",
    "context",
    "window",
    "token",
    "snapshot",
    "rollback",
    "session",
    "task",
    "trace",
    "span",
    "model",
    "reply",
]


def text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


TRACE_SPANS = 4  # workflow, LLM with a tool call, tool, LLM


def agent_trace(tracer: Tracer, rng: random.Random, n: int, prompt_chars: int) -> None:
    """One agent turn as OpenLLMetry records it: workflow > LLM (tool call) > tool > LLM."""
    session = {"traceloop.association.properties.session_id": f"bench-{n % 10}"}
    system = "You are a coding agent. " + text(rng, prompt_chars - 24)
    question = text(rng, prompt_chars)
    call_id = f"toolu_{n:06d}"
    path = f"src/{rng.choice(WORDS)}_{n}.py"
    arguments = json.dumps({"path": path})
    content = text(rng, 1800)
    with tracer.start_as_current_span(
        "agent.workflow",
        attributes={
            "traceloop.span.kind": "workflow",
            "traceloop.entity.name": f"fix-{n % 25}",
            **session,
        },
    ):
        with tracer.start_as_current_span(
            "anthropic.chat",
            attributes={
                "llm.request.type": "chat",
                "gen_ai.system": "Anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": system,
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": question,
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": text(rng, 300),
                "gen_ai.completion.0.tool_calls.0.id": call_id,
                "gen_ai.completion.0.tool_calls.0.name": "read_file",
                "gen_ai.completion.0.tool_calls.0.arguments": arguments,
                "gen_ai.usage.input_tokens": 800,
                "gen_ai.usage.output_tokens": 90,
                **session,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "read_file.tool",
            attributes={
                "traceloop.span.kind": "tool",
                "traceloop.entity.name": "read_file",
                "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"path": path}}),
                "traceloop.entity.output": json.dumps(content),
                **session,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "anthropic.chat",
            attributes={
                "llm.request.type": "chat",
                "gen_ai.system": "Anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                "gen_ai.prompt.0.role": "system",
                "gen_ai.prompt.0.content": system,
                "gen_ai.prompt.1.role": "user",
                "gen_ai.prompt.1.content": question,
                "gen_ai.prompt.2.role": "assistant",
                "gen_ai.prompt.2.content": json.dumps(
                    [
                        {
                            "type": "tool_use",
                            "id": call_id,
                            "name": "read_file",
                            "input": {"path": path},
                        }
                    ]
                ),
                "gen_ai.prompt.3.role": "user",
                "gen_ai.prompt.3.content": json.dumps(
                    [{"type": "tool_result", "tool_use_id": call_id, "content": content}]
                ),
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": text(rng, 600),
                "gen_ai.usage.input_tokens": 1300,
                "gen_ai.usage.output_tokens": 160,
                **session,
            },
        ):
            pass


def batches(total: int, requests: int, prompt_chars: int, seed: int = 7) -> list[bytes]:
    """``total`` spans (whole traces of four) in ``requests`` OTLP protobuf bodies."""
    rng = random.Random(seed)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    traces = total // TRACE_SPANS
    per_request = -(-traces // requests)
    bodies = []
    for start in range(0, traces, per_request):
        exporter.clear()
        for n in range(start, min(start + per_request, traces)):
            agent_trace(tracer, rng, n, prompt_chars)
        bodies.append(encode_spans(exporter.get_finished_spans()).SerializeToString())
    provider.shutdown()
    return bodies


def request(url: str, key: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"x-kontex-api-key": key}
    if body is not None:
        headers["content-type"] = "application/x-protobuf"
    req = urllib.request.Request(
        url, data=body, headers=headers, method="POST" if body is not None else "GET"
    )
    with urllib.request.urlopen(req, timeout=60) as response:
        return response.status, response.read()


# Before the clock starts, each system takes one trace of its own text (another seed) and is
# waited for until it is stored: both are measured started, not starting. Phoenix is waited for
# until its API answers and then until the trace is in its database; `kontex dev` answers once
# its port is bound, while its pipeline process may still be loading its workers and its search
# process its model (about 1.3 s of CPU, behind its ready answer): it is waited for until the
# trace's snapshots are queryable and a search answers (the model loaded).
WARM_UP_SPANS = TRACE_SPANS
WARM_UP_SNAPSHOTS = 3  # per trace: two LLM snapshots and one after the tool


def warm_up(prompt_chars: int) -> bytes:
    return batches(WARM_UP_SPANS, 1, prompt_chars, seed=8)[0]


def run(
    total: int, requests: int, prompt_chars: int, backend: str, profile: Path | None
) -> dict[str, Any]:
    bodies = batches(total, requests, prompt_chars)
    spans = total // TRACE_SPANS * TRACE_SPANS
    snapshots = spans // TRACE_SPANS * 3  # per trace: two LLM snapshots and one after the tool
    snapshots += WARM_UP_SNAPSHOTS
    with tempfile.TemporaryDirectory() as tmp, _database(backend, Path(tmp)) as (url, pending):
        data = Path(tmp) / "data"
        env = {
            "KONTEX_RATE_LIMIT_PER_HOUR": "1000000",
            **({"KONTEX_DATABASE_URL": url} if url else {}),
        }
        key = create_key(data, "bench", env=env)
        stack = start_dev(data, env=env)
        spy = None
        base = stack.base
        try:  # from here on `kontex dev` is stopped whatever fails (py-spy missing, say)
            bound = time.perf_counter()
            assert request(base + "/ingest/v1/traces", key, warm_up(prompt_chars))[0] == 200
            while True:
                usage = json.loads(request(base + "/v1/usage", key)[1])
                if usage["total_snapshots"] >= WARM_UP_SNAPSHOTS and pending() == 0:
                    break
                time.sleep(0.05)
            assert request(base + "/v1/search?q=read_file", key)[0] == 200
            warmed = time.perf_counter() - bound
            spy = _py_spy(stack.process.pid, profile) if profile else None
            latencies = []
            cpu_before = _tree_cpu(stack.process.pid)
            db_before = _database_cpu(url)
            started = time.perf_counter()
            for body in bodies:
                t = time.perf_counter()
                status, _ = request(base + "/ingest/v1/traces", key, body)
                latencies.append((time.perf_counter() - t) * 1000)
                assert status == 200
            posted = time.perf_counter()
            while True:
                usage = json.loads(request(base + "/v1/usage", key)[1])
                if usage["total_snapshots"] >= snapshots and pending() == 0:
                    break
                time.sleep(0.1)
            done = time.perf_counter()
            cpu_after = _tree_cpu(stack.process.pid)
            db_cpu = _database_cpu(url) - db_before
            memory_mb = tree_pss_mb(stack.process.pid)
            processes = tree_processes(stack.process.pid)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            stop_dev(stack)
    cut = statistics.quantiles(latencies, n=100)
    return {
        "backend": backend,
        "spans": spans,
        "traces": spans // TRACE_SPANS,
        "snapshots": usage["total_snapshots"] - WARM_UP_SNAPSHOTS,
        "warm_up_seconds": round(warmed, 2),
        "span_bytes": round(sum(len(b) for b in bodies) / spans),
        "requests": len(bodies),
        "post_seconds": round(posted - started, 2),
        "total_seconds": round(done - started, 2),
        "spans_per_second": round(spans / (done - started), 1),
        "request_p50_ms": round(statistics.median(latencies), 1),
        "request_p99_ms": round(cut[98], 1),
        "memory_mb": memory_mb,
        "processes": processes,
        # CPU of the server process (ingest, the feed worker, the API...), of its pipeline
        # process (the span worker) and of its other children (the search process embedding,
        # API worker processes) from the first request to done
        "server_cpu_ms_per_span": round(1000 * (cpu_after[0] - cpu_before[0]) / spans, 3),
        "pipeline_cpu_ms_per_span": round(1000 * (cpu_after[1] - cpu_before[1]) / spans, 3),
        "children_cpu_seconds": round(cpu_after[2] - cpu_before[2], 2),
        **({"database_cpu_ms_per_span": round(1000 * db_cpu / spans, 3)} if url else {}),
    }


def _database_cpu(url: str | None) -> float:
    """CPU seconds of the PostgreSQL backends connected to the benchmark's database (the
    server on this machine), this query's own left out; 0 for SQLite (in the server)."""
    if not url:
        return 0.0
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return sum(_cpu_seconds(int(r[0])) for r in rows)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / peers.TICKS


def _tree_cpu(pid: int) -> tuple[float, float, float]:
    """CPU seconds of ``pid``, of its pipeline processes (the span and capture workers) and of
    its other descendants (those alive now)."""
    own, pipeline, children, todo = _cpu_seconds(pid), 0.0, 0.0, list(peers._children(pid))
    while todo:
        current = todo.pop()
        if _is_pipeline(current):
            pipeline += _cpu_seconds(current)
        else:
            children += _cpu_seconds(current)
        todo += peers._children(current)
    return own, pipeline, children


def _is_pipeline(pid: int) -> bool:
    """Whether ``pid`` is one of `kontex dev`'s pipeline processes (the span and capture
    workers: ``kontex-pipeline``, and ``kontex-spans-2``... for the span queue's other
    consumers), by the name it gives itself (kontex/local/worker_process.py)."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return name == "kontex-pipeline" or name.startswith("kontex-spans-")


class _Sent:
    """A queue that keeps what is sent (the span messages ingest makes)."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, name: str, bodies: list[str], delay_seconds: int = 0) -> None:
        self.bodies += bodies


def run_worker_cpu(
    total: int, requests: int, prompt_chars: int, backend: str, batch: int = 10
) -> dict[str, Any]:
    """The span worker alone, in this process: the same traffic through ingest's own
    ``accept`` into a list, then ``spans.store_batch`` over queue batches of ``batch``
    messages (as the local queue hands them); CPU seconds of this process per span (no HTTP,
    no embedding, no other thread: what the worker costs, less sensitive to a loaded machine
    than the end-to-end wall time)."""
    from kontex import tokens
    from kontex.adapters.local_blobs import LocalBlobs
    from kontex.adapters.postgres_store import PostgresStore
    from kontex.adapters.sqlite_store import SqliteStore
    from kontex.services import ingest, keys, spans
    from kontex.services.deps import Deps

    bodies = batches(total, requests, prompt_chars)
    with tempfile.TemporaryDirectory() as tmp, _database(backend, Path(tmp)) as (url, _):
        store: Any = PostgresStore(url) if url else SqliteStore(Path(tmp) / "kontex.db")
        store.migrate()
        deps = Deps(store=store, blobs=LocalBlobs(Path(tmp) / "blobs"), api_key_secret=b"b")
        key, _ = keys.create_key(deps, "bench")
        sent = _Sent()
        for body in bodies:
            ingest.accept(deps, sent, ingest.Export(key, body, "application/x-protobuf", None))
        tokens.encoding()  # loaded once per process, before the clock starts
        db_cpu = _database_cpu(url)
        cpu, wall = time.process_time(), time.perf_counter()
        made = 0
        read = getattr(spans, "read_message", json.loads)  # as the worker reads a message
        for start in range(0, len(sent.bodies), batch):
            messages = [read(b) for b in sent.bodies[start : start + batch]]
            made += spans.store_batch(deps, messages)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        db_cpu = _database_cpu(url) - db_cpu  # the store's connections, still open
        store.close()
    spans_ = total // TRACE_SPANS * TRACE_SPANS
    return {
        "backend": backend,
        "spans": spans_,
        "snapshots": made,
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(wall, 2),
        "cpu_ms_per_span": round(1000 * cpu / spans_, 3),
        "spans_per_cpu_second": round(spans_ / cpu),
        **({"database_cpu_ms_per_span": round(1000 * db_cpu / spans_, 3)} if url else {}),
        "load_average": round(os.getloadavg()[0], 2),
    }


def _phoenix_spans(database: Path) -> int:
    if not database.exists():
        return 0
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])


def run_phoenix(total: int, requests: int, prompt_chars: int) -> dict[str, Any]:
    """The same traffic into Arize Phoenix (its own venv, bench/peers.py; SQLite in a fresh
    working dir), timed until its database holds every span."""
    bodies = batches(total, requests, prompt_chars)
    spans = total // TRACE_SPANS * TRACE_SPANS
    # its python, not its `phoenix` script: a script names the folder the venv was built in
    python = peers.venv("phoenix", peers.PHOENIX) / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        port, grpc = free_port(), free_port()
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": tmp,
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc),
            "PHOENIX_HOST": "127.0.0.1",
        }
        process = subprocess.Popen(
            [str(python), "-c", "from phoenix.server.main import main; main()", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if urllib.request.urlopen(base + "/v1/projects", timeout=2).status == 200:
                        break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("Phoenix did not start") from None
                    time.sleep(0.2)
            database = Path(tmp) / "phoenix.db"
            req = urllib.request.Request(
                base + "/v1/traces",
                data=warm_up(prompt_chars),
                headers={"content-type": "application/x-protobuf"},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=60) as response:
                assert response.status == 200
            while _phoenix_spans(database) < WARM_UP_SPANS:
                time.sleep(0.05)
            latencies = []
            started = time.perf_counter()
            for body in bodies:
                t = time.perf_counter()
                req = urllib.request.Request(
                    base + "/v1/traces",
                    data=body,
                    headers={"content-type": "application/x-protobuf"},
                    method="POST",
                )
                with urllib.request.urlopen(req, timeout=60) as response:
                    assert response.status == 200
                latencies.append((time.perf_counter() - t) * 1000)
            posted = time.perf_counter()
            while _phoenix_spans(database) < spans + WARM_UP_SPANS:
                time.sleep(0.1)
            done = time.perf_counter()
            memory_mb = tree_pss_mb(process.pid)
            processes = tree_processes(process.pid)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    cut = statistics.quantiles(latencies, n=100)
    return {
        "backend": "phoenix",
        "spans": spans,
        "traces": spans // TRACE_SPANS,
        "span_bytes": round(sum(len(b) for b in bodies) / spans),
        "requests": len(bodies),
        "post_seconds": round(posted - started, 2),
        "total_seconds": round(done - started, 2),
        "spans_per_second": round(spans / (done - started), 1),
        "request_p50_ms": round(statistics.median(latencies), 1),
        "request_p99_ms": round(cut[98], 1),
        "memory_mb": memory_mb,
        "processes": processes,
    }


def free_port() -> int:
    """A free local port: in ``KONTEX_BENCH_PORTS`` (``19100-19199``) when set, so runs on a
    shared machine stay in their own range; else any."""
    low, _, high = os.environ.get("KONTEX_BENCH_PORTS", "0").partition("-")
    for port in range(int(low), int(high or low) + 1):
        with closing(socket.socket()) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            if port == 0 or port not in _TAKEN:
                _TAKEN.add(port)
                return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port in {low}-{high}")


_TAKEN: set[int] = set()  # handed out already (a stack's port is bound later, by the stack)
stack.free_port = free_port  # `kontex dev` as the benchmark starts it: in the same range


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[tuple[str | None, Callable[[], int]]]:
    """The stack's database URL (None: SQLite in the data dir) and a count of pending spans."""
    if backend == "sqlite":
        path = tmp / "data" / "kontex.db"

        def pending_sqlite() -> int:
            if not path.exists():
                return -1
            with closing(sqlite3.connect(path, timeout=30)) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM spans WHERE done = 0").fetchone()[0])

        yield None, pending_sqlite
        return
    import psycopg

    url = os.environ.get("KONTEX_BENCH_DATABASE_URL", DEFAULT_PG_URL)
    schema = f"kontex_bench_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in url else "?"

            def pending_postgres() -> int:
                row = admin.execute(
                    f'SELECT COUNT(*) FROM "{schema}".spans WHERE NOT done'
                ).fetchone()
                return int(row[0]) if row else -1

            yield f"{url}{sep}options=-csearch_path%3D{schema}", pending_postgres
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the stack (every thread, idle ones too, of the server and its child
    processes: each stack then starts with its process) in collapsed-stack form."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--format", "raw", "--threads", "--idle"]
    command.append("--subprocesses")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([*command, "--rate", "100", "--output", str(out)])


WATCHED = [  # the span worker's steps, and where sealing a batch spends its time
    "store_batch",
    "process_traces",
    "prepare",  # the batch's bundles planned, large bodies stored (services/snapshots.py)
    "seal_all",  # the batch's snapshots sealed in one unit of work
    "plan",  # the bundle cut into items (services/bundles.py)
    "write",  # items and chunks looked up and written
    "count_content",
    "SqliteStore._tx",
    "publish_many",
]


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Shares of the span worker threads' busy samples: inclusive for WATCHED, and the
    functions the most samples were in (self)."""
    busy = idle = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        # process; [the fork server (its command line holds a ";");] [child process (its
        # command line may hold a ";": multiprocessing's);] thread; the thread's frames
        thread = next((f for f in frames if f.startswith("thread (")), "")
        if "kontex-queue-spans" not in thread:
            continue
        if not any(f.startswith("lambda_handler ") for f in frames):
            idle += int(count)  # waiting for a batch
            continue
        busy += int(count)
        names = {f.split(" (")[0] for f in frames[1:]}
        inclusive.update({n: int(count) for n in names})
        own[frames[-1].split(" (")[0] + " (" + frames[-1].split(" (")[-1]] += int(count)
    share = {n: round(100 * inclusive[n] / max(busy, 1), 1) for n in WATCHED}
    return {
        "worker_busy_percent": round(100 * busy / max(busy + idle, 1), 1),
        "inclusive_percent": share,
        "self_percent": {n: round(100 * c / max(busy, 1), 1) for n, c in own.most_common(top)},
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--prompt-chars", type=int, default=3000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="sqlite")
    parser.add_argument(
        "--phoenix", action="store_true", help="also Arize Phoenix, side by side (bench/peers.py)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each; the median is kept")
    parser.add_argument("--profile", type=Path, help="py-spy raw output (one file per backend)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--worker-cpu",
        action="store_true",
        help="the span worker alone, in process: CPU per span (no server, no embedding)",
    )
    args = parser.parse_args(argv)
    results = []
    if args.worker_cpu:
        for backend in ("sqlite", "postgres") if args.backend == "all" else (args.backend,):
            for _ in range(args.rounds):
                result = run_worker_cpu(args.spans, args.requests, args.prompt_chars, backend)
                results.append(result)
                print(
                    json.dumps(result)
                    if args.json
                    else f"{backend}: span worker alone, {result['spans']} spans,"
                    f" {result['snapshots']} snapshots: {result['cpu_ms_per_span']} ms CPU"
                    f" a span ({result['spans_per_cpu_second']} spans per CPU second),"
                    f" {result['wall_seconds']} s wall"
                    + (
                        f", PostgreSQL backends {result['database_cpu_ms_per_span']} ms a span"
                        if "database_cpu_ms_per_span" in result
                        else ""
                    )
                    + f"; load average {result['load_average']}"
                )
        return results
    systems = list(("sqlite", "postgres") if args.backend == "all" else (args.backend,))
    if args.phoenix:
        systems.append("phoenix")
    for backend in systems:
        profile = (  # Phoenix is not profiled
            args.profile.with_suffix(f".{backend}.txt")
            if args.profile and backend != "phoenix"
            else None
        )
        rounds = []
        for _ in range(args.rounds):  # fresh server and data each round
            if backend == "phoenix":
                rounds.append(run_phoenix(args.spans, args.requests, args.prompt_chars))
            else:
                rounds.append(run(args.spans, args.requests, args.prompt_chars, backend, profile))
        rounds.sort(key=lambda r: r["spans_per_second"])
        result = rounds[len(rounds) // 2]
        result["rounds_spans_per_second"] = [r["spans_per_second"] for r in rounds]
        result["load_average"] = round(os.getloadavg()[0], 2)
        if profile:
            result["profile"] = summarize_profile(profile)
        results.append(result)
        if args.json:
            print(json.dumps(result))
            continue
        print(
            f"{backend}: {result['spans']} spans ({result['traces']} agent traces of 4) of"
            f" ~{result['span_bytes']} B in {result['requests']} protobuf requests"
        )
        print(
            f"  all requests answered in {result['post_seconds']} s;"
            f" request latency p50 {result['request_p50_ms']} ms,"
            f" p99 {result['request_p99_ms']} ms"
        )
        if "warm_up_seconds" in result:
            print(
                f"  started: a first trace queryable and search answering"
                f" {result['warm_up_seconds']} s after the port opened (before the clock)"
            )
        what = (
            "every span stored"
            if backend == "phoenix"
            else f"every span processed, {result['snapshots']} snapshots queryable"
        )
        print(
            f"  {what} after {result['total_seconds']} s: {result['spans_per_second']} spans/s"
            f" end to end (rounds: {result['rounds_spans_per_second']})"
        )
        if "server_cpu_ms_per_span" in result:
            print(
                f"  server process CPU {result['server_cpu_ms_per_span']} ms a span,"
                f" pipeline processes {result['pipeline_cpu_ms_per_span']} ms a span;"
                f" the other children (search process, API workers)"
                f" {result['children_cpu_seconds']} CPU seconds in the run"
                + (
                    f"; PostgreSQL backends {result['database_cpu_ms_per_span']} ms a span"
                    if "database_cpu_ms_per_span" in result
                    else ""
                )
            )
        print(
            f"  memory after the run: {result['memory_mb']} MB PSS over"
            f" {result['processes']} processes; load average {result['load_average']}"
        )
        if profile:
            summary = result["profile"]
            print(
                f"  py-spy: span worker threads busy {summary['worker_busy_percent']}% of"
                " their samples; share of their busy samples (inclusive):"
            )
            for name, percent in summary["inclusive_percent"].items():
                print(f"    {percent:5.1f}%  {name}")
            print("  functions the most busy samples were in (self):")
            for name, percent in summary["self_percent"].items():
                print(f"    {percent:5.1f}%  {name}")
    return results


if __name__ == "__main__":
    main()
