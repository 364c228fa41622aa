"""`kontex dev`'s processes (docs/design.md, "The local stack"): the server, and one search
process holding the index, the model and the embed worker; the API's extra environments start
only when a request needs one. None outlives the server, however it stops."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.stack import DevStack, start_dev, stop_dev

pytestmark = pytest.mark.e2e
OFFLINE = {"VOYAGE_API_KEY": "", "QDRANT_URL": "", "KONTEX_VOYAGE_API_KEY_SECRET_ARN": ""}


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited (its parent has not reaped it yet)


def gone(pids: list[int], timeout: float = 45) -> bool:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(alive(p) for p in pids)


def spawned(pid: int) -> list[int]:
    """Its children that run Python code of ours (not multiprocessing's resource tracker)."""
    return [
        child
        for child in children(pid)
        if b"multiprocessing.spawn" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def search_process(stack: DevStack) -> tuple[int, list[int]]:
    """The server's one spawned child once it serves, the search process (no API pool yet),
    and all its children."""
    status, _ = stack.get("/health")
    assert status == 200
    [child] = spawned(stack.process.pid)
    return child, children(stack.process.pid)


def test_one_search_process_starts_and_stops_with_the_server(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", OFFLINE)
    try:
        _, every = search_process(stack)
    finally:
        out = stop_dev(stack)
    assert stack.process.returncode == 0, out
    assert "search embeddings by minilm-l6-int8" in out  # the banner asked the search process
    assert gone(every)


def test_the_search_process_does_not_outlive_a_killed_server(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", OFFLINE)
    try:
        child, _ = search_process(stack)
        os.kill(stack.process.pid, signal.SIGKILL)  # the server alone, not its process group
        stack.process.communicate(timeout=15)
        assert gone([child])
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)


def test_the_search_process_stops_when_the_servers_own_shutdown_fails(tmp_path: Path) -> None:
    """Its output gone (the terminal closed), the server's "stopping" line fails; it still
    stops the search process and exits (it waited for it forever before)."""
    stack = start_dev(tmp_path / "data", OFFLINE)
    try:
        child, _ = search_process(stack)
        assert stack.process.stdout is not None
        stack.process.stdout.close()
        stack.process.send_signal(signal.SIGINT)
        stack.process.wait(timeout=60)
        assert gone([child])
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


@pytest.mark.parametrize("nice", ["5", "0"])
def test_the_search_process_runs_at_a_lower_priority_than_the_server(
    tmp_path: Path, nice: str
) -> None:
    """KONTEX_DEV_SEARCH_NICE steps nicer than the server (the model's threads with it): on full
    cores the span path comes first; 0 keeps the server's priority."""
    port = int(os.environ.get("KONTEX_TEST_PORT", "0")) or None
    stack = start_dev(tmp_path / "data", {**OFFLINE, "KONTEX_DEV_SEARCH_NICE": nice}, port)
    try:
        child, _ = search_process(stack)
        server = niceness(stack.process.pid)
        threads = [int(t.name) for t in Path(f"/proc/{child}/task").glob("*")]
        assert {niceness(t) for t in threads} == {min(server + int(nice), 19)}
    finally:
        stop_dev(stack)
    assert stack.process.returncode == 0
