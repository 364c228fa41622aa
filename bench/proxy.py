"""Proxy benchmark: the latency a proxy adds over calling the upstream directly, Kontex and
LiteLLM side by side in one run, Anthropic's API and OpenAI's.

    python bench/proxy.py [--calls 200] [--server dev|alone|both] [--no-litellm] [--json]
                          [--port-base 19400] [--profile OUT.svg] [--clients 1 8]
                          [--fakes async|threads|in-bench] [--load raw|sdk]

Starts the fake Messages API and the fake OpenAI API (zero delay: they answer at once),
`kontex dev` pointed at both and LiteLLM's proxy (`litellm --config`, the version
`bench/peers.py` pins, in its own cached venv) pointed at the same fakes, then calls each fake
directly, through Kontex and through LiteLLM, JSON and streamed, with 1 and 8 concurrent
clients: the median and p99 of each call, the time to the first token of a stream (the first
text delta), the requests per second of each run, and the CPU time the serving processes, the
clients and the fakes spent per call.

The clients. One client is the real `anthropic` or `openai` SDK in this process (the added
latency and time to first token an SDK user sees). Several clients (``--load raw``, the
default) are ``bench/load.py`` in a process of its own: that many keep-alive connections on
one event loop, each sending the exact bytes the SDK sends for the call (recorded from the SDK,
``sdk_request``) one call after another, answers parsed by httptools, about 0.01-0.2 ms of CPU
a call; so at 8 clients the servers are measured, not 8 SDK clients sharing this process's
interpreter lock, which bounded every system near a thousand calls a second. ``--load sdk``:
the SDK clients as threads of this process, as the earlier sections measured. Every system
(direct, Kontex, LiteLLM) gets the same clients and the same fakes.

The fakes (``--fakes``): ``async`` (the default) is ``bench/upstream.py``, one event loop in
a process of its own answering as the tests' fakes (tests/proxy) do, each answer made once;
``threads``: the tests' ``http.server`` fakes (a thread per connection) in a process of their
own; ``in-bench``: those as threads of this process (``--fakes-in-bench``, as before).

Kontex is served two ways (``--server``): ``dev`` is `kontex dev` (the proxy app mounted in
the local stack, whose process also runs the capture and search workers); ``alone`` is the
proxy app alone on uvicorn as it runs on AWS behind the Lambda Web Adapter
(``functions/proxy/server.py``), queueing its captures into a queue file of its own in the
`kontex dev` data dir (``alone-queue.db``) that nothing consumes during the run: as on AWS, the
capture worker does not run on the proxy's cores. Nothing is stopped for that (an earlier
version stopped `kontex dev`'s process group with SIGSTOP during those rows, and hung once when
a stopped process held the queue file's writer lock). ``--alone-workers``: the alone proxy
queues into `kontex dev`'s own queue, whose workers write the snapshots beside the rows.
Captures are on (trigger ``always``):
every call through Kontex queues a capture. "server CPU" is the user + system time of the
serving process group per call: for ``dev`` the whole stack (the proxy and the workers
writing and indexing the snapshots), for ``alone`` the proxy's process only.

LiteLLM runs as a default user runs it (no database, no logging callbacks, one process):
Anthropic through its pass-through route (``/anthropic``, what forwards a Messages call
unchanged) and through its own ``/v1/messages``, OpenAI through ``/v1/chat/completions`` to an
``openai/`` model at the fake's URL.

The load average is printed before and after: on a shared machine the figures are upper
bounds. ``--profile OUT.svg`` records the Kontex server with py-spy (``--subprocesses``) while
the Kontex rows run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.peers import LITELLM, group_cpu_seconds, venv  # noqa: E402
from kontex.adapters.local_queue import QUEUE_FILE  # noqa: E402
from tests.proxy.fake_anthropic import FakeAnthropic  # noqa: E402
from tests.proxy.fake_openai import FakeOpenAI  # noqa: E402

ANTHROPIC_MESSAGES = [{"role": "user", "content": "what is the weather in Paris?"}]
OPENAI_MESSAGES = [{"role": "user", "content": "tell me about Paris"}]
WARM_CALLS = 3  # per client, before each timed run
Target = tuple[str, str, list[int] | None, dict[str, str]]  # name, URL, process groups, headers


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


def measure(
    make: Callable[..., Any], call: Callable[[Any, bool], Any], stream: bool, clients: int, n: int
) -> tuple[list[float], list[float], float]:
    """Each call's latency and first-token time (ms), and the calls per second of the run: the
    SDK's ``clients`` as threads of this process."""
    pool = [make() for _ in range(clients)]
    for client in pool:  # warm connections
        for _ in range(WARM_CALLS):
            call(client, stream)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as executor:
        results = list(executor.map(lambda i: call(pool[i % clients], stream), range(n)))
    rps = n / (time.perf_counter() - started)
    return [r[0] for r in results], [r[1] for r in results if r[1] is not None], rps


class _Recorded(Exception):
    pass


def sdk_request(make: Callable[..., Any], call: Callable[[Any, bool], Any], stream: bool) -> bytes:
    """The bytes of the HTTP/1.1 request the SDK client ``make(http_client=...)`` sends for
    ``call``: recorded by a transport that answers nothing (the SDK then raises, caught)."""
    import httpx2  # what the anthropic and openai SDKs are built on

    recorded: list[Any] = []

    def record(request: Any) -> Any:
        recorded.append(request)
        raise _Recorded

    with (
        httpx2.Client(transport=httpx2.MockTransport(record)) as http,
        suppress(Exception),  # the SDK's connection error, from _Recorded
    ):
        call(make(http_client=http), stream)
    (request,) = recorded
    lines = [f"{request.method} {request.url.raw_path.decode('latin-1')} HTTP/1.1"]
    lines += [f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in request.headers.raw]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.read()


# what the load generator takes for a stream's first token (the first text delta, as the SDK
# rows time it) and for its last event; LiteLLM re-serializes OpenAI's chunks (no spaces)
FIRST = {"anthropic": r'"text_delta"', "openai": r'"content":\s*"[^"]'}
COMPLETE = {"anthropic": "message_stop", "openai": "[DONE]"}


def measure_load(
    api: str, url: str, request: bytes, stream: bool, clients: int, n: int
) -> tuple[list[float], list[float], float, float]:
    """As ``measure``, by ``bench/load.py`` in a process of its own: ``clients`` keep-alive
    connections on one event loop sending the SDK's request bytes; and the CPU seconds that
    process spent on the timed calls."""
    host, port = url.removeprefix("http://").split(":")
    spec = {
        "host": host,
        "port": int(port),
        "request": request.decode("latin-1"),
        "connections": clients,
        "calls": n,
        "warm": WARM_CALLS,
        "first": FIRST[api] if stream else None,
        "complete": COMPLETE[api] if stream else None,
    }
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "load.py")],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"bench/load.py failed:\n{done.stderr}")
    result = json.loads(done.stdout)
    return result["latencies_ms"], result["first_ms"], result["rps"], result["client_cpu_s"]


def settle(pgids: list[int], seconds: float = 60.0, window: float = 0.25) -> None:
    """Wait until the servers are idle (under a twentieth of a core over ``window``): the
    captures of the rows before (written by `kontex dev`'s workers) would otherwise share the
    cores with the next row, whichever system it measures."""
    deadline = time.monotonic() + seconds
    last = group_cpu_seconds(pgids, unniced=True)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = group_cpu_seconds(pgids, unniced=True)
        if now - last < window / 20:
            return
        last = now


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


# -- the servers ---------------------------------------------------------------------------


class Server:
    """A server process in its own process group, its output drained (a full pipe stops it)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], url: str) -> None:
        self.name, self.url = name, url
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
            start_new_session=True,
        )
        self.tail: list[str] = []
        output = self.process.stdout
        assert output is not None
        threading.Thread(target=self._drain, args=(output,), daemon=True).start()

    def _drain(self, output: Any) -> None:
        for line in output:
            self.tail = [*self.tail[-40:], line]

    @property
    def pgid(self) -> int:
        return os.getpgid(self.process.pid)

    def wait(self, path: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{''.join(self.tail)}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start in {seconds} s:\n{''.join(self.tail)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.pgid, signal.SIGINT)
            try:
                self.process.wait(45)
            except subprocess.TimeoutExpired:
                os.killpg(self.pgid, signal.SIGKILL)
                self.process.wait(10)


@contextmanager
def serving(
    name: str, argv: list[str], env: dict[str, str], url: str, health: str
) -> Iterator[Server]:
    server = Server(name, argv, env, url)
    try:
        server.wait(health)
        yield server
    finally:
        server.stop()


def kontex_dev(data: Path, port: int, env: dict[str, str]) -> Any:
    argv = [sys.executable, "-m", "kontex.cli", "dev", "--port", str(port), "--data-dir", str(data)]
    return serving("kontex dev", argv, env, f"http://127.0.0.1:{port}", "/health")


ALONE_QUEUE_FILE = "alone-queue.db"  # the alone proxy's captures: consumed by no one


def kontex_alone(data: Path, port: int, env: dict[str, str], shared_queue: bool = False) -> Any:
    """functions/proxy/server.py (uvicorn, as the Lambda Web Adapter runs it), its captures
    queued into a queue file nothing consumes (``ALONE_QUEUE_FILE``: on AWS the capture worker
    is not on the proxy's cores), or, ``shared_queue``, into the data dir's own queue file, from
    which `kontex dev`'s workers take them."""
    queue = QUEUE_FILE if shared_queue else ALONE_QUEUE_FILE
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-alone", str(data), queue]
    env = {**env, "PORT": str(port), "KONTEX_DATA_DIR": str(data)}
    return serving("kontex proxy alone", argv, env, f"http://127.0.0.1:{port}", "/health")


def serve_alone(data: Path, queue_file: str = QUEUE_FILE) -> None:
    """The proxy function's server with a local queue in place of SQS (this process only)."""
    from kontex import bootstrap
    from kontex.adapters.local_queue import LocalQueue
    from kontex.settings import Settings

    made = bootstrap.Container(Settings.from_env(kontex_data_dir=data))
    made.queue = LocalQueue(data / queue_file)  # type: ignore[misc]
    bootstrap.configure(made)
    sys.path.insert(0, str(ROOT / "functions" / "proxy"))
    import server  # type: ignore[import-not-found]  # functions/proxy/server.py

    server.main()


LITELLM_KEY = f"sk-{secrets.token_hex(32)}"  # its master key, the clients' key to it
LITELLM_CONFIG = """model_list:
  - model_name: claude-fake
    litellm_params: {{model: anthropic/claude-fake, api_base: "{claude}", api_key: sk}}
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{gpt}/v1", api_key: sk}}
"""


def litellm(folder: Path, port: int, claude: str, gpt: str) -> Any:
    config = folder / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(claude=claude, gpt=gpt))
    home = venv("litellm", LITELLM)
    # the CLI through the venv's python (a venv cached by an older peers.venv, built elsewhere
    # and renamed, has a `litellm` script whose #! line names a folder that is gone)
    cli = "from litellm.proxy.proxy_cli import run_server; run_server()"
    argv = [str(home / "bin" / "python"), "-c", cli, "--config", str(config), "--port", str(port)]
    argv += ["--host", "127.0.0.1"]
    env = {
        "LITELLM_MASTER_KEY": LITELLM_KEY,  # it refuses to start without one
        "ANTHROPIC_API_BASE": claude,  # the /anthropic pass-through's upstream
        "ANTHROPIC_API_KEY": "sk",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: no fetch of the price map at start
    }
    return serving("litellm", argv, env, f"http://127.0.0.1:{port}", "/health/liveliness")


class _Discard(list):  # type: ignore[type-arg]
    """A fake's record of requests that keeps none (a long run would keep every one)."""

    def append(self, item: Any) -> None:
        pass


def serve_fakes(claude_port: int, gpt_port: int) -> None:
    """Both fakes in this process, until it is killed (``fakes``)."""
    claude, gpt = FakeAnthropic(claude_port), FakeOpenAI(gpt_port)
    claude.requests = gpt.requests = _Discard()  # type: ignore[assignment]
    threading.Thread(target=claude.server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    gpt.server.serve_forever()


@dataclass
class Fakes:
    claude: str  # the URL of the fake Messages API
    gpt: str  # of the fake OpenAI API
    pgid: int | None  # their process group, when in a process of their own


FAKES = ("async", "threads", "in-bench")


@contextmanager
def fakes(port_base: int, kind: str = "async") -> Iterator[Fakes]:
    """The fake Anthropic and OpenAI APIs. ``async`` (the default): ``bench/upstream.py``, one
    event loop in a process of its own answering as the tests' fakes do, a few microseconds a
    call. ``threads``: the tests' ``http.server`` fakes, a thread per connection, in a process of
    their own (as "The proxy hop, second round" measured). ``in-bench``: those as threads of
    this process, sharing its interpreter lock with the SDK clients (as the sections before
    it measured)."""
    if kind == "in-bench":
        with (
            FakeAnthropic(port_base).running() as claude,
            FakeOpenAI(port_base + 1).running() as gpt,
        ):
            yield Fakes(claude.url, gpt.url, None)
        return
    here = Path(__file__).resolve()
    argv = [sys.executable, str(here.parent / "upstream.py"), str(port_base)]
    if kind == "threads":
        argv = [sys.executable, str(here), "--serve-fakes", str(port_base)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the fake upstreams did not start")
        claude, gpt = (f"http://127.0.0.1:{port_base + n}" for n in (0, 1))
        yield Fakes(claude, gpt, process.pid)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# -- the run -------------------------------------------------------------------------------


def make_key(data: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "kontex.cli", "keys", "create", "--label", "bench", "--json"]
        + ["--data-dir", str(data)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    ).stdout
    return str(json.loads(out)["key"])


@contextmanager
def profiling(pid: int, out: str) -> Iterator[None]:
    """py-spy on a server and its child processes while the rows run: a flame graph (.svg),
    or collapsed stacks (any other name: ``--format raw``, one stack and its count a line)."""
    spy = Path(sys.executable).parent / "py-spy"
    shape = [] if out.endswith(".svg") else ["--format", "raw"]
    recorder = subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--subprocesses", "--threads", "--nonblocking"]
        + ["-r", "100"]
        + [*shape, "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)


def row_of(
    api: str,
    mode: str,
    clients: int,
    system: str,
    direct: tuple[list[float], list[float], float],
    timed: tuple[list[float], list[float], float],
    cpu_seconds: float | None,
    calls: int,
) -> dict[str, Any]:
    (straight, straight_first, _), (via, via_first, rps) = direct, timed
    row: dict[str, Any] = {
        "api": api,
        "mode": mode,
        "clients": clients,
        "system": system,
        "calls": calls,
        "p50_ms": round(statistics.median(via), 2),
        "added_p50_ms": round(statistics.median(via) - statistics.median(straight), 2),
        "added_p99_ms": round(pct(via, 99) - pct(straight, 99), 2),
        "ttft_ms": round(statistics.median(via_first), 2) if via_first else None,
        "added_ttft_ms": None,
        "rps": round(rps, 1),
        # the warm-up calls are in the CPU figure too: counted per call
        "server_cpu_ms_per_call": None
        if cpu_seconds is None
        else round(cpu_seconds * 1000 / (calls + WARM_CALLS * clients), 2),
    }
    if system == "direct":
        row["added_p50_ms"] = row["added_p99_ms"] = None
    elif via_first and straight_first:
        row["added_ttft_ms"] = round(
            statistics.median(via_first) - statistics.median(straight_first), 2
        )
    return row


def run(
    calls: int,
    servers: list[str],
    with_litellm: bool,
    port_base: int,
    profile: str | None,
    baseline: str | None = None,
    fake_kind: str = "async",
    load: str = "raw",
    counts: tuple[int, ...] = (1, 8),
    load_calls: int | None = None,
    alone_workers: bool = False,
) -> list[dict[str, Any]]:
    """Every row; ``baseline`` (another source tree's ``layers/core``) runs its Kontex beside
    this one's ("kontex ... (base)"), on the same fakes, in the same run."""
    env = {"KONTEX_RATE_LIMIT_PER_HOUR": "1000000", "POWERTOOLS_METRICS_DISABLED": "true"}
    with (
        fakes(port_base, fake_kind) as fake,
        tempfile.TemporaryDirectory(prefix="kontex-bench-proxy-") as tmp,
        ExitStack() as stack,
    ):
        env.update(ANTHROPIC_API_URL=fake.claude, OPENAI_API_URL=fake.gpt)
        targets: list[Target] = []
        quiet: list[int] = [fake.pgid] if fake.pgid else []  # idle before each row
        profiled: list[tuple[str, int]] = []
        sources = [("", None)] + ([(" (base)", baseline)] if baseline else [])
        for index, (suffix, source) in enumerate(sources):
            data = Path(tmp) / f"data{index}"
            extra = {**env, **({"PYTHONPATH": source} if source else {})}
            key = make_key(data, extra)
            dev = stack.enter_context(kontex_dev(data, port_base + 2 + 2 * index, extra))
            quiet.append(dev.pgid)  # its workers write the captures of both ways of serving
            session: Any = anthropic.Anthropic(api_key="x", base_url=dev.url).post(
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
            if "dev" in servers:
                targets.append((f"kontex dev{suffix}", dev.url, [dev.pgid], headers))
                profiled.append((f"dev{suffix.strip(' ()')}", dev.process.pid))
            if "alone" in servers:
                port = port_base + 3 + 2 * index
                alone = stack.enter_context(kontex_alone(data, port, extra, alone_workers))
                targets.append((f"kontex alone{suffix}", alone.url, [alone.pgid], headers))
                profiled.append((f"alone{suffix.strip(' ()')}", alone.process.pid))
        if with_litellm:
            lite = stack.enter_context(litellm(Path(tmp), port_base + 9, fake.claude, fake.gpt))
            targets.append(("litellm", lite.url, [lite.pgid], {}))
        if profile:
            for name, pid in profiled:
                stack.enter_context(profiling(pid, profile.replace(".", f"-{name}.", 1)))
        quiet += [pgid for *_, pgids, _ in targets for pgid in pgids or [] if pgid not in quiet]
        return _rows(
            calls,
            fake.claude,
            fake.gpt,
            targets,
            fake.pgid,
            load,
            counts,
            load_calls,
            quiet,
        )


def _clients(api: str, system: str, url: str, headers: dict[str, str]) -> Callable[..., Any]:
    """A maker of the SDK client calling ``system`` (keyword arguments: the client's own)."""
    key = LITELLM_KEY if system.startswith("litellm") else "sk"  # LiteLLM's own key, as users do
    if api == "anthropic":
        base = {"direct": url, "litellm": f"{url}/anthropic", "litellm /v1/messages": url}.get(
            system, f"{url}/proxy"
        )
        return lambda **extra: anthropic.Anthropic(
            api_key=key, base_url=base, max_retries=0, default_headers=headers, **extra
        )
    base = f"{url}/v1" if system in ("direct", "litellm") else f"{url}/proxy/openai/v1"
    return lambda **extra: openai.OpenAI(
        api_key=key, base_url=base, max_retries=0, default_headers=headers, **extra
    )


def _rows(
    calls: int,
    claude: str,
    gpt: str,
    targets: list[Target],
    fake_pgid: int | None = None,
    load: str = "raw",
    counts: tuple[int, ...] = (1, 8),
    load_calls: int | None = None,
    quiet: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Each system's rows: one client by the SDK; more by ``bench/load.py`` (``load`` "raw",
    ``load_calls`` calls) sending the SDK's request bytes, or by as many SDK clients as threads
    here ("sdk"). Each row starts once the process groups ``quiet`` are idle."""
    rows = []
    for api, upstream, call in (
        ("anthropic", claude, call_anthropic),
        ("openai", gpt, call_openai),
    ):
        systems = [("direct", upstream, None, {}), *targets]
        if api == "anthropic":
            systems += [(f"{n} /v1/messages", u, p, h) for n, u, p, h in targets if n == "litellm"]
        for stream in (False, True):
            mode = "stream" if stream else "json"
            for clients in counts:
                direct = None
                for system, url, pgids, headers in systems:
                    make = _clients(api, system, url, headers)
                    raw = clients > 1 and load == "raw"
                    request = sdk_request(make, call, stream) if raw else b""
                    n = (load_calls or calls) if raw else calls
                    settle(quiet or [])
                    before = group_cpu_seconds(pgids) if pgids else 0.0
                    fake_before = group_cpu_seconds([fake_pgid]) if fake_pgid else 0.0
                    if raw:
                        *got, client_cpu = measure_load(api, url, request, stream, clients, n)
                        latencies, firsts, rps = got
                    else:  # the SDK here: its CPU is this process's (warm-up calls too)
                        client_before = time.process_time()
                        latencies, firsts, rps = measure(make, call, stream, clients, n)
                        client_cpu = time.process_time() - client_before
                    cpu = group_cpu_seconds(pgids) - before if pgids else None
                    fake_cpu = group_cpu_seconds([fake_pgid]) - fake_before if fake_pgid else None
                    timed = (latencies, firsts, rps)
                    direct = direct or timed
                    row = row_of(api, mode, clients, system, direct, timed, cpu, n)
                    row["load"] = "bench/load.py" if raw else "SDK threads"
                    row["client_cpu_ms_per_call"] = round(client_cpu * 1000 / n, 2)
                    row["fake_cpu_ms_per_call"] = (
                        None if fake_cpu is None else round(fake_cpu * 1000 / n, 2)
                    )
                    rows.append(row)
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # progress
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--server", choices=("dev", "alone", "both"), default="both")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--port-base", type=int, default=19400, help="ten ports from here")
    parser.add_argument(
        "--profile", help="py-spy of each Kontex server: OUT-dev.svg, OUT-alone.svg (or .txt)"
    )
    parser.add_argument(
        "--baseline", help="another checkout's layers/core: its Kontex measured beside this one"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--fakes",
        choices=FAKES,
        default="async",
        help="the fake upstreams: bench/upstream.py (async, default), the tests' http.server"
        " fakes in a process of their own (threads) or as threads of the bench (in-bench)",
    )
    parser.add_argument(
        "--fakes-in-bench", action="store_true", help="the same as --fakes in-bench"
    )
    parser.add_argument(
        "--load",
        choices=("raw", "sdk"),
        default="raw",
        help="the clients of the rows with several: bench/load.py sending the SDK's request"
        " bytes (raw, default) or the SDK clients as threads of the bench (sdk, as before)",
    )
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[1, 8], help="client counts (default 1 8)"
    )
    parser.add_argument(
        "--alone-workers",
        action="store_true",
        help="the alone proxy queues its captures for kontex dev's workers, which write them"
        " beside its rows (by default into a queue of its own that nothing consumes, as on AWS"
        " the capture worker does not run on the proxy's cores)",
    )
    parser.add_argument(
        "--load-calls",
        type=int,
        help="calls of each row run by bench/load.py (default: 10 x --calls; at a thousand"
        " calls a second, 200 would last a fifth of a second)",
    )
    parser.add_argument("--serve-alone", nargs=2, help=argparse.SUPPRESS)  # DATA QUEUE_FILE
    parser.add_argument("--serve-fakes", type=int, help=argparse.SUPPRESS)  # the fakes' process
    args = parser.parse_args(argv)
    if args.serve_fakes:
        serve_fakes(args.serve_fakes, args.serve_fakes + 1)
        return []
    if args.serve_alone:
        serve_alone(Path(args.serve_alone[0]), args.serve_alone[1])
        return []
    servers = ["dev", "alone"] if args.server == "both" else [args.server]
    before = os.getloadavg()
    rows = run(
        args.calls,
        servers,
        not args.no_litellm,
        args.port_base,
        args.profile,
        args.baseline,
        "in-bench" if args.fakes_in_bench else args.fakes,
        args.load,
        tuple(args.clients),
        args.load_calls or 10 * args.calls,
        args.alone_workers,
    )
    after = os.getloadavg()
    if args.json:
        print(json.dumps({"load_before": before, "load_after": after, "rows": rows}))
        return rows
    print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, ", end="")
    print(f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}; {os.cpu_count()} CPUs")
    print(
        "| api | mode | clients | system | p50 ms | added p50 ms | added p99 ms | TTFT ms"
        " | added TTFT ms | req/s | server CPU ms/call | client CPU ms/call | fake CPU ms/call |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    for r in rows:
        print(
            f"| {r['api']} | {r['mode']} | {r['clients']} | {r['system']} | {r['p50_ms']} |"
            f" {cell(r['added_p50_ms'])} | {cell(r['added_p99_ms'])} | {cell(r['ttft_ms'])} |"
            f" {cell(r['added_ttft_ms'])} | {r['rps']} | {cell(r['server_cpu_ms_per_call'])} |"
            f" {r['client_cpu_ms_per_call']} | {cell(r['fake_cpu_ms_per_call'])} |"
        )
    return rows


if __name__ == "__main__":
    main()
