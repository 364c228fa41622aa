"""Live feed benchmark: from a REST write's answer to its event at the subscribers.

    python bench/live.py [--writes 100] [--subscribers 1 100] [--json]

Starts `kontex dev` (SQLite data dir), opens N WebSocket subscribers (the `websockets` client)
to one session, then makes snapshots over REST one at a time (a kept-alive HTTP connection) and
times, for each, when every subscriber got its `snapshot.created`. The path measured is the
whole local one: the API handler (in a worker process) commits the snapshot and its outbox row,
the relay publishes to the local topic (the durable queue file) before answering, the feed
worker in the server process is woken, reads the subscribers, records the deliveries and posts
to each socket.

Latency is from the moment the REST answer is read to the moment a subscriber reads the event;
it can be negative (the relay publishes before the handler answers, so the event may win the
race). "all" is over every (event, subscriber) pair, "last" is per event, its slowest
subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.stack import Http, create_key, start_dev, stop_dev  # noqa: E402

BUNDLE = {"messages": [{"role": "user", "content": "where is login handled?"}]}


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


class Writer:
    """Snapshots over one kept-alive HTTP connection."""

    def __init__(self, base: str, key: str, task_id: str) -> None:
        parsed = urlparse(base)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.key, self.path = key, f"/v1/tasks/{task_id}/snapshots"

    def write(self, n: int) -> tuple[float, str]:
        body = json.dumps({"label": f"step {n}", "bundle": BUNDLE})
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        self.conn.request("POST", self.path, body, headers)
        response = self.conn.getresponse()
        raw = response.read()
        answered = time.perf_counter()
        if response.status != 201:
            raise RuntimeError(f"snapshot write failed: {response.status} {raw[:200]!r}")
        return answered, json.loads(raw)["id"]


async def subscriber(
    url: str, key: str, session_id: str, arrivals: dict[str, list[float]], ready: asyncio.Event
) -> Any:
    ws = await websockets.connect(url, max_size=2**20)
    await ws.send(json.dumps({"authorization": key}))
    assert json.loads(await ws.recv())["success"]
    await ws.send(
        json.dumps({"id": "s", "action": "subscribe", "data": {"session_id": session_id}})
    )
    assert json.loads(await ws.recv())["success"]

    async def read() -> None:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "snapshot.created":
                arrivals.setdefault(message["data"]["snapshot_id"], []).append(now)
                if len(arrivals[message["data"]["snapshot_id"]]) == ready.n:  # type: ignore[attr-defined]
                    ready.set()

    return ws, asyncio.create_task(read())


async def measure(base: str, key: str, subscribers: int, writes: int) -> dict[str, Any]:
    api = Http(base, key)
    session = api("POST", "/v1/sessions", {"name": f"bench {subscribers}"})[1]
    task = api("POST", f"/v1/sessions/{session['id']}/tasks", {"name": "work"})[1]
    url = base.replace("http://", "ws://") + "/ws"
    arrivals: dict[str, list[float]] = {}
    done = asyncio.Event()
    done.n = subscribers  # type: ignore[attr-defined]
    clients = [
        await subscriber(url, key, session["id"], arrivals, done) for _ in range(subscribers)
    ]
    writer = Writer(base, key, task["id"])
    loop = asyncio.get_running_loop()
    every: list[float] = []
    last: list[float] = []
    for n in range(writes + 5):  # the first five warm the handler environments
        done.clear()
        answered, snapshot_id = await loop.run_in_executor(None, writer.write, n)
        await asyncio.wait_for(done.wait(), 30)
        if n < 5:
            continue
        delays = [(t - answered) * 1000 for t in arrivals[snapshot_id]]
        every.extend(delays)
        last.append(max(delays))
    for ws, reader in clients:
        reader.cancel()
        await ws.close()
    return {
        "subscribers": subscribers,
        "writes": writes,
        "all_p50_ms": round(pct(every, 50), 2),
        "all_p99_ms": round(pct(every, 99), 2),
        "last_p50_ms": round(pct(last, 50), 2),
        "last_p99_ms": round(pct(last, 99), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    limits = {"KONTEX_SNAPSHOT_WRITES_PER_HOUR": "1000000", "KONTEX_RATE_LIMIT_PER_HOUR": "1000000"}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        create_key(data, "bootstrap", env=limits)
        stack = start_dev(data, env=limits)
        try:
            key = create_key(data, "bench")
            rows = [asyncio.run(measure(stack.base, key, n, args.writes)) for n in args.subscribers]
        finally:
            stop_dev(stack)
    if args.json:
        print(json.dumps(rows))
        return 0
    print("| subscribers | writes | p50 ms (all) | p99 ms (all) | p50 ms (last) | p99 ms (last) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['subscribers']} | {r['writes']} | {r['all_p50_ms']} | {r['all_p99_ms']}"
            f" | {r['last_p50_ms']} | {r['last_p99_ms']} |"
        )
    print(f"\nload average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
