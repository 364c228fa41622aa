"""What one checkpoint request costs on the server: the API function's handler called in
process (no HTTP), as API Gateway would call it, for the three requests of an agent's step.

A thread grows by one message of about 900 bytes per step; each step is a put (a delta over
the previous checkpoint's snapshot, as ``KontexSaver`` sends it), a ``put_writes`` of one
write, and a get of the thread's latest checkpoint. Reported per backend: the mean time of
each request over ``--steps`` steps, after ``--warmup`` steps (a thread of that many messages
already). ``--http`` also sends the same steps to a ``kontex dev`` on SQLite with the Python
client (one keep-alive connection): the difference is what the HTTP layer adds.

    python bench/checkpoint_requests.py [--steps 300] [--warmup 20] [--http]
                                        [--backend sqlite|postgres|all] [--json]

PostgreSQL is reached at ``KONTEX_BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), in a fresh schema dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# as `kontex dev` runs the handlers: no X-Ray, no EMF lines
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

from storage_growth import machine  # noqa: E402

from kontex import bootstrap  # noqa: E402
from kontex.adapters.local_blobs import LocalBlobs  # noqa: E402
from kontex.http.apigw import LocalContext, http_api_event  # noqa: E402
from kontex.local.server import load_handler  # noqa: E402
from kontex.services import keys  # noqa: E402
from kontex.settings import Settings  # noqa: E402

PG_URL = os.environ.get("KONTEX_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEXT = "the agent reads a file then runs the tests and checks each failing case " * 12


@contextlib.contextmanager
def container(backend: str, data_dir: Path) -> Iterator[bootstrap.Container]:
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "bench"}, kontex_data_dir=data_dir)
    if backend == "sqlite":
        made = bootstrap.Container(config)
        made.migrate()
        yield made
        return
    import psycopg

    from kontex.adapters.postgres_store import PostgresStore

    schema = f"kontex_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        store = PostgresStore(f"{PG_URL}?options=-csearch_path%3D{schema}")
        try:
            made = bootstrap.Container(config, store=store, blobs=LocalBlobs(data_dir / "blobs"))
            made.migrate()
            yield made
        finally:
            store.close()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def caller(handler: Callable[..., dict[str, Any]], key: str) -> Callable[..., tuple[int, Any]]:
    headers = [("authorization", f"Bearer {key}"), ("content-type", "application/json")]

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        answer = handler(http_api_event(method, path, headers, raw), LocalContext("kontex-api"))
        return answer["statusCode"], answer.get("body")

    return call


def run(backend: str, steps: int, warmup: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch, container(backend, Path(scratch)) as made:
        bootstrap.configure(made)
        _, key = keys.create_key(made.deps, "bench")
        call = caller(load_handler("api", instance=secrets.randbelow(10**6)), key)
        spent = {"put": 0.0, "put_writes": 0.0, "get": 0.0}
        snapshot: str | None = None
        for step in range(warmup + steps):
            checkpoint = f"{step:08}"
            put: dict[str, Any] = {
                "thread_id": "bench",
                "checkpoint_id": checkpoint,
                "parent_id": f"{step - 1:08}" if step else None,
                "metadata": {"step": step},
                "bundle": {
                    "messages": [{"role": "user", "content": f"{step} {TEXT}"}],
                    "files": [
                        {
                            "path": "langgraph/checkpoint.json",
                            "content": json.dumps({"id": checkpoint}),
                            "token_count": 0,
                        }
                    ],
                },
            }
            if snapshot:
                put["base"] = {"snapshot_id": snapshot}
            write = {
                "thread_id": "bench",
                "checkpoint_id": checkpoint,
                "writes": [{"task_id": "t", "idx": 0, "channel": "c", "value": {"v": step}}],
            }
            timed = step >= warmup
            started = time.perf_counter()
            status, body = call("POST", "/v1/checkpoints", put)
            spent["put"] += (time.perf_counter() - started) * timed
            assert status == 201, body
            snapshot = json.loads(body)["snapshot_id"]
            started = time.perf_counter()
            status, body = call("POST", "/v1/checkpoints/writes", write)
            spent["put_writes"] += (time.perf_counter() - started) * timed
            assert status == 204, body
            started = time.perf_counter()
            status, body = call("GET", "/v1/checkpoints/tuple?thread_id=bench")
            spent["get"] += (time.perf_counter() - started) * timed
            assert status == 200, body
        return {name: round(total / steps * 1000, 3) for name, total in spent.items()}


def over_http(steps: int, warmup: int) -> dict[str, float]:
    """The same steps through ``kontex dev`` (SQLite) with the client, one after another."""
    from kontex_client import Kontex, SnapshotBase
    from tests.client.conftest import start_drained
    from tests.e2e.stack import create_key, stop_dev

    with tempfile.TemporaryDirectory() as scratch:
        stack = start_drained(Path(scratch) / "data", {})
        try:
            client = Kontex(stack.base, create_key(stack.data_dir, "bench"))
            spent = {"put": 0.0, "put_writes": 0.0, "get": 0.0}
            snapshot: str | None = None
            for step in range(warmup + steps):
                checkpoint, timed = f"{step:08}", step >= warmup
                started = time.perf_counter()
                made = client.checkpoints.put(
                    "bench",
                    checkpoint,
                    parent_id=f"{step - 1:08}" if step else None,
                    metadata={"step": step},
                    messages=[{"role": "user", "content": f"{step} {TEXT}"}],
                    base=SnapshotBase(snapshot) if snapshot else None,
                )
                spent["put"] += (time.perf_counter() - started) * timed
                snapshot = made.snapshot_id
                started = time.perf_counter()
                client.checkpoints.put_writes(
                    "bench", checkpoint, [{"task_id": "t", "idx": 0, "channel": "c", "value": 1}]
                )
                spent["put_writes"] += (time.perf_counter() - started) * timed
                started = time.perf_counter()
                client.checkpoints.get("bench")
                spent["get"] += (time.perf_counter() - started) * timed
            client.close()
        finally:
            stop_dev(stack)
    return {name: round(total / steps * 1000, 3) for name, total in spent.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--http", action="store_true", help="also over kontex dev (SQLite)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    report: dict[str, Any] = {"machine": machine(), "steps": args.steps, "warmup": args.warmup}
    for backend in backends:
        report[backend] = run(backend, args.steps, args.warmup)
    if args.http:
        backends.append("http")
        report["http"] = over_http(args.steps, args.warmup)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"Machine: {report['machine']}")
        print(f"{args.steps} steps after {args.warmup}: mean ms per request, handler in process")
        print("(http: the same through kontex dev on SQLite, client and all)")
        print(f"{'backend':<10} {'put':>8} {'put_writes':>11} {'get':>8}")
        for backend in backends:
            r = report[backend]
            print(f"{backend:<10} {r['put']:>8.2f} {r['put_writes']:>11.2f} {r['get']:>8.2f}")
    return report


if __name__ == "__main__":
    main()
