"""KontexSession (over HTTP to `kontex dev`) against the OpenAI Agents SDK's own SQLiteSession
(a file database): the wall time of a conversation's session traffic.

Each turn does what ``Runner.run`` does with a session: ``get_items()`` (the history, sent to
the model), then ``add_items()`` of the turn's user item and the model's assistant message
(an SDK-shaped ``message`` item with an ``output_text`` block, about 600 characters). Both sides
get exactly the same items. Each repeat starts a new conversation (a new session id; for
SQLiteSession a new database file, made before the clock starts), in a fresh event loop, with a
new session object, so Kontex's first turn includes making its session and task (a 2-turn
conversation on each side first, not reported, warms the server and the process). The sides
alternate (SQLite first on even repeats, Kontex first on odd ones) and the median of the
repeats is reported, with the Kontex / SQLite ratio and Kontex's HTTP requests per turn.

    python bench/agents_session.py [--turns 20 200] [--repeats 5] [--json]

Needs the client with its OpenAI Agents extra (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from agents import SQLiteSession  # noqa: E402
from storage_growth import machine  # noqa: E402

from kontex_client import AsyncKontex  # noqa: E402
from kontex_client.openai_agents import KontexSession  # noqa: E402
from tests.client.conftest import UNLIMITED, start_drained  # noqa: E402
from tests.e2e.stack import DevStack, create_key, stop_dev  # noqa: E402

ANSWER = (
    "The retry budget caps how many times a queue message is redelivered before it is parked: "
    "each failure spends one unit, a success refunds nothing, and the budget resets when the "
    "message is edited. Queue {turn} uses the default of five, so the sixth failure moves the "
    "message to the dead-letter queue, where an operator can inspect it, fix the cause and "
    "replay it; replays start with a fresh budget. Backoff between attempts doubles from one "
    "second, with jitter, and never exceeds five minutes. Turn {turn} of the conversation."
)


def turn_items(turn: int) -> list[Any]:
    """A user item and the assistant message item the SDK stores after it."""
    return [
        {"role": "user", "content": f"question {turn}: how does the retry budget work?"},
        {
            "id": f"msg_{turn:04d}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "text": ANSWER.format(turn=turn),
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        },
    ]


async def conversation(session: Any, turns: int) -> float:
    started = time.perf_counter()
    for turn in range(turns):
        history = await session.get_items()
        assert len(history) == 2 * turn
        await session.add_items(turn_items(turn))
    return time.perf_counter() - started


def sqlite_run(turns: int, scratch: Path, n: int) -> dict[str, Any]:
    session = SQLiteSession(f"bench-{n}", scratch / f"agents-{n}.db")  # the schema is made here
    try:
        seconds = asyncio.run(conversation(session, turns))
    finally:
        session.close()
    return {"seconds": seconds}


def kontex_run(turns: int, stack: DevStack, key: str, n: int) -> dict[str, Any]:
    requests = 0

    async def count(request: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    async def run() -> float:
        http = httpx.AsyncClient(timeout=30.0, event_hooks={"request": [count]})
        async with AsyncKontex(stack.base, key, http_client=http) as client:
            return await conversation(KontexSession(f"bench-{n}", client), turns)

    seconds = asyncio.run(run())
    return {"seconds": seconds, "requests": requests}


def compare(turns: int, repeats: int, stack: DevStack, key: str, scratch: Path) -> dict[str, Any]:
    sqlite: list[dict[str, Any]] = []
    kontex: list[dict[str, Any]] = []
    for n in range(repeats):
        name = n + 1000 * turns  # a new conversation each run
        for side in ("sqlite", "kontex") if n % 2 == 0 else ("kontex", "sqlite"):
            if side == "sqlite":
                sqlite.append(sqlite_run(turns, scratch, name))
            else:
                kontex.append(kontex_run(turns, stack, key, name))
    s = statistics.median(r["seconds"] for r in sqlite)
    k = statistics.median(r["seconds"] for r in kontex)
    return {
        "turns": turns,
        "repeats": repeats,
        "sqlite_session": {
            "seconds": round(s, 3),
            "runs": [round(r["seconds"], 3) for r in sqlite],
        },
        "kontex_session": {
            "seconds": round(k, 3),
            "runs": [round(r["seconds"], 3) for r in kontex],
            "requests_per_turn": round(kontex[0]["requests"] / turns, 2),
        },
        "ratio_kontex_over_sqlite": round(k / s, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        data = scratch / "kontex"
        key = create_key(data, "bench")  # migrates, makes the account
        stack = start_drained(data, UNLIMITED)
        try:
            kontex_run(2, stack, key, -1)  # warm-up, not reported: the server's first requests
            sqlite_run(2, scratch, -1)  # load what they use once per process
            runs = [compare(t, args.repeats, stack, key, scratch) for t in args.turns]
        finally:
            stop_dev(stack)
    result = {"machine": machine(), "runs": runs}
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(f"machine: {result['machine']}")
    print("each turn: get_items() + add_items([user, assistant]); median of repeats")
    header = ("turns", "SQLiteSession s", "KontexSession s", "ratio", "requests/turn")
    print(f"{header[0]:>6}{header[1]:>17}{header[2]:>17}{header[3]:>8}{header[4]:>15}")
    for run in runs:
        s, k = run["sqlite_session"], run["kontex_session"]
        print(
            f"{run['turns']:>6}{s['seconds']:>17.3f}{k['seconds']:>17.3f}"
            f"{run['ratio_kontex_over_sqlite']:>7}x{k['requests_per_turn']:>15}"
        )
    return result


if __name__ == "__main__":
    main()
