"""The span queue consumed by two processes at once (`kontex dev`'s ``KONTEX_DEV_SPAN_PROCESSES``,
the local analogue of the span Lambda's concurrency; docs/design.md, "The local stack"), on
SQLite and PostgreSQL: the same queued span messages - a request sent twice (in one batch and
in batches the two processes hold at once) and traces whose spans are split over batches (the
children first, the root later) - make each span's snapshot once, and the same snapshots as one
process makes from them.

The real pieces: the ingest handler queues the messages in the data dir's queue file, and the
pipeline processes of ``local/pipeline_process.py`` (spawned, as `kontex dev` spawns them)
consume it, resumed once by ``Pipelines.consume`` as the server does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Tracer

from kontex import bootstrap
from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
from kontex.http.apigw import LocalContext, http_api_event, response_parts
from kontex.local import pipeline_process
from kontex.local.pipeline_process import Pipelines
from kontex.local.server import load_handler
from kontex.services import keys, sessions, snapshots
from kontex.settings import Settings
from tests.conftest import _postgres_schema_url
from tests.otlp import spans as fixtures

TRACES = 12  # agent traces, one session each
DUPLICATED = 4  # of them, the children's request sent twice (far apart in the queue)
GRACE_SECONDS = 2  # a span waits this long for its ancestor (the retry comes 1 s after)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Settings]]:
    """Settings for a fresh data dir and database, each time it is called."""
    made: list[Iterator[str]] = []
    count = iter(range(100))

    def fresh() -> Settings:
        env = {
            "KONTEX_API_KEY_SECRET": "s",
            "KONTEX_SPAN_GRACE_SECONDS": str(GRACE_SECONDS),
            "VOYAGE_API_KEY": "",
            "QDRANT_URL": "",
        }
        if request.param == "postgres":
            urls = _postgres_schema_url()
            made.append(urls)
            env["KONTEX_DATABASE_URL"] = next(urls)
        return Settings.from_env(env, kontex_data_dir=tmp_path / f"data{next(count)}")

    yield fresh
    for urls in made:  # the schemas dropped
        for _ in urls:
            pass


def agent(i: int) -> list[ReadableSpan]:
    """One agent trace of session ``agent-<i>``: its workflow span (the root, which names the
    session) and the model calls and tool call under it."""

    def build(tracer: Tracer) -> None:
        fixtures.openllmetry_agent(tracer, session=f"agent-{i}")

    return fixtures.record(build)


def requests() -> list[bytes]:
    """The ingest requests, in queue order: every trace's children (the root missing), the
    children of the first ``DUPLICATED`` again, then every root twice in a row."""
    traces = [agent(i) for i in range(TRACES)]
    children = [[s for s in spans if s.parent is not None] for spans in traces]
    roots = [[s for s in spans if s.parent is None] for spans in traces]
    assert all(len(r) == 1 and c for r, c in zip(roots, children, strict=True))
    bodies = [fixtures.protobuf(c) for c in children]
    bodies += [fixtures.protobuf(c) for c in children[:DUPLICATED]]
    for root in roots:
        bodies += [fixtures.protobuf(root)] * 2
    return bodies


def ingest(settings: Settings, bodies: list[bytes]) -> str:
    """Migrate a fresh database, make a key and queue ``bodies`` through the ingest handler
    into the data dir's queue file; the key's account."""
    container = bootstrap.Container(settings)
    container.migrate()
    queue = LocalQueue(settings.kontex_data_dir / QUEUE_FILE)
    container.queue = queue  # type: ignore[assignment]
    container.events = container.local_topic(queue)  # type: ignore[assignment]
    bootstrap.configure(container)
    try:
        key, plaintext = keys.create_key(container.deps, "spans")
        handler = load_handler("ingest")
        headers = [("x-kontex-api-key", plaintext), ("content-type", "application/x-protobuf")]
        for body in bodies:
            event = http_api_event("POST", "/ingest/v1/traces", headers, body)
            status, _, _ = response_parts(handler(event, LocalContext("kontex-ingest")))
            assert status == 200
        assert queue.pending("spans") == len(bodies)
        return key.account_id
    finally:
        queue.close()
        bootstrap.configure(None)


def consume(settings: Settings, processes: int) -> None:
    """The data dir's span queue consumed by ``processes`` pipeline processes until it is
    empty, the delayed retries of waiting spans included."""
    settings = settings.model_copy(update={"kontex_dev_span_processes": processes})
    pipelines = Pipelines(settings)
    assert len(pipelines.processes) == processes
    queue = LocalQueue(settings.kontex_data_dir / QUEUE_FILE)
    try:
        pipelines.consume({}, queue)
        deadline = time.monotonic() + 120
        while queue.pending("spans") and time.monotonic() < deadline:
            assert pipelines.check() is None
            time.sleep(0.1)
        assert queue.pending("spans") == 0
        assert queue.dead_letters() == []
    finally:
        pipelines.close()
        queue.close()


def made(settings: Settings, account_id: str) -> dict[str, list[tuple[str, str, str]]]:
    """Per session name, its snapshots: (task name, label, bundle), sorted; and each
    snapshot id once."""
    container = bootstrap.Container(settings)
    deps = container.deps
    try:
        found: dict[str, list[tuple[str, str, str]]] = {}
        ids: list[str] = []
        for session in sessions.list_sessions(deps, account_id, limit=100).items:
            page = snapshots.list_snapshots(deps, account_id, session.id, limit=100)
            assert page.next_cursor is None
            rows = []
            for snapshot in page.items:
                ids.append(snapshot.id)
                task = sessions.get_task(deps, account_id, snapshot.task_id)
                bundle = snapshots.get_bundle(deps, account_id, snapshot.id)
                content = json.dumps(bundle.model_dump(mode="json"), sort_keys=True)
                rows.append((task.name, snapshot.label, content))
            found[session.name] = sorted(rows)
        assert len(ids) == len(set(ids))
        return found
    finally:
        getattr(container.store, "close", lambda: None)()


def test_two_span_processes_make_each_span_once_and_what_one_makes(
    databases: Callable[[], Settings],
) -> None:
    bodies = requests()
    one, two = databases(), databases()
    # each queued just before it is consumed: a span waits GRACE_SECONDS for its ancestor from
    # when it was received, so the second data dir's children must not wait out the first run
    accounts = [ingest(one, bodies)]
    consume(one, 1)
    accounts.append(ingest(two, bodies))
    consume(two, 2)
    alone, together = made(one, accounts[0]), made(two, accounts[1])
    assert sorted(alone) == sorted(f"agent-{i}" for i in range(TRACES))
    # each agent's two model calls and its tool call, once: none lost, none twice
    labels = ["anthropic.chat", "anthropic.chat", "tool: get_cart"]
    assert all(sorted(label for _, label, _ in rows) == labels for rows in alone.values())
    assert together == alone


def test_the_span_consumers_are_one_a_core_at_most_two_on_either_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres = Settings(kontex_database_url="postgresql://db/kontex")
    sqlite = Settings(kontex_database_url="sqlite:///kontex.db")
    for cores, default in [(1, 1), (2, 2), (8, 2), (None, 1)]:
        monkeypatch.setattr(pipeline_process.os, "cpu_count", lambda n=cores: n)
        assert pipeline_process.span_processes(postgres) == default
        assert pipeline_process.span_processes(Settings()) == default  # the data dir's SQLite
        assert pipeline_process.span_processes(sqlite) == default
        for chosen in (postgres, sqlite):
            three = chosen.model_copy(update={"kontex_dev_span_processes": 3})
            assert pipeline_process.span_processes(three) == 3
