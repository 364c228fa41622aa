"""What Kontex costs and holds on AWS at 1, 100 and 10,000 agents (docs/cost.md).

Two halves:

1. **Measured here**: the real Lambda handlers, in this process, on SQLite and PostgreSQL
   (``KONTEX_BENCH_DATABASE_URL``, default 127.0.0.1:5432/test, a fresh schema): wall time, CPU
   time and peak Python allocation (tracemalloc) per unit of work (``UNITS``): an OTLP
   request of 100 spans (ingest), the span-worker batch it queues, a REST write (a snapshot)
   and a REST read, a capture batch (the capture worker on 10 proxy calls), an MCP call
   (``tools/call`` through the API function), a WebSocket message (the live function), a feed
   batch (the feed worker posting 10 events to subscribed connections), an embed batch (the
   embed worker on 10 snapshots: the offline model and Qdrant local mode here, where AWS has
   Voyage AI and a Qdrant cluster) and a search. Nothing is priced by analogy.
2. **The model**: the three workloads in ``WORKLOADS`` turned, with the list prices in
   ``PRICES`` (us-east-1, checked on ``PRICES_READ`` against the stored pages named in
   ``PRICE_SOURCES``; those marked memory were not found), into a monthly bill by service and
   a load against each limit (``limits``), with the ``infra/config.py`` setting that moves it.

Run: ``python bench/aws_cost.py [--backend sqlite|postgres|all] [--repeats N] [--json]``; it
prints the markdown tables of docs/cost.md. Lambda bills wall time at the configured memory
(1024 MB, ``infra/functions.py``), so the model uses wall time on PostgreSQL (the production
database; local PostgreSQL answers faster than Aurora behind RDS Proxy, which adds about a
millisecond a round trip) and the database time (wall minus the handler's CPU) for ACUs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

# -- prices ---------------------------------------------------------------------------------
# There is no network here: the prices were checked on 2026-12-04 against the public pages the
# project's search tool has stored (third-party restatements of AWS's pricing pages, each named
# in PRICE_SOURCES with the date it states); the ones it found nothing for stay as the author
# remembers them and are marked "memory". Check https://aws.amazon.com/pricing before quoting.
PRICES_READ = "2026-12-04"
PRICES = {  # us-east-1 list prices, USD
    "lambda_gb_s_arm": 0.0000133334,  # arm64, first 7.5 billion GB-s a month
    "lambda_request": 0.20 / 1e6,
    "apigw_http_request": 1.00 / 1e6,  # HTTP API, first 300 million a month
    "apigw_ws_message": 1.00 / 1e6,  # WebSocket, per 32 KB message, first billion
    "apigw_ws_minute": 0.25 / 1e6,  # connection minutes
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB request chunk
    "sns_publish": 0.50 / 1e6,  # standard topic; deliveries to SQS are free
    "aurora_acu_hour": 0.12,  # Aurora Serverless v2, Aurora Standard
    "aurora_storage_gb_month": 0.10,
    "aurora_io": 0.20 / 1e6,
    "rds_proxy_acu_hour": 0.015,  # Serverless v2 behind RDS Proxy: per ACU-hour, minimum 8 ACU
    "rds_proxy_min_acu": 8,
    "s3_gb_month": 0.023,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "cw_logs_gb": 0.50,  # ingestion
    "cw_metric_month": 0.30,
    "cw_alarm_month": 0.10,
    "nat_hour": 0.045,
    "nat_gb": 0.045,
    "secret_month": 0.40,
    # search, outside AWS's bill: Voyage AI's model (settings.kontex_voyage_model) and the
    # Qdrant nodes (self-hosted on EC2 here; Qdrant Cloud prices RAM and vCPU alike)
    "voyage_token": 0.18 / 1e6,  # voyage-code-3, after the free tokens of each account
    "qdrant_node_hour": 0.0816,  # EC2 m7g.large (2 vCPU, 8 GiB), Linux on demand
}
MEMORY = "memory (not found in the stored pages: check it)"
PRICE_SOURCES = {  # where each price was checked, and the date that page states
    "lambda_gb_s_arm": "cloudchipr.com/blog/aws-lambda-pricing (2024 guide, us-east-1 arm tiers);"
    " git.mcrn.ar lambda_local_runner docs/lambdas-md/lambda-13-cost.md",
    "lambda_request": "git.mcrn.ar lambda_local_runner docs/lambdas-md/lambda-13-cost.md",
    "apigw_http_request": "amnic.com/blogs/aws-api-gateway-pricing; wring.co/blog/"
    "aws-api-gateway-pricing-guide",
    "apigw_ws_message": "amnic.com/blogs/aws-api-gateway-pricing; wring.co/blog/"
    "aws-api-gateway-pricing-guide",
    "apigw_ws_minute": "amnic.com/blogs/aws-api-gateway-pricing; wring.co/blog/"
    "aws-api-gateway-pricing-guide",
    "sqs_request": "cloudburn.io/blog/amazon-sqs-pricing (as of March 2026); factualminds.com"
    " (June 2026): $0.40/M, 64 KB chunks",
    "sns_publish": "factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols"
    " (June 2026): $0.50/M standard-topic publishes",
    "aurora_acu_hour": "c3x.dev/blog/aws-aurora-serverless-v2-cost; awsnegotiations.com"
    " (May 2026): about $0.12/ACU-hour us-east-1",
    "aurora_storage_gb_month": "awsnegotiations.com/blog/aurora-serverless-v2-pricing.html"
    " (May 2026): about $0.10/GB-month",
    "aurora_io": "infracost/infracost pull request 537 (Aurora I/O rate $0.20 per 1M requests)",
    "rds_proxy_acu_hour": MEMORY,
    "rds_proxy_min_acu": "blog.serverworks.co.jp, amazon-aurora-serverless-v2-and-amazon-rds-proxy"
    "-minimum-cost (June 2024): RDS Proxy bills Serverless v2 at least 8 ACU",
    "s3_gb_month": "devnotes.tech (S3 pricing breakdown)",
    "s3_put": "devnotes.tech (S3 pricing breakdown)",
    "s3_get": "devnotes.tech (S3 pricing breakdown)",
    "cw_logs_gb": "factualminds.com CloudWatch pricing (2026): $0.50/GB ingested",
    "cw_metric_month": "signoz.io/guides/cloudwatch-pricing (Feb 2026): $0.30/metric-month",
    "cw_alarm_month": "c3x.dev/resources/aws/aws_cloudwatch_metric_alarm: $0.10 a standard"
    " alarm-month",
    "nat_hour": "basavytix.com/blog/aws-nat-gateway-pricing; costpatrol.io (us-east-1)",
    "nat_gb": "basavytix.com/blog/aws-nat-gateway-pricing; costpatrol.io (us-east-1)",
    "secret_month": "hivebook.wiki (AWS Secrets Manager): $0.40 per secret per month",
    "voyage_token": "a Voyage AI model catalog restating docs.voyageai.com/docs/pricing"
    " (clawhub.ai voyageai-skill references/models.md): voyage-code-3 $0.18/M tokens, 50M free",
    "qdrant_node_hour": "factualminds.com/blog/amazon-ec2-on-demand-pricing-instance-families"
    "-2026 (June 2026): m7g.large $0.0816/hr us-east-1",
}
HOURS = 730  # a month

# -- the stack's fixed shape (infra/) --------------------------------------------------------
LAMBDA_GB = 1.0  # infra/functions.py: memory_size=1024 for the api, ingest, proxy and workers
SQS_BATCH = 10  # infra/workers.py BATCH_SIZE
STAGE = {  # infra/config.py, the settings the limits depend on
    "dev": {"nat": 1, "readers": 0, "max_acu": 4, "rate": 50, "workers": 2},
    "prod": {"nat": 2, "readers": 1, "max_acu": 16, "rate": 500, "workers": 10},
}
ACCOUNT_CONCURRENCY = 1000  # Lambda's default per account and region (a quota, raisable)
WS_CONNECT_PER_S = 500  # API Gateway WebSocket new connections a second (account quota)
ACU_VCPU = 0.25  # an ACU is about 2 GiB with "corresponding CPU": taken as 1/4 vCPU
ACU_CONNECTIONS = 190  # Aurora PostgreSQL max_connections per ACU of max capacity (about)
QDRANT_SEARCHES_PER_S = 100  # one small Qdrant node (2 vCPU), 1024-d vectors: an assumption
QDRANT_NODE_RAM = 8 * 2**30 * 0.75  # an m7g.large's 8 GiB, a quarter left to the OS and Qdrant
VECTOR_DIMS = 1024  # voyage-code-3 (adapters/voyage_embedder.py)
# Qdrant's capacity planning rule, vectors x dimensions x bytes x 1.5 (indexes, versions and
# the optimiser's temporary segments), for what Kontex keeps in RAM: the int8 copy of each
# dense vector (adapters/qdrant_index.py: scalar quantization, the float32 originals on disk)
VECTOR_RAM_BYTES = VECTOR_DIMS * 1 * 1.5
QUERY_TOKENS = 12  # a search query embedded by Voyage AI
LLM_SECONDS = 8.0  # a proxy call streams the upstream answer: the function waits this long

# -- the workloads ---------------------------------------------------------------------------
# Per active agent: an LLM step every 30 s (one proxy call or one traced LLM call), ten spans
# a step, one snapshot a step; live viewers and searches as below. Active hours a month.
WORKLOADS = {
    "developer (1 agent)": {"agents": 1, "active_hours": 4 * 22, "stage": "dev", "viewers": 1},
    "team (100 agents)": {"agents": 100, "active_hours": HOURS / 2, "stage": "prod", "viewers": 10},
    "platform (10,000 agents)": {
        "agents": 10_000,
        "active_hours": HOURS / 2,
        "stage": "prod",
        "viewers": 200,
    },
}
STEP_SECONDS = 30.0
SPANS_PER_STEP = 10
PROXY_SHARE = 0.5  # half the steps go through the proxy, half arrive as OTLP spans
SEARCHES_PER_AGENT_HOUR = 2
READS_PER_SNAPSHOT = 1.0  # reads (SDK restore, dashboard, MCP) per snapshot written
MCP_SHARE = 0.5  # of those reads, through the MCP tools (kontex_get_context)
WS_MESSAGE_EVERY_S = 60.0  # a live subscriber sends a frame a minute (subscribe, thread state)
SNAPSHOT_BYTES = 6_000  # stored per snapshot after dedup (docs/benchmarks.md, storage growth)
LOG_BYTES_PER_INVOCATION = 600  # JSON logs at INFO: START/END/REPORT and one line


# -- measuring -------------------------------------------------------------------------------
def measure(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median wall and CPU milliseconds, peak traced KiB."""
    walls, cpus, peaks = [], [], []
    for _ in range(repeats):
        tracemalloc.start()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        peaks.append(tracemalloc.get_traced_memory()[1] / 1024)
        tracemalloc.stop()
        walls.append(wall * 1000)
        cpus.append(cpu * 1000)
    return {
        "wall_ms": round(statistics.median(walls), 2),
        "cpu_ms": round(statistics.median(cpus), 2),
        "peak_kib": round(max(peaks), 1),
    }


@contextmanager
def _store(backend: str, tmp: Path) -> Iterator[Any]:
    if backend == "sqlite":
        from kontex.adapters.sqlite_store import SqliteStore

        store = SqliteStore(tmp / "kontex.db")
        store.migrate()
        yield store
        store.close()
        return
    import psycopg

    from kontex.adapters.postgres_store import PostgresStore

    url = os.environ.get("KONTEX_BENCH_DATABASE_URL", DEFAULT_PG_URL)
    schema = f"kontex_cost_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            sep = "&" if "?" in url else "?"
            store = PostgresStore(f"{url}{sep}options=-csearch_path%3D{schema}", pooled=True)
            store.migrate()
            yield store
            store.close()
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


class _Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, queue: str, bodies: list[str], delay_seconds: int = 0) -> None:
        self.sent += [(queue, b) for b in bodies]


def measure_backend(backend: str, repeats: int) -> dict[str, dict[str, float]]:
    from bench.ingest import batches
    from kontex import bootstrap
    from kontex.adapters.local_blobs import LocalBlobs
    from kontex.adapters.local_queue import sqs_record
    from kontex.functions import worker_paths
    from kontex.http.apigw import LocalContext, http_api_event
    from kontex.local.server import load_handler, load_worker
    from kontex.services import keys
    from kontex.settings import Settings

    api = load_handler("api")
    ingest = load_handler("ingest")
    spans_worker = load_worker(worker_paths()["spans"]).lambda_handler
    results: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="kontex-cost-") as tmp,
        _store(backend, Path(tmp)) as store,
    ):
        config = Settings.from_env(
            {
                "KONTEX_API_KEY_SECRET": "cost",
                "KONTEX_RATE_LIMIT_PER_HOUR": "1000000",
                "KONTEX_SNAPSHOT_WRITES_PER_HOUR": "1000000",
            },
            kontex_data_dir=Path(tmp),
        )
        made = bootstrap.Container(config, store=store, blobs=LocalBlobs(Path(tmp) / "blobs"))
        queue = _Queue()
        made.queue = queue  # type: ignore[misc]
        bootstrap.configure(made)
        try:
            api_key, key = keys.create_key(made.deps, "cost")
            account_id = api_key.account_id
            headers = [("authorization", f"Bearer {key}"), ("content-type", "application/json")]

            def call(handler: Any, method: str, path: str, body: Any = None) -> dict[str, Any]:
                data = json.dumps(body).encode() if body is not None else b""
                event = http_api_event(method, path, headers, data)
                reply = handler(event, LocalContext(function_name="kontex-api"))
                assert reply["statusCode"] < 300, reply
                return json.loads(reply["body"]) if reply.get("body") else {}

            session = call(api, "POST", "/v1/sessions", {"name": "cost"})
            task = call(api, "POST", f"/v1/sessions/{session['id']}/tasks", {"name": "t"})
            turn = [0]
            messages: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]

            def rest_write() -> None:
                turn[0] += 1
                messages.extend(
                    [
                        {"role": "user", "content": f"question {turn[0]} " * 20},
                        {"role": "assistant", "content": f"answer {turn[0]} " * 40},
                    ]
                )
                made_snapshot = call(
                    api,
                    "POST",
                    f"/v1/tasks/{task['id']}/snapshots",
                    {"label": f"s{turn[0]}", "bundle": {"messages": messages}},
                )
                last[0] = made_snapshot["id"]

            last = [""]
            rest_write()
            results["REST write (snapshot)"] = measure(rest_write, repeats)
            results["REST read (snapshot)"] = measure(
                lambda: call(api, "GET", f"/v1/snapshots/{last[0]}"), repeats
            )

            bodies = iter(batches(100 * (repeats + 1), repeats + 1, 400))
            otlp_headers = [("authorization", f"Bearer {key}")]
            otlp_headers.append(("content-type", "application/x-protobuf"))

            def otlp() -> None:
                event = http_api_event("POST", "/ingest/v1/traces", otlp_headers, next(bodies))
                reply = ingest(event, LocalContext(function_name="kontex-ingest"))
                assert reply["statusCode"] == 200, reply

            results["OTLP request (100 spans)"] = measure(otlp, repeats)
            sent = list(queue.sent)
            per_request = max(1, len(sent) // repeats)
            chunks = iter([sent[i : i + SQS_BATCH] for i in range(0, len(sent), SQS_BATCH)] or [[]])

            sizes: list[int] = []

            def worker_batch() -> None:
                chunk = next(chunks, [])
                sizes.append(len(chunk))
                records = [
                    sqs_record("spans", f"m{i}", body, 1) for i, (_, body) in enumerate(chunk)
                ]
                spans_worker({"Records": records}, LocalContext(function_name="kontex-spans"))

            runs = min(repeats, -(-len(sent) // SQS_BATCH))
            batch = measure(worker_batch, runs)
            # per message (up to SQS_BATCH in an invocation), then as a full batch of 10
            per_message = 1 / max(1.0, statistics.median(sizes))
            for field in ("wall_ms", "cpu_ms"):
                batch[field] = round(batch[field] * per_message * SQS_BATCH, 2)
            batch["messages_per_request"] = per_request
            results["span-worker batch (10 messages)"] = batch
            results.update(
                measure_more(made, call, account_id, session["id"], task["id"], key, repeats)
            )
        finally:
            bootstrap.configure(None)
    return results


class _Connections:
    """The live feed's WebSocket connections (API Gateway's Management API on AWS): posts are
    counted, not sent."""

    def __init__(self) -> None:
        self.posts = 0

    def post(self, connection_id: str, data: bytes) -> None:
        self.posts += 1

    def close(self, connection_id: str) -> None:
        pass


FEED_SUBSCRIBERS = 2  # WebSocket connections subscribed to the session each event goes to
EMBED_REPEATS = 5  # embed batches are the slow unit (the offline model): fewer runs


def measure_more(
    made: Any,
    call: Callable[..., dict[str, Any]],
    account_id: str,
    session_id: str,
    task_id: str,
    key: str,
    repeats: int,
) -> dict[str, dict[str, float]]:
    """The units past ingest and REST: capture, MCP call, WebSocket message, feed delivery,
    embed batch and a search, each through its function's real handler."""
    from kontex.adapters.local_queue import sqs_record
    from kontex.functions import worker_paths
    from kontex.http.apigw import LocalContext, http_api_event
    from kontex.local.server import load_handler, load_worker
    from kontex.services.capture import CaptureJob

    results: dict[str, dict[str, float]] = {}
    api = load_handler("api")
    live = load_handler("live")
    connections = _Connections()
    made.connections = connections

    # capture: the capture worker on an SQS batch of 10 proxy calls (one conversation growing)
    capture = load_worker(worker_paths()["capture"]).lambda_handler
    turns: list[dict[str, Any]] = [{"role": "user", "content": "Plan the refactor. " * 20}]
    batches: list[list[dict[str, Any]]] = []
    for b in range(repeats + 1):
        records = []
        for i in range(SQS_BATCH):
            n = b * SQS_BATCH + i
            turns.append({"role": "assistant", "content": f"step {n} " * 40})
            turns.append({"role": "user", "content": f"tool result {n} " * 30})
            job = CaptureJob(
                id=f"call_{n}",
                account_id=account_id,
                session_id=session_id,
                task_id=None,
                trigger="always",
                n=1,
                request={"model": "claude-sonnet-4-5", "messages": list(turns[-41:])},
                reply={"role": "assistant", "content": [{"type": "text", "text": f"ok {n}"}]},
            ).to_json()
            records.append(sqs_record("capture", f"c{n}", job, 1))
        batches.append(records)
    captures = iter(batches)

    def capture_batch() -> None:
        answer = capture({"Records": next(captures)}, LocalContext(function_name="kontex-capture"))
        assert not answer.get("batchItemFailures"), answer

    capture_batch()  # warm
    results["capture batch (10 proxy calls)"] = measure(capture_batch, repeats)

    # MCP: one tools/call through the API function (the MCP SDK loaded by a first call)
    snapshot = call(api, "GET", f"/v1/tasks/{task_id}/snapshots/latest")
    mcp_headers = [
        ("authorization", f"Bearer {key}"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("host", "127.0.0.1:8787"),
        ("mcp-protocol-version", "2025-06-18"),
    ]
    rpc = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "kontex_get_context", "arguments": {"snapshot_id": snapshot["id"]}},
    }

    def mcp_call() -> None:
        event = http_api_event("POST", "/mcp", mcp_headers, json.dumps(rpc).encode())
        reply = api(event, LocalContext(function_name="kontex-api"))
        assert reply["statusCode"] == 200 and "result" in reply["body"], reply

    mcp_call()  # warm: the MCP SDK loads with the first MCP request
    results["MCP call (kontex_get_context)"] = measure(mcp_call, repeats)

    # WebSocket: $connect, the key's frame, subscribe; then thread-state saves as the unit
    def ws(route: str, connection_id: str, body: Any = None) -> None:
        event: dict[str, Any] = {
            "requestContext": {"routeKey": route, "connectionId": connection_id}
        }
        if body is not None:
            event["body"] = json.dumps(body)
        live(event, LocalContext(function_name="kontex-live"))

    for c in range(FEED_SUBSCRIBERS):
        ws("$connect", f"conn{c}")
        ws("$default", f"conn{c}", {"authorization": key})
        ws(
            "$default",
            f"conn{c}",
            {"id": 1, "action": "subscribe", "data": {"session_id": session_id}},
        )
    saves = [0]

    def ws_message() -> None:
        saves[0] += 1
        data = {
            "thread_id": "cost-thread",
            "user_data": json.dumps({"turn": saves[0]} | {"x": "y" * 2000}),
        }
        ws("$default", "conn0", {"id": saves[0], "action": "save", "data": data})

    ws_message()
    before = connections.posts
    results["WebSocket message (thread save)"] = measure(ws_message, repeats)
    assert connections.posts - before == repeats, "each message is answered"

    # feed: the feed worker on an SQS batch of 10 snapshot.created events, each posted to the
    # session's FEED_SUBSCRIBERS connections
    feed = load_worker(worker_paths()["feed"]).lambda_handler
    events = [0]

    def feed_batch() -> None:
        records = []
        for _ in range(SQS_BATCH):
            events[0] += 1
            body = {
                "id": f"evt_{events[0]}",
                "type": "snapshot.created",
                "account_id": account_id,
                "session_id": session_id,
                "data": {"snapshot_id": snapshot["id"], "label": "s"},
            }
            records.append(sqs_record("feed", f"f{events[0]}", json.dumps(body), 1))
        answer = feed({"Records": records}, LocalContext(function_name="kontex-feed"))
        assert not answer.get("batchItemFailures"), answer

    feed_batch()
    before = connections.posts
    results["feed batch (10 events)"] = measure(feed_batch, repeats)
    assert connections.posts - before == repeats * SQS_BATCH * FEED_SUBSCRIBERS

    # embed: the embed worker on an SQS batch of 10 snapshot.created events (offline model and
    # Qdrant local mode here; Voyage AI and a Qdrant cluster on AWS)
    embed = load_worker(worker_paths()["embed"]).lambda_handler
    ids = [
        call(
            api,
            "POST",
            f"/v1/tasks/{task_id}/snapshots",
            {
                "label": f"e{n}",
                "bundle": {
                    "messages": [
                        {
                            "role": "user",
                            "content": f"Fix the flaky test number {n} in module {n % 7}.",
                        },
                        {"role": "assistant", "content": f"Reading tests/test_{n}.py first. " * 30},
                    ]
                },
            },
        )["id"]
        for n in range(SQS_BATCH * (EMBED_REPEATS + 1))
    ]
    chunks = iter([ids[i : i + SQS_BATCH] for i in range(0, len(ids), SQS_BATCH)])

    def embed_batch() -> None:
        records = [
            sqs_record(
                "embed",
                f"e{sid}",
                json.dumps(
                    {
                        "id": f"evt_{sid}",
                        "type": "snapshot.created",
                        "account_id": account_id,
                        "session_id": session_id,
                        "data": {"snapshot_id": sid},
                    }
                ),
                1,
            )
            for sid in next(chunks)
        ]
        answer = embed({"Records": records}, LocalContext(function_name="kontex-embed"))
        assert not answer.get("batchItemFailures"), answer

    # what the embedder is given: Voyage AI bills its tokens and Qdrant holds a vector for each
    # text (on AWS the worker sends the same texts to Voyage AI)
    from kontex.adapters.offline_embedder import OfflineEmbedder
    from kontex.tokens import encoding

    given: list[str] = []  # counted after the timing
    embed_documents = OfflineEmbedder.embed_documents

    def counting(self: OfflineEmbedder, texts: Any) -> list[list[float]]:
        given.extend(texts)
        return embed_documents(self, texts)

    embed_batch()  # warm: the model loads with the first batch
    OfflineEmbedder.embed_documents = counting  # type: ignore[method-assign]
    try:
        results["embed batch (10 snapshots)"] = measure(embed_batch, EMBED_REPEATS)
    finally:
        OfflineEmbedder.embed_documents = embed_documents  # type: ignore[method-assign]
    snapshots = EMBED_REPEATS * SQS_BATCH
    tokens = sum(len(encoding().encode(text, disallowed_special=())) for text in given)
    results["embed batch (10 snapshots)"]["texts_per_snapshot"] = len(given) / snapshots
    results["embed batch (10 snapshots)"]["tokens_per_snapshot"] = round(tokens / snapshots, 1)

    # search: GET /v1/search through the API function (query embedded, hybrid)
    def search() -> None:
        call(api, "GET", "/v1/search?q=flaky%20test%20module&limit=10")

    search()
    results["search (REST)"] = measure(search, repeats)
    return results


SPAN_BATCH = "span-worker batch (10 messages)"
UNITS = [  # every unit of work the model prices, each measured by measure_backend
    "REST write (snapshot)",
    "REST read (snapshot)",
    "OTLP request (100 spans)",
    SPAN_BATCH,
    "capture batch (10 proxy calls)",
    "MCP call (kontex_get_context)",
    "WebSocket message (thread save)",
    "feed batch (10 events)",
    "embed batch (10 snapshots)",
    "search (REST)",
]
# units priced with another unit's measurement (not measured in process here): none left
ESTIMATED_AS: dict[str, str] = {}


# -- the model -------------------------------------------------------------------------------
def rates(workload: dict[str, Any]) -> dict[str, float]:
    """Per second while the agents are active."""
    agents = workload["agents"]
    steps = agents / STEP_SECONDS
    return {
        "spans/s": steps * (1 - PROXY_SHARE) * SPANS_PER_STEP,
        "snapshots/s": steps,
        "proxy calls/s": steps * PROXY_SHARE,
        "live subscribers": workload["viewers"],
        "searches/s": agents * SEARCHES_PER_AGENT_HOUR / 3600,
    }


def bill(workload: dict[str, Any], unit: dict[str, dict[str, float]]) -> dict[str, Any]:
    p = PRICES
    stage = STAGE[workload["stage"]]
    r = rates(workload)
    seconds = workload["active_hours"] * 3600

    def wall(name: str) -> float:
        return unit[ESTIMATED_AS.get(name, name)]["wall_ms"] / 1000

    def db(name: str) -> float:
        m = unit[ESTIMATED_AS.get(name, name)]
        return max(0.0, m["wall_ms"] - m["cpu_ms"]) / 1000

    otlp_per_s = r["spans/s"] / 100
    worker_per_s = (
        otlp_per_s * unit["span-worker batch (10 messages)"]["messages_per_request"] / SQS_BATCH
    )
    writes_per_s = r["snapshots/s"] * PROXY_SHARE  # the rest come from spans and captures
    reads_per_s = r["snapshots/s"] * READS_PER_SNAPSHOT
    events_per_s = r["snapshots/s"]  # snapshot.created reaches the feed
    # the events of the sessions someone watches: a viewer watches one agent's session
    ws_per_s = events_per_s * min(1.0, r["live subscribers"] / max(1, workload["agents"]))
    mcp_per_s = reads_per_s * MCP_SHARE  # reads through MCP tools, the rest through REST
    rest_reads_per_s = reads_per_s - mcp_per_s
    ws_in_per_s = r["live subscribers"] / WS_MESSAGE_EVERY_S  # client frames to the live function
    invocations = {  # per second: (count, wall seconds each)
        "ingest": (otlp_per_s, wall("OTLP request (100 spans)")),
        "spans worker": (worker_per_s, wall("span-worker batch (10 messages)")),
        "proxy": (r["proxy calls/s"], LLM_SECONDS),
        "capture worker": (
            r["proxy calls/s"] / SQS_BATCH,
            wall("capture batch (10 proxy calls)"),
        ),
        "api (REST write)": (writes_per_s, wall("REST write (snapshot)")),
        "api (REST read)": (rest_reads_per_s, wall("REST read (snapshot)")),
        "api (MCP call)": (mcp_per_s, wall("MCP call (kontex_get_context)")),
        "api (search)": (r["searches/s"], wall("search (REST)")),
        "live (WebSocket message)": (ws_in_per_s, wall("WebSocket message (thread save)")),
        "feed worker": (events_per_s / SQS_BATCH, wall("feed batch (10 events)")),
        "embed worker": (r["snapshots/s"] / SQS_BATCH, wall("embed batch (10 snapshots)")),
    }
    calls = sum(n for n, _ in invocations.values()) * seconds
    gb_s = sum(n * d for n, d in invocations.values()) * seconds * LAMBDA_GB
    concurrency = {name: n * d for name, (n, d) in invocations.items()}
    db_seconds_per_s = (
        otlp_per_s * db("OTLP request (100 spans)")
        + worker_per_s * db("span-worker batch (10 messages)")
        + r["proxy calls/s"] / SQS_BATCH * db("capture batch (10 proxy calls)")
        + writes_per_s * db("REST write (snapshot)")
        + rest_reads_per_s * db("REST read (snapshot)")
        + mcp_per_s * db("MCP call (kontex_get_context)")
        + ws_in_per_s * db("WebSocket message (thread save)")
        + events_per_s / SQS_BATCH * db("feed batch (10 events)")
    )
    busy_acu = db_seconds_per_s / ACU_VCPU  # ACUs kept busy while active
    readers = stage["readers"]
    acu_hours = (max(0.5, busy_acu) * workload["active_hours"]) + 0.5 * (
        HOURS - workload["active_hours"]
    )
    acu_hours *= 1 + readers  # readers scale with the writer (scale_with_writer=True)
    snapshots_month = r["snapshots/s"] * seconds
    storage_gb = snapshots_month * SNAPSHOT_BYTES / 1e9
    # search: a vector for each text the embed worker embeds (each distinct item, once), all
    # held in the Qdrant nodes' RAM; sized for the month's vectors (they grow with retention)
    embedded = unit["embed batch (10 snapshots)"]
    vectors = snapshots_month * embedded.get("texts_per_snapshot", 0.0)
    qdrant_nodes = max(1, math.ceil(vectors * VECTOR_RAM_BYTES / QDRANT_NODE_RAM))
    voyage_tokens = (
        snapshots_month * embedded.get("tokens_per_snapshot", 0.0)
        + r["searches/s"] * seconds * QUERY_TOKENS
    )
    http_requests = (otlp_per_s + writes_per_s + reads_per_s + r["searches/s"]) * seconds
    ws_messages = (ws_per_s + 2 * ws_in_per_s) * seconds  # feed posts; frames in and answers
    sqs_messages = (
        otlp_per_s * unit["span-worker batch (10 messages)"]["messages_per_request"]
        + r["proxy calls/s"]
        + events_per_s * 2
    ) * seconds
    cost = {
        "Lambda": gb_s * p["lambda_gb_s_arm"] + calls * p["lambda_request"],
        "API Gateway (HTTP + WebSocket)": http_requests * p["apigw_http_request"]
        + ws_messages * p["apigw_ws_message"]
        + r["live subscribers"] * workload["active_hours"] * 60 * p["apigw_ws_minute"],
        # a message: its send, plus a tenth of a batched receive and of a batched delete
        "SQS + SNS": sqs_messages * 1.2 * p["sqs_request"]
        + events_per_s * seconds * p["sns_publish"],
        "Aurora Serverless v2 (ACU, storage, I/O)": acu_hours * p["aurora_acu_hour"]
        + storage_gb * p["aurora_storage_gb_month"]
        + snapshots_month * 20 * p["aurora_io"],
        "RDS Proxy": max(p["rds_proxy_min_acu"], busy_acu * (1 + readers))
        * HOURS
        * p["rds_proxy_acu_hour"],
        "S3 (bundles, claims)": storage_gb * p["s3_gb_month"]
        + snapshots_month * (p["s3_put"] + p["s3_get"]),
        "CloudWatch (logs, metrics, alarms)": calls
        * LOG_BYTES_PER_INVOCATION
        / 1e9
        * p["cw_logs_gb"]
        + 60 * p["cw_metric_month"]
        + 25 * p["cw_alarm_month"],
        "NAT gateways, secrets": stage["nat"] * HOURS * p["nat_hour"] + 3 * p["secret_month"],
        "Search: Qdrant nodes, Voyage AI (not AWS)": qdrant_nodes * HOURS * p["qdrant_node_hour"]
        + voyage_tokens * p["voyage_token"],
    }
    cost = {k: round(v, 2) for k, v in cost.items()}
    total = round(sum(cost.values()), 2)
    spans_month = r["spans/s"] * seconds
    return {
        "rates": {k: round(v, 3) for k, v in r.items()},
        "cost": cost,
        "total": total,
        "per_million_spans": round(total / max(spans_month, 1) * 1e6, 2),
        "per_thousand_snapshots": round(total / max(snapshots_month, 1) * 1e3, 3),
        "vectors": round(vectors),
        "qdrant_nodes": qdrant_nodes,
        "voyage_tokens": round(voyage_tokens),
        "limits": limits(workload, r, concurrency, busy_acu, worker_per_s, unit, qdrant_nodes),
    }


def limits(
    workload: dict[str, Any],
    r: dict[str, float],
    concurrency: dict[str, float],
    busy_acu: float,
    worker_per_s: float,
    unit: dict[str, dict[str, float]],
    qdrant_nodes: int = 1,
) -> list[dict[str, Any]]:
    """Each limit's load (demand / capacity), the highest first; over 1.0 means it is hit."""
    stage = STAGE[workload["stage"]]
    batch_s = unit["span-worker batch (10 messages)"]["wall_ms"] / 1000
    spans_per_batch = (
        100 * SQS_BATCH / unit["span-worker batch (10 messages)"]["messages_per_request"]
    )
    rows = [
        (
            "Lambda concurrency (account)",
            sum(concurrency.values()) / ACCOUNT_CONCURRENCY,
            "account quota, not infra/config.py (the proxy holds one per LLM call)",
        ),
        ("Aurora ACUs (writer)", busy_acu / stage["max_acu"], "db_max_acu"),
        (
            "Aurora connections through RDS Proxy",
            # every running function but the proxy (it holds no connection while the LLM
            # answers) holds a client connection; RDS Proxy lends it a server one per
            # transaction, so this is the most it could ask for at once
            sum(c for name, c in concurrency.items() if name != "proxy")
            / (stage["max_acu"] * ACU_CONNECTIONS),
            "db_max_acu (max_connections grows with it)",
        ),
        (
            "SQS span-worker throughput",
            r["spans/s"] * batch_s / (stage["workers"] * spans_per_batch),
            "worker_max_concurrency",
        ),
        (
            "API Gateway stage rate",
            (r["spans/s"] / 100 + r["snapshots/s"] * (PROXY_SHARE + READS_PER_SNAPSHOT))
            / stage["rate"],
            "api_rate_limit, api_burst_limit",
        ),
        (
            "API Gateway WebSocket connects",
            r["live subscribers"] / 60 / WS_CONNECT_PER_S,
            "account quota",
        ),
        (
            "Qdrant searches",
            r["searches/s"] / (qdrant_nodes * QDRANT_SEARCHES_PER_S),
            "QDRANT_URL: the Qdrant cluster's size (nodes sized for the vectors' RAM)",
        ),
    ]
    out = [{"limit": n, "load": round(v, 4), "moved_by": m} for n, v, m in rows]
    return sorted(out, key=lambda row: -row["load"])


def markdown(units: dict[str, dict[str, dict[str, float]]], model: dict[str, Any]) -> str:
    lines = ["### Measured per unit of work (this machine, in process, median)", ""]
    lines.append("| unit | backend | wall ms | CPU ms | peak KiB (Python) |")
    lines.append("|---|---|---|---|---|")
    for backend, measured in units.items():
        for name, m in measured.items():
            lines.append(
                f"| {name} | {backend} | {m['wall_ms']} | {m['cpu_ms']} | {m['peak_kib']} |"
            )
    for name, like in ESTIMATED_AS.items():
        lines.append(f"| {name} | not measured | priced as {like} | | |")
    lines += ["", f"### Prices (us-east-1, USD; checked {PRICES_READ})", ""]
    lines.append("| price | USD | checked against |")
    lines.append("|---|---|---|")
    for name, value in PRICES.items():
        lines.append(f"| {name} | {value:.10g} | {PRICE_SOURCES[name]} |")
    lines += ["", "### Workloads: rates while active", ""]
    names = list(model)
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for key in next(iter(model.values()))["rates"]:
        lines.append(f"| {key} | " + " | ".join(str(model[n]["rates"][key]) for n in names) + " |")
    lines += [
        "",
        f"### Monthly cost by service (USD, us-east-1 list prices checked {PRICES_READ})",
        "",
    ]
    lines.append("| service | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for service in next(iter(model.values()))["cost"]:
        lines.append(
            f"| {service} | "
            + " | ".join(f"{model[n]['cost'][service]:,.2f}" for n in names)
            + " |"
        )
    lines.append(
        "| **total** | " + " | ".join(f"**{model[n]['total']:,.2f}**" for n in names) + " |"
    )
    lines.append(
        "| per million spans | "
        + " | ".join(f"{model[n]['per_million_spans']:,.2f}" for n in names)
        + " |"
    )
    lines.append(
        "| per thousand snapshots | "
        + " | ".join(f"{model[n]['per_thousand_snapshots']:,.3f}" for n in names)
        + " |"
    )
    lines += ["", "Search's sizing (the month's new content):", ""]
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for key, label in (
        ("vectors", "vectors stored (one per distinct text embedded)"),
        ("qdrant_nodes", "Qdrant nodes (m7g.large, int8 vectors in RAM)"),
        ("voyage_tokens", "Voyage AI tokens (documents and queries)"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{model[n][key]:,}" for n in names) + " |")
    lines += ["", "### Limits: load = demand / capacity (1.0 = hit), highest first", ""]
    for n in names:
        lines.append(f"**{n}**")
        lines.append("")
        lines.append("| limit | load | moved by |")
        lines.append("|---|---|---|")
        for row in model[n]["limits"]:
            lines.append(f"| {row['limit']} | {row['load']} | {row['moved_by']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--write", type=Path, help="replace the tables between this script's markers in a file"
    )
    parser.add_argument(
        "--units", type=Path, help="the units of a previous --json run: price them, measure none"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "1")  # no metric lines in the output
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    if args.units:
        saved = json.loads(args.units.read_text())
        units, load = saved["units"], saved.get("loadavg", "not recorded")
    else:
        units = {b: measure_backend(b, args.repeats) for b in backends}
        load = _load()
    basis = units.get("postgres") or units[backends[0]]
    model = {name: bill(w, basis) for name, w in WORKLOADS.items()}
    out = {"prices_read": PRICES_READ, "loadavg": load, "units": units, "model": model}
    text = markdown(units, model).replace(
        "(this machine, in process, median)",
        f"(this machine, in process, median; load average after the run: {load})",
    )
    print(json.dumps(out, indent=2) if args.json else text)
    if args.write:
        write_block(args.write, "bench/aws_cost.py", text)
    return out


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_block(path: Path, name: str, text: str) -> None:
    """Replace what lies between ``<!-- begin: name -->`` and ``<!-- end: name -->``."""
    begin, end = f"<!-- begin: {name} -->", f"<!-- end: {name} -->"
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise SystemExit(f"{path} has no {begin} ... {end} block")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{text.strip()}\n{end}{tail}")


if __name__ == "__main__":
    main()
