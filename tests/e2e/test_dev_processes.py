"""`kontex dev`'s processes (docs/design.md, "The local stack"): the server, one search
process holding the index, the model and the embed worker, and the pipeline processes: one
running the span and capture workers, the others (``KONTEX_DEV_SPAN_PROCESSES``: two here) the
span worker; the API's extra environments start only when a request needs one. None outlives
the server, however it stops."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
from kontex.local.pipeline_process import SPAN_NICE
from tests.e2e.stack import DevStack, Http, create_key, kill_dev, start_dev, stop_dev
from tests.e2e.test_crash import SPANS_PER_REQUEST as SPANS
from tests.e2e.test_crash import count_snapshots, llm_calls
from tests.otlp import spans as fixtures

pytestmark = pytest.mark.e2e
OFFLINE = {
    "VOYAGE_API_KEY": "",
    "QDRANT_URL": "",
    "KONTEX_VOYAGE_API_KEY_SECRET_ARN": "",
    "KONTEX_DEV_SPAN_PROCESSES": "2",  # whatever the machine's cores (the default's count)
}
NAMES = ["kontex-pipeline", "kontex-search", "kontex-spans-2"]
PIPELINES = ["kontex-pipeline", "kontex-spans-2"]


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


def name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def worker_processes(stack: DevStack) -> dict[str, int]:
    """The server's spawned children once it serves, by name (no API pool yet): exactly the
    search process and the two pipeline processes."""
    status, _ = stack.get("/health")
    assert status == 200
    # the server serves before its children have named themselves (a loaded machine may take
    # seconds): wait for every name, then exactly those
    deadline = time.monotonic() + 30
    while True:
        found = {name(child): child for child in spawned(stack.process.pid)}
        if sorted(found) == NAMES or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(found) == NAMES, found
    return found


def search_process(stack: DevStack) -> tuple[int, list[int]]:
    """The search process, and all the server's children."""
    return worker_processes(stack)["kontex-search"], children(stack.process.pid)


def test_the_worker_processes_start_and_stop_with_the_server(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", OFFLINE)
    try:
        _, every = search_process(stack)  # and the pipeline process, among `every`
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


def test_the_worker_processes_stop_when_the_servers_own_shutdown_fails(tmp_path: Path) -> None:
    """Its output gone (the terminal closed), the server's "stopping" line fails; it still
    stops the search and pipeline processes and exits (it waited for them forever before)."""
    stack = start_dev(tmp_path / "data", OFFLINE)
    try:
        children = list(worker_processes(stack).values())
        assert stack.process.stdout is not None
        stack.process.stdout.close()
        stack.process.send_signal(signal.SIGINT)
        stack.process.wait(timeout=60)
        assert gone(children)
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)


def post_spans(stack: DevStack, key: str, session_id: str) -> None:
    request = urllib.request.Request(
        f"{stack.base}/ingest/v1/traces",
        data=fixtures.protobuf(fixtures.record(llm_calls)),
        method="POST",
        headers={
            "Content-Type": "application/x-protobuf",
            "X-Kontex-Api-Key": key,
            "X-Kontex-Session-Id": session_id,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_the_span_worker_runs_in_the_pipeline_processes(tmp_path: Path) -> None:
    """Spans are accepted by the server and made snapshots by the pipeline processes: while
    they are stopped (SIGSTOP) the server still answers and queues them, and none becomes a
    snapshot until they run again."""
    data = tmp_path / "data"
    key = create_key(data, "pipeline", OFFLINE)
    stack = start_dev(data, OFFLINE)
    try:
        pipelines = [worker_processes(stack)[n] for n in PIPELINES]
        api = Http(stack.base, key)
        status, session = api("POST", "/v1/sessions", {"name": "pipeline"})
        assert status == 201, session
        for pid in pipelines:
            os.kill(pid, signal.SIGSTOP)
        try:
            post_spans(stack, key, session["id"])
            time.sleep(1.5)  # long enough for a span worker in the server to have made them
            assert count_snapshots(api, session["id"]) == 0
            status, health = api("GET", "/health?detail=true")
            assert status == 200
            assert health["pipelines"]["spans"]["depth"] == 1
        finally:
            for pid in pipelines:
                os.kill(pid, signal.SIGCONT)
        assert made(api, session["id"], SPANS)
    finally:
        out = stop_dev(stack)
    assert stack.process.returncode == 0, out


def made(api: Http, session_id: str, spans: int, timeout: float = 30) -> bool:
    """Whether the session holds ``spans`` snapshots within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while count_snapshots(api, session_id) < spans and time.monotonic() < deadline:
        time.sleep(0.2)
    return count_snapshots(api, session_id) == spans


def test_the_pipeline_processes_do_not_outlive_a_killed_server(tmp_path: Path) -> None:
    stack = start_dev(tmp_path / "data", OFFLINE)
    try:
        pipelines = [worker_processes(stack)[n] for n in PIPELINES]
        os.kill(stack.process.pid, signal.SIGKILL)  # the server alone, not its process group
        stack.process.communicate(timeout=15)
        assert gone(pipelines)
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)


def test_the_server_says_when_a_pipeline_process_is_gone(tmp_path: Path) -> None:
    """Killed on its own (the OOM killer, a crash), a pipeline process is reported on the
    server's output within a sweep or two, with what waits for it; the server goes on serving,
    and the span queue's other consumer goes on making snapshots."""
    data = tmp_path / "data"
    key = create_key(data, "gone", OFFLINE)
    stack = start_dev(data, OFFLINE)
    try:
        found = worker_processes(stack)
        os.kill(found["kontex-pipeline"], signal.SIGKILL)
        assert gone([found["kontex-pipeline"]])
        time.sleep(5)  # the sweeper checks every 2 s
        assert stack.get("/health")[0] == 200
        api = Http(stack.base, key)
        status, session = api("POST", "/v1/sessions", {"name": "gone"})
        assert status == 201, session
        post_spans(stack, key, session["id"])
        assert made(api, session["id"], SPANS)  # by kontex-spans-2
        os.kill(found["kontex-spans-2"], signal.SIGKILL)
        assert gone([found["kontex-spans-2"]])
        time.sleep(5)
        assert stack.get("/health")[0] == 200
    finally:
        out = stop_dev(stack)
    assert (
        "the pipeline process exited (status -9): captures wait in the queue until kontex dev"
        " restarts; spans go on in 1 other process" in out
    )
    assert (
        "the spans-2 process exited (status -9): spans and captures wait in the queue until"
        " kontex dev restarts" in out
    )
    assert out.count("process exited") == 2  # each said once
    assert stack.process.returncode == 0, out


def test_a_span_batch_left_in_flight_is_resumed_once_for_every_span_process(
    tmp_path: Path,
) -> None:
    """A batch a killed run's span process held (in flight for 300 s) is delivered again at
    the next start, at once: the server resumes the pipelines' queues before they consume
    (each process's own start leaves them alone, local/pipeline_process.py), says so on its
    output, and the spans become snapshots once."""
    data = tmp_path / "data"
    key = create_key(data, "resume", OFFLINE)
    stack = start_dev(data, OFFLINE)
    try:
        pipelines = [worker_processes(stack)[n] for n in PIPELINES]
        api = Http(stack.base, key)
        status, session = api("POST", "/v1/sessions", {"name": "resume"})
        assert status == 201, session
        for pid in pipelines:
            os.kill(pid, signal.SIGSTOP)  # queued, not consumed
        post_spans(stack, key, session["id"])
    finally:
        kill_dev(stack)  # the whole group, stopped ones included
    held = LocalQueue(data / QUEUE_FILE)  # the killed run's span process, which had claimed it
    try:
        assert len(held._claim("spans")) == 1
    finally:
        held.close()
    again = start_dev(data, OFFLINE)
    try:
        api = Http(again.base, key)
        assert made(api, session["id"], SPANS, timeout=60)  # not after the 300 s
        time.sleep(0.5)
        assert count_snapshots(api, session["id"]) == SPANS  # nothing twice either
    finally:
        out = stop_dev(again)
    assert "kontex dev: resuming 1 queued message(s) left by an earlier run" in out
    assert again.process.returncode == 0, out


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


def test_the_second_span_process_runs_at_a_lower_priority_than_the_server(tmp_path: Path) -> None:
    """The span queue's other consumers run SPAN_NICE steps nicer than the server (their
    threads with them), so ingest's requests get the cores first; the first pipeline process,
    which holds the capture worker too, keeps the server's priority."""
    stack = start_dev(tmp_path / "data", OFFLINE)
    try:
        found = worker_processes(stack)
        server = niceness(stack.process.pid)
        threads = [int(t.name) for t in Path(f"/proc/{found['kontex-spans-2']}/task").glob("*")]
        assert {niceness(t) for t in threads} == {min(server + SPAN_NICE, 19)}
        assert niceness(found["kontex-pipeline"]) == server
    finally:
        stop_dev(stack)
    assert stack.process.returncode == 0


def test_the_search_process_loads_its_model_without_waiting_for_a_first_embedding(
    tmp_path: Path,
) -> None:
    """The model loads behind the search process's ready answer, at its priority, so the first
    snapshot to embed or the first search does not load it (local/search_process.py, warm):
    kontex dev says so with no request made."""
    stack = start_dev(tmp_path / "data", OFFLINE)
    said = queue.Queue[str]()
    assert stack.process.stdout is not None
    threading.Thread(
        target=lambda: [said.put(line) for line in stack.process.stdout or ()], daemon=True
    ).start()
    try:
        deadline = time.monotonic() + 90
        seen: list[str] = []
        while not any("the embedding model loaded in" in line for line in seen):
            assert time.monotonic() < deadline, seen
            try:
                seen.append(said.get(timeout=1))
            except queue.Empty:
                continue
    finally:
        stack.process.send_signal(signal.SIGINT)
        stack.process.wait(timeout=45)
    assert stack.process.returncode == 0
    assert not any("did not load" in line for line in seen)
