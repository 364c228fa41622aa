"""A LangGraph ReAct agent checkpointed by KontexSaver and by LangGraph's own savers: time per
invocation, HTTP requests per invocation, ``get_state_history``.

The agent is a StateGraph of the prebuilt ReAct pieces (``ToolNode``, ``tools_condition``) over
a scripted chat model (no network) that calls the ``lookup`` tool of the client tests (about
1.5 KB of text per answer) TWICE, then answers. One invocation is 7 checkpoints (input, agent,
tools, agent, tools, agent, plus the loop's first), so 50 invocations on one thread write 350.

Savers, per ``--backend``:

- sqlite: ``KontexSaver`` over HTTP to ``kontex dev`` on SQLite (its data dir), against
  LangGraph's ``SqliteSaver`` on a file database (its own pragmas: WAL, SQLite's default
  ``synchronous``, FULL; Kontex runs WAL with ``synchronous=NORMAL``);
- postgres: ``KontexSaver`` over HTTP to ``kontex dev`` with ``KONTEX_DATABASE_URL`` in a fresh
  schema, against ``PostgresSaver`` in another fresh schema of the same server (both dropped
  at the end). The server is ``KONTEX_BENCH_DATABASE_URL`` (default
  ``postgresql://postgres@127.0.0.1:5432/test``);
- async (with sqlite): ``ainvoke`` with the savers' async methods: ``AsyncKontexSaver`` when the
  client has one (over ``AsyncKontex``), else ``KontexSaver``'s own ``a*`` methods (given the
  counted ``AsyncKontex`` as ``async_client`` when its constructor takes one), against
  ``AsyncSqliteSaver``.

``--legacy-saver`` runs the Kontex side with the saver as it was before the checkpoint API
(tests/client/legacy_saver.py, same interface): the "before" numbers on a newer tree.

Two workloads: ``--invocations`` invocations on one thread, and as many each on a new thread.
Reported per saver and workload: wall clock, the median time of invocations 1-5 and of the
last 5 (and last/first: a saver whose cost grows with the thread shows it here), HTTP requests
per invocation (KontexSaver: counted by an httpx event hook on the client's HTTP clients, every
response including retried ones), ``get_state_history`` over the one thread at the end (its
count, time and requests), and Kontex / peer (> 1: Kontex slower). Each saver first runs one
untimed warm-up invocation on a thread of its own.

Kontex runs with its DEFAULT hourly limits (every ``KONTEX_*_PER_HOUR`` setting at its value in
``kontex.settings.Settings``, passed explicitly), because an agent must not see a 429 on default
settings; each measured run has a key of its own (the untimed warm-up invocation uses another
key). A 429 is reported as a finding (the invocation, the request and the server's message); the
workload is then run again on a stack with raised limits so it still has numbers, and its output
says so. Any other error of the server is reported as that run's failure.

    python bench/langgraph_agent.py [--invocations 50] [--backend sqlite|postgres|all]
                                    [--no-async] [--legacy-saver] [--json] [--save FILE]

Uses only the public ``KontexSaver`` / ``AsyncKontexSaver`` and ``Kontex`` / ``AsyncKontex``
interfaces. Needs the ``bench`` extra and the client's LangGraph extra (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import inspect
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from langchain_core.callbacks import CallbackManagerForLLMRun  # noqa: E402
from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import (  # noqa: E402
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode, tools_condition  # noqa: E402
from storage_growth import Unavailable, _pg_schema, machine, pg_url  # noqa: E402

import kontex_client.langgraph as kontex_langgraph  # noqa: E402
from kontex.settings import Settings  # noqa: E402
from kontex_client import AsyncKontex, Kontex  # noqa: E402
from kontex_client._errors import KontexError, RateLimitError  # noqa: E402
from tests.client.conftest import start_drained  # noqa: E402
from tests.client.react_agent import lookup  # noqa: E402
from tests.e2e.stack import DevStack, create_key, stop_dev  # noqa: E402

BACKENDS = ("sqlite", "postgres")
WORKLOADS = ("one_thread", "new_threads")
TOOL_CALLS = 2
# The server's hourly limits at their defaults, passed explicitly so an environment that raised
# them does not count; "raised" sets each to 10 million.
LIMITS = sorted(name for name in Settings.model_fields if name.endswith("_per_hour"))
DEFAULT_LIMITS = {name.upper(): str(Settings.model_fields[name].default) for name in LIMITS}
RAISED_LIMITS = {name.upper(): "10000000" for name in LIMITS}


# -- the agent ---------------------------------------------------------------------------------


class TwoToolModel(BaseChatModel):
    """Calls ``lookup`` twice after a user message (a second query after the first result),
    then answers from the results."""

    @property
    def _llm_type(self) -> str:
        return "scripted-two-tools"

    def bind_tools(self, tools: Any, **kwargs: Any) -> TwoToolModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        asked = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
        question = str(messages[asked].content)
        results = [m for m in messages[asked:] if isinstance(m, ToolMessage)]
        if len(results) >= TOOL_CALLS:
            notes = " / ".join(str(r.content)[:150] for r in results)
            reply = AIMessage(content=f"From the notes: {notes}")
        else:
            n = len(results) + 1
            reply = AIMessage(
                content="",
                tool_calls=[
                    {
                        "name": "lookup",
                        "args": {"query": f"{question[:70]} (part {n})"},
                        "id": f"call_{n}_{hashlib.sha256(question.encode()).hexdigest()[:12]}",
                    }
                ],
            )
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build(checkpointer: Any) -> Any:
    model = TwoToolModel().bind_tools([lookup])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    from langchain_core.runnables import RunnableLambda

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(agent, afunc=aagent))
    graph.add_node("tools", ToolNode([lookup]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def question(i: int) -> dict[str, Any]:
    text = f"question {i}: how does the retry budget work for queue {i}"
    return {"messages": [HumanMessage(content=text)]}


def config_for(workload: str, i: int) -> dict[str, Any]:
    thread = "bench" if workload == "one_thread" else f"bench-{i}"
    return {"configurable": {"thread_id": thread}}


def check_answer(result: dict[str, Any], workload: str, i: int) -> None:
    messages = result["messages"]
    expected = 2 + 2 * TOOL_CALLS  # question, 2 x (call, result), answer
    if workload == "one_thread":
        expected *= i + 1
    last = messages[-1]
    if len(messages) != expected or not str(last.content).startswith("From the notes"):
        raise AssertionError(f"invocation {i + 1}: {len(messages)} messages, last {last!r}")


# -- counting HTTP -----------------------------------------------------------------------------


@dataclass
class Requests:
    """Every response the Kontex client's HTTP client receives (retries included)."""

    count: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    invocation: int = 0  # set by the runner: the invocation under way (0: setup, history)
    first_429: dict[str, Any] | None = None

    def on_response(self, response: httpx.Response) -> None:
        self.count += 1
        self.by_status[response.status_code] += 1
        request = response.request
        route = "/".join("{id}" if "_" in part else part for part in request.url.path.split("/"))
        self.by_route[f"{request.method} {route}"] += 1
        if response.status_code == 429 and self.first_429 is None:
            response.read()
            self.first_429 = {
                "invocation": self.invocation,
                "request": f"{request.method} {request.url.path}",
                "retry_after": response.headers.get("retry-after"),
                "body": response.text[:300],
            }

    async def aon_response(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            await response.aread()
        self.on_response(response)


# -- running a workload ------------------------------------------------------------------------


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def summary(
    times: list[float],
    wall: float,
    counts: list[int] | None,
    history: tuple[int, float, int | None] | None,
) -> dict[str, Any]:
    first, last = times[:5], times[-5:]
    out: dict[str, Any] = {
        "invocations": len(times),
        "wall_seconds": round(wall, 2),
        "first5_median_ms": _median_ms(first),
        "last5_median_ms": _median_ms(last),
        "last_over_first": round(statistics.median(last) / statistics.median(first), 2),
    }
    if counts is not None:
        out["requests_per_invocation"] = round(sum(counts) / len(counts), 1)
        out["requests_first_last"] = [counts[0], counts[-1]]
    if history is not None:
        out["history_checkpoints"], seconds, requests = history
        out["history_ms"] = round(seconds * 1000, 1)
        if requests is not None:
            out["history_requests"] = requests
    return out


WARM_UP = {"configurable": {"thread_id": "warm-up"}}


def run_sync(
    graph: Any, workload: str, invocations: int, requests: Requests | None, warm: Any = None
) -> dict[str, Any]:
    """``warm``: the graph of the untimed warm-up invocation (imports, connections, caches),
    by default ``graph``; KontexSaver warms up on another key, so as not to spend the measured
    key's hourly budget."""
    (warm or graph).invoke(question(0), WARM_UP)
    times: list[float] = []
    counts: list[int] = []
    started = time.perf_counter()
    for i in range(invocations):
        if requests is not None:
            requests.invocation = i + 1
            before = requests.count
        t0 = time.perf_counter()
        result = graph.invoke(question(i), config_for(workload, i))
        times.append(time.perf_counter() - t0)
        if requests is not None:
            counts.append(requests.count - before)
        check_answer(result, workload, i)
    wall = time.perf_counter() - started
    history = None
    if workload == "one_thread":
        if requests is not None:
            requests.invocation = 0
        before = requests.count if requests is not None else 0
        t0 = time.perf_counter()
        found = len(list(graph.get_state_history(config_for(workload, 0))))
        seconds = time.perf_counter() - t0
        history = (found, seconds, requests.count - before if requests is not None else None)
    return summary(times, wall, counts if requests is not None else None, history)


async def run_async(
    graph: Any, workload: str, invocations: int, requests: Requests | None, warm: Any = None
) -> dict[str, Any]:
    await (warm or graph).ainvoke(question(0), WARM_UP)  # as run_sync
    times: list[float] = []
    counts: list[int] = []
    started = time.perf_counter()
    for i in range(invocations):
        if requests is not None:
            requests.invocation = i + 1
            before = requests.count
        t0 = time.perf_counter()
        result = await graph.ainvoke(question(i), config_for(workload, i))
        times.append(time.perf_counter() - t0)
        if requests is not None:
            counts.append(requests.count - before)
        check_answer(result, workload, i)
    wall = time.perf_counter() - started
    history = None
    if workload == "one_thread":
        if requests is not None:
            requests.invocation = 0
        before = requests.count if requests is not None else 0
        t0 = time.perf_counter()
        found = len([s async for s in graph.aget_state_history(config_for(workload, 0))])
        seconds = time.perf_counter() - t0
        history = (found, seconds, requests.count - before if requests is not None else None)
    return summary(times, wall, counts if requests is not None else None, history)


# -- Kontex ------------------------------------------------------------------------------------


class KontexServer:
    """``kontex dev`` on a backend, started on first use per limits (default, or raised after a
    429); one key per run, so each run starts with a fresh hourly budget."""

    def __init__(self, backend: str, stack: ExitStack, scratch: Path) -> None:
        self.backend, self.exits, self.scratch = backend, stack, scratch
        self.stacks: dict[str, tuple[DevStack, dict[str, str], str]] = {}
        self.keys = 0

    def _start(self, limits: str) -> tuple[DevStack, dict[str, str], str]:
        if limits not in self.stacks:
            env = dict(DEFAULT_LIMITS if limits == "default" else RAISED_LIMITS)
            if self.backend == "postgres":
                env["KONTEX_DATABASE_URL"] = self.exits.enter_context(_pg_schema(pg_url()))
            data = self.scratch / f"kontex-{self.backend}-{limits}"
            warm_key = create_key(data, "bench warm-up", env=env)  # migrates first
            running = start_drained(data, env)
            self.exits.callback(stop_dev, running)
            self.stacks[limits] = (running, env, warm_key)
        return self.stacks[limits]

    def key(self, limits: str) -> tuple[str, str, str]:
        """The base URL, a new key, and the key of the warm-up invocations."""
        running, env, warm_key = self._start(limits)
        self.keys += 1
        key = create_key(running.data_dir, f"bench {self.keys}", env=env)
        return running.base, key, warm_key


def saver_class(legacy: bool) -> Any:
    """``KontexSaver``, or with ``legacy`` the saver as it was before the checkpoint API (kept
    by the client tests in tests/client/legacy_saver.py): "before" numbers on a newer tree."""
    if legacy:
        from tests.client.legacy_saver import KontexSaver as LegacySaver

        return LegacySaver
    return kontex_langgraph.KontexSaver


def make_saver(cls: Any, client: Kontex, aclient: AsyncKontex | None = None) -> Any:
    """The saver over ``client`` (and over ``aclient`` for its async methods when its
    constructor takes ``async_client``), so every request goes through the counted clients."""
    if aclient is not None and "async_client" in inspect.signature(cls).parameters:
        return cls(client=client, async_client=aclient)
    return cls(client=client)


def _hooked(requests: Requests) -> httpx.Client:
    return httpx.Client(timeout=30.0, event_hooks={"response": [requests.on_response]})


def kontex_sync(
    base: str, key: str, warm_key: str, workload: str, invocations: int, legacy: bool
) -> dict[str, Any]:
    requests = Requests()
    cls = saver_class(legacy)
    with Kontex(base, key, http_client=_hooked(requests)) as client, Kontex(base, warm_key) as warm:
        saver = make_saver(cls, client)
        try:
            result = run_sync(
                build(saver), workload, invocations, requests, build(cls(client=warm))
            )
        except KontexError as error:
            return _limited(requests, error)
    return {
        "saver": cls.__name__ + (" (legacy)" if legacy else ""),
        **_with_requests(result, requests),
    }


def kontex_async(
    base: str, key: str, warm_key: str, workload: str, invocations: int, legacy: bool
) -> dict[str, Any]:
    """``ainvoke``: ``AsyncKontexSaver`` when the client has one, else ``KontexSaver``'s a*
    methods (native over ``async_client`` when it takes one, else the sync ones in threads)."""

    async def go() -> dict[str, Any]:
        requests = Requests()
        ahttp = httpx.AsyncClient(timeout=30.0, event_hooks={"response": [requests.aon_response]})
        async_class = None if legacy else getattr(kontex_langgraph, "AsyncKontexSaver", None)
        cls = async_class or saver_class(legacy)
        with (
            Kontex(base, key, http_client=_hooked(requests)) as client,
            Kontex(base, warm_key) as warm,
        ):
            async with (
                AsyncKontex(base, key, http_client=ahttp) as aclient,
                AsyncKontex(base, warm_key) as awarm,
            ):
                if async_class is not None:
                    saver: Any = async_class(client=aclient)
                    warm_saver: Any = async_class(client=awarm)
                else:
                    saver = make_saver(cls, client, aclient)
                    warm_saver = make_saver(cls, warm, awarm)
                try:
                    result = await run_async(
                        build(saver), workload, invocations, requests, build(warm_saver)
                    )
                except KontexError as error:
                    return _limited(requests, error)
        kind = (
            cls.__name__
            + (" (legacy)" if legacy else "")
            + ("" if async_class else " (a* methods)")
        )
        return {"saver": kind, **_with_requests(result, requests)}

    return asyncio.run(go())


def _with_requests(result: dict[str, Any], requests: Requests) -> dict[str, Any]:
    result["http_statuses"] = dict(sorted(requests.by_status.items()))
    result["requests_by_route"] = dict(requests.by_route.most_common())
    if requests.first_429:
        result["first_429"] = requests.first_429
    return result


def _limited(requests: Requests, error: KontexError) -> dict[str, Any]:
    """A run stopped by an error of the server: a 429 (then run again on raised limits) or any
    other (reported as the run's failure; invocation 0 is the warm-up or the history)."""
    return {
        "rate_limited": isinstance(error, RateLimitError),
        "failed": True,
        "error": str(error)[:300],
        "failed_at_invocation": requests.invocation,
        "first_429": requests.first_429,
        "http_statuses": dict(sorted(requests.by_status.items())),
    }


def kontex_side(
    server: KontexServer,
    run: Callable[..., dict[str, Any]],
    workload: str,
    invocations: int,
) -> dict[str, Any]:
    """On default limits; after a 429 again on raised ones, the finding kept beside."""
    base, key, warm_key = server.key("default")
    result = run(base, key, warm_key, workload, invocations)
    if not result.get("rate_limited"):  # numbers, or a failure other than a 429
        return {"limits": "default", **result}
    finding = result
    base, key, warm_key = server.key("raised")
    return {"limits": "raised after a 429 on default", "default_limits_429": finding,
            **run(base, key, warm_key, workload, invocations)}  # fmt: skip


# -- LangGraph's savers ------------------------------------------------------------------------


@contextmanager
def sqlite_saver(scratch: Path, name: str) -> Iterator[Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(scratch / f"{name}.db", check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


@contextmanager
def postgres_saver(url: str) -> Iterator[Any]:
    """``PostgresSaver`` as ``from_conn_string`` makes it (autocommit, dict rows, no prepared
    statements), its ``search_path`` a fresh schema."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row

    with _pg_schema(url) as schema_url, Connection.connect(
        schema_url, autocommit=True, prepare_threshold=0, row_factory=dict_row
    ) as conn:  # fmt: skip
        saver = PostgresSaver(conn)
        saver.setup()
        yield saver


def peer_async_sqlite(scratch: Path, name: str, workload: str, invocations: int) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with aiosqlite.connect(scratch / f"{name}.db") as conn:
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            return await run_async(build(saver), workload, invocations, None)

    return asyncio.run(go())


# -- the benchmark -----------------------------------------------------------------------------


def _ratio(kontex: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    if "wall_seconds" not in kontex:
        return {}
    out = {"wall": round(kontex["wall_seconds"] / peer["wall_seconds"], 2)}
    for key in ("first5_median_ms", "last5_median_ms", "history_ms"):
        if key in kontex and key in peer and peer[key]:
            out[key.removesuffix("_ms")] = round(kontex[key] / peer[key], 2)
    return out


def run_backend(
    backend: str, invocations: int, with_async: bool, legacy: bool = False
) -> dict[str, Any]:
    sync_side = functools.partial(kontex_sync, legacy=legacy)
    async_side = functools.partial(kontex_async, legacy=legacy)
    out: dict[str, Any] = {}
    with ExitStack() as exits:
        scratch = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="kontex-agent-")))
        server = KontexServer(backend, exits, scratch)
        peer_name = {"sqlite": "SqliteSaver", "postgres": "PostgresSaver"}[backend]
        for workload in WORKLOADS:
            if backend == "sqlite":
                with sqlite_saver(scratch, f"peer-{workload}") as saver:
                    peer = run_sync(build(saver), workload, invocations, None)
            else:
                with postgres_saver(pg_url()) as saver:
                    peer = run_sync(build(saver), workload, invocations, None)
            kontex = kontex_side(server, sync_side, workload, invocations)
            print(f"{backend} {workload} done", file=sys.stderr)
            out[workload] = {
                "kontex": {"saver": "KontexSaver", **kontex},
                "peer": {"saver": peer_name, **peer},
                "kontex_over_peer": _ratio(kontex, peer),
            }
        if with_async and backend == "sqlite":
            for workload in WORKLOADS:
                peer = peer_async_sqlite(scratch, f"peer-async-{workload}", workload, invocations)
                kontex = kontex_side(server, async_side, workload, invocations)
                print(f"{backend} async {workload} done", file=sys.stderr)
                out[f"async_{workload}"] = {
                    "kontex": kontex,
                    "peer": {"saver": "AsyncSqliteSaver", **peer},
                    "kontex_over_peer": _ratio(kontex, peer),
                }
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite",
                 "langgraph-checkpoint-postgres", "kontex-client"):  # fmt: skip
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def print_report(report: dict[str, Any]) -> None:
    info = report["machine"]
    print(
        f"LangGraph agent (2 tool calls per invocation, 7 checkpoints): {report['invocations']}"
        " invocations per workload"
    )
    print(
        f"Machine: {info['cpus']} x {info['cpu']}; load average {info['load_average_before']}"
        f" before, {info['load_average']} after; Python {info['python']}, SQLite {info['sqlite']}"
    )
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    print(f"Kontex saver: {report['kontex_saver']}")
    print(f"Kontex limits: {report['kontex_default_limits']} (the defaults)")
    columns = ("saver", "limits", "wall s", "1-5 ms", "last5 ms", "last/first", "req/inv",
               "history")  # fmt: skip
    for backend, workloads in report["results"].items():
        for workload, result in workloads.items():
            print(f"\n{backend}, {workload}:")
            print(
                f"  {columns[0]:<34}{columns[1]:>8}"
                + "".join(f"{c:>11}" for c in columns[2:-1])
                + f"{columns[-1]:>16}"
            )
            for side in ("kontex", "peer"):
                r = result[side]
                limits = {"default": "default", None: ""}.get(r.get("limits"), "RAISED")
                if "wall_seconds" not in r:
                    print(
                        f"  {r.get('saver', 'KontexSaver'):<34}{limits:>8}  FAILED at invocation"
                        f" {r.get('failed_at_invocation')}: {r.get('error')}"
                    )
                    continue
                history = (
                    f"{r['history_checkpoints']} in {r['history_ms']:.0f}ms"
                    if "history_ms" in r
                    else ""
                )
                cells = (
                    f"{r['wall_seconds']:.2f}",
                    f"{r['first5_median_ms']:.1f}",
                    f"{r['last5_median_ms']:.1f}",
                    f"{r['last_over_first']:.2f}",
                    str(r.get("requests_per_invocation", "")),
                    history,
                )
                print(
                    f"  {r.get('saver', 'KontexSaver'):<34}{limits:>8}"
                    + "".join(f"{c:>11}" for c in cells[:-1])
                    + f"{cells[-1]:>16}"
                )
            ratio = result["kontex_over_peer"]
            if ratio:
                print("  Kontex / peer: " + ", ".join(f"{k} {v}x" for k, v in ratio.items()))
            finding = result["kontex"].get("default_limits_429")
            if finding:
                print(
                    f"  FINDING: 429 on default limits at invocation"
                    f" {finding['failed_at_invocation']}: {finding['first_429']}"
                )
            statuses = result["kontex"].get("http_statuses")
            if statuses:
                print(f"  Kontex HTTP statuses: {statuses}")
            if "history_requests" in result["kontex"]:
                print(
                    f"  Kontex get_state_history: {result['kontex']['history_requests']} requests"
                )
            routes = result["kontex"].get("requests_by_route")
            if routes:
                print(
                    "  Kontex requests by route: "
                    + ", ".join(f"{k} {v}" for k, v in routes.items())
                )
    for backend, reason in report["skipped"].items():
        print(f"\n{backend} skipped: {reason}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invocations", type=int, default=50)
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--no-async", action="store_true", help="skip the ainvoke runs")
    parser.add_argument(
        "--legacy-saver",
        action="store_true",
        help="Kontex side: the saver before the checkpoint API (tests/client/legacy_saver.py)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, help="also write the JSON report to this file")
    args = parser.parse_args(argv)
    if args.invocations < 5:
        parser.error("--invocations must be at least 5")
    load_before = machine()["load_average"]
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        try:
            results[backend] = run_backend(
                backend, args.invocations, not args.no_async, args.legacy_saver
            )
        except Unavailable as error:
            if args.backend != "all":
                raise SystemExit(str(error)) from None
            skipped[backend] = str(error)
        except Exception as error:  # noqa: BLE001 (one backend failing keeps the others' numbers)
            if args.backend != "all":
                raise
            skipped[backend] = f"failed: {type(error).__name__}: {error}"[:500]
    info = machine()
    info["load_average_before"] = load_before
    report = {
        "invocations": args.invocations,
        "checkpoints_per_invocation": 2 * TOOL_CALLS + 3,
        "kontex_saver": "legacy (tests/client/legacy_saver.py)" if args.legacy_saver else "current",
        "kontex_default_limits": DEFAULT_LIMITS,
        "machine": info,
        "versions": _versions(),
        "results": results,
        "skipped": skipped,
    }
    if args.save:
        args.save.write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return report


if __name__ == "__main__":
    main()
