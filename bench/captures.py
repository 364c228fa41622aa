"""Captures at proxy speed (issue 23): how fast proxied calls become stored snapshots, and the
server CPU each captured call costs, side by side with LiteLLM's proxy in the same run.

    python bench/captures.py [--calls 500] [--clients 8] [--turns 10] [--no-litellm]
                             [--profile out.txt] [--json] [--port 19300]

The fake Messages API from the tests (zero delay) runs in a process of its own. A fresh
`kontex dev` (SQLite in a temporary data dir, embedding on, as it runs by default) proxies to
it; ``--clients`` threads, each with the official `anthropic` SDK and a session of its own,
run agent-like conversations (a system prompt, then each turn the reply and a new user
message appended, ``--turns`` turns before a new conversation) at full speed, every call
captured (`X-Kontex-Snapshot-Trigger: always`). Reported:

- proxied calls/s (first call to last answer);
- captures/s sustained: calls / (first call to the last snapshot stored, `GET /v1/usage`);
- the drain: from the last answer to the last snapshot stored, and to every pipeline empty
  (capture, feed, embed: `GET /health?detail=true`);
- server CPU per captured call: user + system time of `kontex dev`'s whole process group
  (/proc), from the first call until every pipeline is empty (the capture worker, the live
  feed and the search indexing of each snapshot included);
- memory: PSS of its process tree after the run (bench/peers.py).

Then the same traffic through LiteLLM's proxy (`litellm --config`, its own venv from
bench/peers.py, no database, logging as installed), its `/v1/messages` route pointed at the
same fake: calls/s, CPU per call of its process group, memory. LiteLLM stores nothing, so its
CPU is the whole of what it spends per call. The load average is printed before and after.

Ports: ``--port`` and the next three (kontex dev, the fake, LiteLLM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402

from tests.e2e.stack import create_key, start_dev, stop_dev  # noqa: E402

SYSTEM = (
    "You are a careful coding agent. Read the task, plan, call tools when you need facts, "
    "and answer briefly. " * 8
)


def serve_fake(port: int) -> None:
    """The fake Messages API on ``port``, in this process, until killed."""
    from http.server import ThreadingHTTPServer

    from tests.proxy.fake_anthropic import FakeAnthropic

    fake = FakeAnthropic()
    handler = fake.server.RequestHandlerClass
    fake.server.server_close()
    fake.requests = _Discard()  # type: ignore[assignment]  # it would keep every request
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


class _Discard(list):  # type: ignore[type-arg]
    def append(self, item: Any) -> None:
        pass


def start_fake(port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-fake", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the fake upstream did not start")
    return process


def drain_output(process: subprocess.Popen[Any]) -> None:
    """Read a server's output on a thread: a full pipe would stop it."""
    output = process.stdout
    if output is not None:
        threading.Thread(target=lambda: [None for _ in output], daemon=True).start()


def conversation_call(client: Any, history: list[dict[str, Any]], turn: int) -> None:
    """One turn of an agent's conversation: the next user message, the reply appended."""
    history.append(
        {"role": "user", "content": f"step {turn}: check the weather in city {turn} and report"}
    )
    reply = client.messages.create(
        model="claude-fake", max_tokens=256, system=SYSTEM, messages=history
    )
    text = "".join(b.text for b in reply.content if b.type == "text")
    history.append({"role": "assistant", "content": text})


def drive(clients: list[Any], calls: int, turns: int) -> tuple[float, float]:
    """``calls`` conversation turns over the clients, each client its own conversations;
    (time of the first call, time of the last answer) on the perf counter."""
    per_client = [calls // len(clients) + (i < calls % len(clients)) for i in range(len(clients))]

    def run(i: int) -> None:
        history: list[dict[str, Any]] = []
        for n in range(per_client[i]):
            if n % turns == 0:
                history = []
            conversation_call(clients[i], history, n % turns)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as executor:
        list(executor.map(run, range(len(clients))))
    return started, time.perf_counter()


def http_json(url: str, key: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def stored(base: str, key: str) -> int:
    return int(http_json(f"{base}/v1/usage", key)["total_snapshots"])


def pipelines_empty(base: str, key: str) -> bool:
    report = http_json(f"{base}/health?detail=true", key)
    return all(p["depth"] == 0 for p in report["pipelines"].values())


def wait_for(check: Any, timeout: float = 600.0, every: float = 0.05) -> float:
    """Poll ``check`` until true; the perf-counter time it first was."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for the pipelines")
        time.sleep(every)
    return time.perf_counter()


def py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling kontex dev and its worker processes, collapsed stacks (busy only)."""
    spy = str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    return subprocess.Popen([*command, "--rate", "100", "--nonblocking", "--output", str(out)])


TRIGGERS = {  # --trigger: what each proxied call costs, by how much of the capture runs
    "always": {"X-Kontex-Snapshot-Trigger": "always"},  # every call a stored snapshot
    # every call queued and read by the capture worker, which writes nothing
    "never": {"X-Kontex-Snapshot-Trigger": "token_threshold", "X-Kontex-Snapshot-N": "999999999"},
    "off": None,  # no session named: nothing queued (the proxy alone)
}


def run_kontex(
    calls: int,
    clients: int,
    turns: int,
    port: int,
    fake_url: str,
    profile: Path | None,
    trigger: str = "always",
    baseline: Path | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="captures-") as tmp:
        data = Path(tmp) / "data"
        key = create_key(data, "bench")
        stack = start_dev(
            data,
            env={
                "ANTHROPIC_API_URL": fake_url,
                "KONTEX_RATE_LIMIT_PER_HOUR": "10000000",
                # another tree's code (its layers/core first on the path, its functions/)
                **({"PYTHONPATH": str(baseline / "layers" / "core")} if baseline else {}),
            },
            port=port,
        )
        drain_output(stack.process)
        base = stack.base
        pgid = os.getpgid(stack.process.pid)
        spy = None
        try:
            pool = []
            for i in range(clients):
                session = http_json(f"{base}/v1/sessions", key, {"name": f"agent {i}"})
                captured = TRIGGERS[trigger]
                headers = {"X-Kontex-Api-Key": key}
                if captured is not None:
                    headers.update({"X-Kontex-Session-Id": session["id"], **captured})
                pool.append(
                    anthropic.Anthropic(
                        api_key="sk",
                        base_url=f"{base}/proxy",
                        max_retries=0,
                        default_headers=headers,
                    )
                )
            # warm: connections, the API's processes, the model; then everything drained
            expected = calls if trigger == "always" else 0
            drive(pool, 2 * clients, turns)
            wait_for(
                lambda: (
                    stored(base, key) >= (2 * clients if expected else 0)
                    and pipelines_empty(base, key)
                )
            )
            before = stored(base, key)
            if profile is not None:
                spy = py_spy(stack.process.pid, profile)
                time.sleep(1)
            cpu = peers.group_cpu_seconds([pgid])
            started, answered = drive(pool, calls, turns)
            last_stored = wait_for(lambda: stored(base, key) >= before + expected)
            empty = wait_for(lambda: pipelines_empty(base, key), every=0.2)
            cpu = peers.group_cpu_seconds([pgid]) - cpu
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=120)
            memory = peers.tree_pss_mb(stack.process.pid)
            processes = peers.tree_processes(stack.process.pid)
            total = stored(base, key) - before
        finally:
            if spy is not None and spy.poll() is None:
                spy.kill()
            stop_dev(stack)
    return {
        "system": f"kontex dev (SQLite), capture {trigger}"
        + (f", code of {baseline}" if baseline else ""),
        "calls": calls,
        "snapshots": total,
        "calls_per_s": round(calls / (answered - started), 1),
        "captures_per_s": round(expected / (last_stored - started), 1) if expected else "-",
        "drain_s": round(last_stored - answered, 2),
        "pipelines_empty_after_s": round(empty - answered, 2),
        "cpu_ms_per_call": round(cpu * 1000 / calls, 2),
        "memory_pss_mb": memory,
        "processes": processes,
    }


LITELLM_CONFIG = """\
model_list:
  - model_name: claude-fake
    litellm_params:
      model: anthropic/claude-fake
      api_base: {fake}
      api_key: sk-fake
general_settings:
  master_key: {master}
"""


MASTER_KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # it refuses to start without one


def run_litellm(calls: int, clients: int, turns: int, port: int, fake_url: str) -> dict[str, Any]:
    folder = peers.venv("litellm", peers.LITELLM)
    with tempfile.TemporaryDirectory(prefix="captures-litellm-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(LITELLM_CONFIG.format(fake=fake_url, master=MASTER_KEY))
        # its python, not its `litellm` script (a venv cached by an older peers.venv has scripts
        # naming the folder it was built in)
        process = subprocess.Popen(
            [
                str(folder / "bin" / "python"),
                "-c",
                "import sys; from litellm.proxy.proxy_cli import run_server;"
                " sys.exit(run_server())",
                "--config",
                str(config),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp,
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            start_new_session=True,
        )
        drain_output(process)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/health/liveliness", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("LiteLLM did not start") from None
                    time.sleep(0.3)
            pool = [
                anthropic.Anthropic(api_key=MASTER_KEY, base_url=base, max_retries=0)
                for _ in range(clients)
            ]
            drive(pool, 2 * clients, turns)
            time.sleep(1)
            cpu = peers.group_cpu_seconds([process.pid])
            started, answered = drive(pool, calls, turns)
            time.sleep(1)  # anything it does after answering (its callbacks) is counted
            cpu = peers.group_cpu_seconds([process.pid]) - cpu
            memory = peers.tree_pss_mb(process.pid)
            processes = peers.tree_processes(process.pid)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
    return {
        "system": "LiteLLM proxy",
        "calls": calls,
        "calls_per_s": round(calls / (answered - started), 1),
        "cpu_ms_per_call": round(cpu * 1000 / calls, 2),
        "memory_pss_mb": memory,
        "processes": processes,
    }


def capacity(
    calls: int, clients: int, turns: int, profile: Path | None, size: int = 10
) -> dict[str, Any]:
    """The capture worker alone, in this process: the same conversations as jobs, handed to
    `functions/workers/capture.py` in queue batches of ``size`` on a fresh SQLite data dir (the
    events go to a local queue file nobody reads): captures/s it can write, and its CPU per
    capture (this process's user + system time)."""
    from kontex import bootstrap
    from kontex.adapters.local_queue import LocalQueue, sqs_record
    from kontex.functions import worker_paths
    from kontex.http.apigw import LocalContext
    from kontex.local.server import load_worker
    from kontex.services import capture, keys, sessions
    from kontex.settings import Settings
    from tests.proxy.fake_anthropic import reply_for

    with tempfile.TemporaryDirectory(prefix="captures-capacity-") as tmp:
        settings = Settings(kontex_data_dir=Path(tmp))
        made = bootstrap.Container(settings)
        made._events = made.local_topic(LocalQueue(Path(tmp) / "queue.db"))
        made.migrate()
        bootstrap.configure(made)
        deps = made.deps
        worker = load_worker(worker_paths()["capture"]).lambda_handler
        account = keys.create_key(deps, "bench")[0].account_id
        jobs: list[list[str]] = [[] for _ in range(clients)]
        for i in range(clients):
            session = sessions.create_session(deps, account, f"agent {i}")
            history: list[dict[str, Any]] = []
            for n in range(calls // clients):
                if n % turns == 0:
                    history = []
                history.append({"role": "user", "content": f"step {n % turns}: city {n}"})
                request = {"model": "claude-fake", "system": SYSTEM, "messages": list(history)}
                reply = reply_for(request)
                job = capture.CaptureJob(
                    f"c{i}-{n}", account, session.id, None, "always", 1, request, reply, 5.0
                )
                jobs[i].append(job.to_json())
                text = "".join(b["text"] for b in reply["content"] if b["type"] == "text")
                history.append({"role": "assistant", "content": text})
        # interleaved as the clients' calls arrive, in queue batches
        bodies = [b for row in zip(*jobs, strict=False) for b in row]
        batches = [bodies[i : i + size] for i in range(0, len(bodies), size)]
        # the first batch loads what a worker loads once (the token encoding): not timed
        for b, batch in enumerate(batches[:1]):
            records = [sqs_record("capture", f"w{b}-{i}", body, 1) for i, body in enumerate(batch)]
            worker({"Records": records}, LocalContext(function_name="capture"))
        batches = batches[1:]
        bodies = bodies[size:]
        spy = py_spy(os.getpid(), profile) if profile is not None else None
        if spy is not None:
            time.sleep(1)
        cpu, started = time.process_time(), time.perf_counter()
        for b, batch in enumerate(batches):
            records = [sqs_record("capture", f"m{b}-{i}", body, 1) for i, body in enumerate(batch)]
            answer = worker({"Records": records}, LocalContext(function_name="capture"))
            assert answer == {"batchItemFailures": []}, answer
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=120)
        bootstrap.configure(None)
    return {
        "captures": len(bodies),
        "captures_per_s": round(len(bodies) / elapsed, 1),
        "cpu_ms_per_capture": round(cpu * 1000 / len(bodies), 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
    parser.add_argument("--port", type=int, default=19300, help="this and the next three")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--profile", type=Path, help="py-spy raw output of kontex dev")
    parser.add_argument(
        "--trigger",
        choices=list(TRIGGERS),
        action="append",
        help="always (default): every call captured; never: queued, nothing written;"
        " off: nothing queued. Repeat to run several, one fresh kontex dev each",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        help="also run kontex dev from this source tree first (e.g. `git archive main`)",
    )
    parser.add_argument(
        "--capacity", action="store_true", help="the capture worker alone, in process"
    )
    parser.add_argument("--batch", type=int, default=10, help="--capacity: records a batch")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-fake", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return {}
    if args.capacity:
        before = os.getloadavg()
        found = capacity(args.calls, args.clients, args.turns, args.profile, args.batch)
        found.update(load_before=before, load_after=os.getloadavg())
        print(json.dumps(found))
        return found
    load_before = os.getloadavg()
    fake = start_fake(args.port + 1)
    fake_url = f"http://127.0.0.1:{args.port + 1}"
    try:
        rows = [
            run_kontex(
                args.calls, args.clients, args.turns, args.port, fake_url, None, "always", tree
            )
            for tree in args.baseline or []
        ]
        rows += [
            run_kontex(
                args.calls, args.clients, args.turns, args.port, fake_url, args.profile, trigger
            )
            for trigger in args.trigger or ["always"]
        ]
        if not args.no_litellm:
            rows.append(run_litellm(args.calls, args.clients, args.turns, args.port + 2, fake_url))
    finally:
        os.killpg(fake.pid, signal.SIGTERM)
        fake.wait(timeout=10)
    result = {"load_before": load_before, "load_after": os.getloadavg(), "rows": rows}
    if args.json:
        print(json.dumps(result))
        return result
    b, a = result["load_before"], result["load_after"]
    print(
        f"load average before {b[0]:.2f} {b[1]:.2f} {b[2]:.2f}, after {a[0]:.2f} {a[1]:.2f}"
        f" {a[2]:.2f}; {os.cpu_count()} CPUs; {args.calls} calls, {args.clients} clients,"
        f" {args.turns} turns a conversation"
    )
    print(
        "| system | calls/s | captures/s sustained | drain after last answer s"
        " | pipelines empty after s | server CPU ms/call | PSS MB (processes) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['system']} | {r['calls_per_s']} | {r.get('captures_per_s', '-')} |"
            f" {r.get('drain_s', '-')} | {r.get('pipelines_empty_after_s', '-')} |"
            f" {r['cpu_ms_per_call']} | {r['memory_pss_mb']} ({r['processes']}) |"
        )
    return result


if __name__ == "__main__":
    main()
