"""Proxy benchmark: latency the proxy adds over calling the upstream directly, Anthropic and
OpenAI side by side in one run.

    python bench/proxy.py [--calls 200] [--json]

Starts the fake Messages API and the fake OpenAI API from the tests (zero delay: they answer at
once, with TCP_NODELAY) and `kontex dev` pointed at both, then times the real `anthropic` and
`openai` SDKs calling each fake directly and through the proxy, JSON and streamed, with 1 and 8
concurrent clients: the median and p99 of each call, the time to the first token of a stream
(the first text delta the SDK yields), the requests per second of each run, and the CPU time
`kontex dev` (its whole process group: the proxy, the capture worker writing the snapshots)
spent per proxied call. Captures are on (trigger `always`), so every proxied call also queues
a capture, and the capture worker writes snapshots while the calls run. The load average is
printed before and after: on a shared machine the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.stack import create_key, start_dev, stop_dev  # noqa: E402
from tests.proxy.fake_anthropic import FakeAnthropic  # noqa: E402
from tests.proxy.fake_openai import FakeOpenAI  # noqa: E402

ANTHROPIC_MESSAGES = [{"role": "user", "content": "what is the weather in Paris?"}]
OPENAI_MESSAGES = [{"role": "user", "content": "tell me about Paris"}]
TICKS = os.sysconf("SC_CLK_TCK")


def call_anthropic(client: Any, stream: bool) -> tuple[float, float | None]:
    """(ms to the whole answer, ms to the first token or None)."""
    started = time.perf_counter()
    first = None
    if stream:
        with client.messages.stream(
            model="claude-fake", max_tokens=50, messages=ANTHROPIC_MESSAGES
        ) as s:
            for _ in s.text_stream:
                first = first or time.perf_counter()
    else:
        client.messages.create(model="claude-fake", max_tokens=50, messages=ANTHROPIC_MESSAGES)
    ended = time.perf_counter()
    return (ended - started) * 1000, (first - started) * 1000 if first else None


def call_openai(client: Any, stream: bool) -> tuple[float, float | None]:
    started = time.perf_counter()
    first = None
    if stream:
        for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=OPENAI_MESSAGES, stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.perf_counter()
    else:
        client.chat.completions.create(model="gpt-4o-mini", messages=OPENAI_MESSAGES)
    ended = time.perf_counter()
    return (ended - started) * 1000, (first - started) * 1000 if first else None


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process in the group (kontex dev runs in its own)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # field 5: process group
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / TICKS


def measure(
    make: Callable[[], Any], call: Callable[[Any, bool], Any], stream: bool, clients: int, n: int
) -> tuple[list[float], list[float], float]:
    """Each call's latency and first-token time (ms), and the calls per second of the run."""
    pool = [make() for _ in range(clients)]
    for client in pool:  # warm connections
        for _ in range(3):
            call(client, stream)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as executor:
        results = list(executor.map(lambda i: call(pool[i % clients], stream), range(n)))
    rps = n / (time.perf_counter() - started)
    return [r[0] for r in results], [r[1] for r in results if r[1] is not None], rps


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def run(calls: int) -> list[dict[str, Any]]:
    rows = []
    with (
        FakeAnthropic().running() as claude,
        FakeOpenAI().running() as gpt,
        tempfile.TemporaryDirectory() as tmp,
    ):
        data = Path(tmp) / "data"
        key = create_key(data, "bench")
        stack = start_dev(
            data,
            env={
                "ANTHROPIC_API_URL": claude.url,
                "OPENAI_API_URL": gpt.url,
                "KONTEX_RATE_LIMIT_PER_HOUR": "1000000",
            },
        )
        base = stack.base
        pgid = os.getpgid(stack.process.pid)
        # its access log (a line per call) must be read, or a full pipe stops the server
        output = stack.process.stdout
        assert output is not None
        threading.Thread(target=lambda: [None for _ in output], daemon=True).start()
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
            apis: dict[str, tuple[Callable[[], Any], Callable[[], Any], Any]] = {
                "anthropic": (
                    lambda: anthropic.Anthropic(api_key="sk", base_url=claude.url, max_retries=0),
                    lambda: anthropic.Anthropic(
                        api_key="sk",
                        base_url=f"{base}/proxy",
                        max_retries=0,
                        default_headers=headers,
                    ),
                    call_anthropic,
                ),
                "openai": (
                    lambda: openai.OpenAI(api_key="sk", base_url=f"{gpt.url}/v1", max_retries=0),
                    lambda: openai.OpenAI(
                        api_key="sk",
                        base_url=f"{base}/proxy/openai/v1",
                        max_retries=0,
                        default_headers=headers,
                    ),
                    call_openai,
                ),
            }
            for api, (direct, proxied, call) in apis.items():
                for stream in (False, True):
                    for clients in (1, 8):
                        straight, straight_first, direct_rps = measure(
                            direct, call, stream, clients, calls
                        )
                        cpu = group_cpu_seconds(pgid)
                        via, via_first, proxy_rps = measure(proxied, call, stream, clients, calls)
                        cpu = group_cpu_seconds(pgid) - cpu
                        row = {
                            "api": api,
                            "mode": "stream" if stream else "json",
                            "clients": clients,
                            "calls": calls,
                            "direct_p50_ms": round(statistics.median(straight), 2),
                            "added_p50_ms": round(
                                statistics.median(via) - statistics.median(straight), 2
                            ),
                            "added_p99_ms": round(pct(via, 99) - pct(straight, 99), 2),
                            "direct_ttft_ms": None,
                            "added_ttft_ms": None,
                            "direct_rps": round(direct_rps, 1),
                            "proxy_rps": round(proxy_rps, 1),
                            # the warm-up calls are in the CPU figure too: counted per call
                            "server_cpu_ms_per_call": round(cpu * 1000 / (calls + 3 * clients), 2),
                        }
                        if stream:
                            row["direct_ttft_ms"] = round(statistics.median(straight_first), 2)
                            row["added_ttft_ms"] = round(
                                statistics.median(via_first) - statistics.median(straight_first),
                                2,
                            )
                        rows.append(row)
        finally:
            stop_dev(stack)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    before = os.getloadavg()
    rows = run(args.calls)
    after = os.getloadavg()
    if args.json:
        print(json.dumps({"load_before": before, "load_after": after, "rows": rows}))
        return rows
    print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, ", end="")
    print(f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}; {os.cpu_count()} CPUs")
    print(
        "| api | mode | clients | direct p50 ms | added p50 ms | added p99 ms | direct TTFT ms"
        " | added TTFT ms | direct req/s | proxy req/s | server CPU ms/call |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['api']} | {r['mode']} | {r['clients']} | {r['direct_p50_ms']} |"
            f" {r['added_p50_ms']} | {r['added_p99_ms']} | {r['direct_ttft_ms'] or '-'} |"
            f" {r['added_ttft_ms'] if r['added_ttft_ms'] is not None else '-'} |"
            f" {r['direct_rps']} | {r['proxy_rps']} | {r['server_cpu_ms_per_call']} |"
        )
    return rows


if __name__ == "__main__":
    main()
