"""A real LangGraph agent checkpointed by KontexSaver (over `kontex dev`) and by LangGraph's own
SqliteSaver: stored bytes after the same run.

The agent is the ReAct-style graph of the client tests (tests/client/react_agent.py): a
scripted chat model asks for a ``lookup`` tool (about 1.5 KB of text per answer) and answers
from it. Each user turn takes 5 super-steps (input, agent, tools, agent, and the turn's first
checkpoint), so ``--turns 20`` writes 100 checkpoints on one thread. Both savers get exactly
the same run.

Measured for each: the database after the run, copied with ``VACUUM INTO`` (so free pages and
the WAL do not count), minus the same copy of the empty database (Kontex: migrated, one key;
SqliteSaver: its tables). For Kontex also the sum of the snapshots' own ``stored_bytes``
(the content each snapshot stored first), and the wall time of the run on each side.

    python bench/langgraph_saver.py [--turns 20] [--json]

Needs the client with its LangGraph extra and ``langgraph-checkpoint-sqlite`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from storage_growth import machine  # noqa: E402

from kontex_client import Kontex  # noqa: E402
from kontex_client.langgraph import KontexSaver  # noqa: E402
from tests.client.conftest import UNLIMITED, start_drained  # noqa: E402
from tests.client.react_agent import ask, build  # noqa: E402
from tests.e2e.stack import create_key, stop_dev  # noqa: E402


def vacuumed_size(database: Path, scratch: Path) -> int:
    """Bytes of a compact copy of the database (``VACUUM INTO``)."""
    copy = scratch / f"{database.name}.{time.monotonic_ns()}.vacuumed"
    with sqlite3.connect(database) as connection:
        connection.execute("VACUUM INTO ?", (str(copy),))
    size = copy.stat().st_size
    copy.unlink()
    return size


def run(graph: Any, turns: int) -> tuple[float, int]:
    config = {"configurable": {"thread_id": "bench"}}
    started = time.perf_counter()
    for turn in range(turns):
        graph.invoke(
            ask(f"question {turn}: how does the retry budget work for queue {turn}"), config
        )
    elapsed = time.perf_counter() - started
    return elapsed, len(list(graph.get_state_history(config)))


def kontex_side(turns: int, scratch: Path) -> dict[str, Any]:
    data = scratch / "kontex"
    key = create_key(data, "bench")  # migrates, makes the account
    stack = start_drained(data, UNLIMITED)
    try:
        base = vacuumed_size(data / "kontex.db", scratch)
        elapsed, checkpoints = run(build(KontexSaver(base_url=stack.base, api_key=key)), turns)
        with Kontex(stack.base, key) as client:
            session = next(client.sessions.iter())
            stored = sum(e.stored_bytes for e in client.sessions.timeline(session.id))
    finally:
        stop_dev(stack)
    return {
        "checkpoints": checkpoints,
        "seconds": round(elapsed, 2),
        "database_bytes": vacuumed_size(data / "kontex.db", scratch) - base,
        "snapshot_stored_bytes": stored,
    }


def sqlite_side(turns: int, scratch: Path) -> dict[str, Any]:
    path = scratch / "langgraph.db"
    connection = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(connection)
    saver.setup()
    connection.commit()
    base = vacuumed_size(path, scratch)
    elapsed, checkpoints = run(build(saver), turns)
    connection.commit()
    connection.close()
    return {
        "checkpoints": checkpoints,
        "seconds": round(elapsed, 2),
        "database_bytes": vacuumed_size(path, scratch) - base,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        result = {
            "turns": args.turns,
            "machine": machine(),
            "sqlite_saver": sqlite_side(args.turns, scratch),
            "kontex_saver": kontex_side(args.turns, scratch),
        }
    k, s = result["kontex_saver"], result["sqlite_saver"]
    result["ratio_sqlite_over_kontex"] = round(s["database_bytes"] / k["database_bytes"], 2)
    if args.json:
        print(json.dumps(result, indent=2))
        return result
    print(f"machine: {result['machine']}")
    print(f"{args.turns} turns of the ReAct agent, one thread")
    header = ("saver", "checkpoints", "database bytes", "per checkpoint", "seconds")
    print(f"{header[0]:<14}{header[1]:>12}{header[2]:>16}{header[3]:>16}{header[4]:>9}")
    for name, side in (("SqliteSaver", s), ("KontexSaver", k)):
        per = side["database_bytes"] // max(1, side["checkpoints"])
        print(
            f"{name:<14}{side['checkpoints']:>12}{side['database_bytes']:>16,}{per:>16,}"
            f"{side['seconds']:>9}"
        )
    print(f"KontexSaver snapshots' stored_bytes: {k['snapshot_stored_bytes']:,}")
    print(f"SqliteSaver / KontexSaver database bytes: {result['ratio_sqlite_over_kontex']}x")
    return result


if __name__ == "__main__":
    main()
