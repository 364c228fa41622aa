"""Proxy benchmark: latency the proxy adds over calling the upstream directly.

    python bench/proxy.py [--calls 200] [--json]

Starts the fake Messages API from the tests (zero delay: it answers at once, with
TCP_NODELAY) and `kontex dev` pointed at it, then times the real `anthropic` SDK calling each
directly and through the proxy, JSON and streamed, with 1 and 8 concurrent clients, and the
requests per second of each. Captures are on (the default trigger `always`), so the figure
includes queuing the capture; the snapshot itself is written by the worker off the request
path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.stack import create_key, start_dev, stop_dev  # noqa: E402
from tests.proxy.fake_anthropic import FakeAnthropic  # noqa: E402

MESSAGES = [{"role": "user", "content": "what is the weather in Paris?"}]


def timed(client: anthropic.Anthropic, stream: bool) -> float:
    started = time.perf_counter()
    if stream:
        with client.messages.stream(model="claude-fake", max_tokens=50, messages=MESSAGES) as s:
            for _ in s.text_stream:
                pass
    else:
        client.messages.create(model="claude-fake", max_tokens=50, messages=MESSAGES)
    return (time.perf_counter() - started) * 1000


def measure(make: Any, stream: bool, clients: int, calls: int) -> tuple[list[float], float]:
    """Each call's latency (ms) and the calls per second of the whole run."""
    pool = [make() for _ in range(clients)]
    for client in pool:  # warm connections and handler environments
        timed(client, stream)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as executor:
        times = list(executor.map(lambda i: timed(pool[i % clients], stream), range(calls)))
    return times, calls / (time.perf_counter() - started)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def run(calls: int) -> list[dict[str, Any]]:
    rows = []
    with FakeAnthropic().running() as upstream, tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        key = create_key(data, "bench")
        stack = start_dev(
            data, env={"ANTHROPIC_API_URL": upstream.url, "KONTEX_RATE_LIMIT_PER_HOUR": "1000000"}
        )
        base = stack.base
        try:
            session = anthropic.Anthropic(api_key="x", base_url=base).post(
                "/v1/sessions",
                cast_to=object,
                body={"name": "bench"},
                options={"headers": {"Authorization": f"Bearer {key}"}},
            )
            headers = {
                "X-Kontex-Api-Key": key,
                "X-Kontex-Session-Id": session["id"],
                "X-Kontex-Snapshot-Trigger": "always",
            }

            def direct() -> anthropic.Anthropic:
                return anthropic.Anthropic(api_key="sk", base_url=upstream.url, max_retries=0)

            def proxied() -> anthropic.Anthropic:
                return anthropic.Anthropic(
                    api_key="sk", base_url=f"{base}/proxy", max_retries=0, default_headers=headers
                )

            for stream in (False, True):
                for clients in (1, 8):
                    straight, direct_rps = measure(direct, stream, clients, calls)
                    via, proxy_rps = measure(proxied, stream, clients, calls)
                    rows.append(
                        {
                            "mode": "stream" if stream else "json",
                            "clients": clients,
                            "calls": calls,
                            "direct_p50_ms": round(statistics.median(straight), 2),
                            "proxy_p50_ms": round(statistics.median(via), 2),
                            "added_p50_ms": round(
                                statistics.median(via) - statistics.median(straight), 2
                            ),
                            "added_p99_ms": round(pct(via, 99) - pct(straight, 99), 2),
                            "direct_rps": round(direct_rps, 1),
                            "proxy_rps": round(proxy_rps, 1),
                        }
                    )
        finally:
            stop_dev(stack)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.calls)
    if args.json:
        print(json.dumps(rows))
        return rows
    print(
        "| mode | clients | direct p50 ms | proxy p50 ms | added p50 ms | added p99 ms"
        " | direct req/s | proxy req/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['clients']} | {r['direct_p50_ms']} | {r['proxy_p50_ms']} |"
            f" {r['added_p50_ms']} | {r['added_p99_ms']} | {r['direct_rps']} |"
            f" {r['proxy_rps']} |"
        )
    return rows


if __name__ == "__main__":
    main()
