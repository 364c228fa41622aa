"""Ingest benchmark: OTLP spans per second from request to queryable snapshot, on the local stack.

    python bench/ingest.py [--spans 5000] [--batch 100] [--span-kb 5] [--json]

Starts `kontex dev` (SQLite, local folder, in-process queue) in a temporary data dir, records
OpenLLMetry-style LLM spans (indexed gen_ai.prompt.* attributes, about --span-kb KB each) with
the OpenTelemetry SDK, encodes them with the exporter's own protobuf encoder, posts them in
batches, and waits until every span is a snapshot visible through GET /v1/usage.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.stack import create_key, start_dev, stop_dev  # noqa: E402

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


def batches(total: int, batch: int, span_kb: int) -> list[bytes]:
    rng = random.Random(7)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    bodies = []
    for start in range(0, total, batch):
        exporter.clear()
        for i in range(start, min(start + batch, total)):
            with tracer.start_as_current_span(
                "anthropic.chat",
                attributes={
                    "llm.request.type": "chat",
                    "gen_ai.request.model": "claude-sonnet-4-5",
                    "traceloop.association.properties.session_id": f"bench-{i % 10}",
                    "gen_ai.prompt.0.role": "system",
                    "gen_ai.prompt.0.content": "You are a coding agent.",
                    "gen_ai.prompt.1.role": "user",
                    "gen_ai.prompt.1.content": text(rng, span_kb * 1024 - 600),
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.content": text(rng, 400),
                    "gen_ai.usage.input_tokens": 1200,
                    "gen_ai.usage.output_tokens": 90,
                },
            ):
                pass
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


def run(total: int, batch: int, span_kb: int) -> dict[str, Any]:
    bodies = batches(total, batch, span_kb)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        key = create_key(data, "bench")
        stack = start_dev(data, env={"KONTEX_RATE_LIMIT_PER_HOUR": "1000000"})
        base = stack.base
        try:
            latencies = []
            started = time.perf_counter()
            for body in bodies:
                t = time.perf_counter()
                status, _ = request(base + "/ingest/v1/traces", key, body)
                latencies.append((time.perf_counter() - t) * 1000)
                assert status == 200
            posted = time.perf_counter()
            while True:
                usage = json.loads(request(base + "/v1/usage", key)[1])
                if usage["total_snapshots"] >= total:
                    break
                time.sleep(0.2)
            done = time.perf_counter()
        finally:
            stop_dev(stack)
    cut = statistics.quantiles(latencies, n=100)
    return {
        "spans": total,
        "batch": batch,
        "span_bytes": len(bodies[0]) // batch,
        "requests": len(bodies),
        "post_seconds": round(posted - started, 2),
        "total_seconds": round(done - started, 2),
        "spans_per_second": round(total / (done - started), 1),
        "request_p50_ms": round(statistics.median(latencies), 1),
        "request_p99_ms": round(cut[98], 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--span-kb", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.spans, args.batch, args.span_kb)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['spans']} spans of ~{result['span_bytes']} B in {result['requests']}"
            f" protobuf requests of {result['batch']}"
        )
        print(
            f"  all requests answered in {result['post_seconds']} s;"
            f" request latency p50 {result['request_p50_ms']} ms,"
            f" p99 {result['request_p99_ms']} ms"
        )
        print(
            f"  every span a queryable snapshot after {result['total_seconds']} s:"
            f" {result['spans_per_second']} spans/s end to end"
        )
    return result


if __name__ == "__main__":
    main()
