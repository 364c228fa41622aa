"""Nothing acknowledged is lost: `kontex dev` killed with SIGKILL right after the last 200 of
N OTLP requests; after a restart on the same data dir every acknowledged span is a snapshot."""

from __future__ import annotations

import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.trace import Tracer

from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
from tests.conftest import _postgres_schema_url
from tests.e2e.stack import Http, create_key, kill_dev, start_dev
from tests.otlp import spans as fixtures

pytestmark = pytest.mark.e2e

REQUESTS = 50
SPANS_PER_REQUEST = 5


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    env = {"KONTEX_RATE_LIMIT_PER_HOUR": "100000"}
    if request.param == "sqlite":
        yield env
        return
    for url in _postgres_schema_url():
        yield {**env, "KONTEX_DATABASE_URL": url}


def llm_calls(tracer: Tracer) -> None:
    for i in range(SPANS_PER_REQUEST):
        with tracer.start_as_current_span(
            "openai.completion",
            attributes={
                "llm.request.type": "completion",
                "llm.request.model": "text-davinci-003",
                "llm.prompts.0.role": "user",
                "llm.prompts.0.content": f"call {i}",
                "llm.completions.0.role": "assistant",
                "llm.completions.0.content": "ok",
                "llm.usage.prompt_tokens": 3,
                "llm.usage.completion_tokens": 1,
            },
        ):
            pass


def count_snapshots(api: Http, session_id: str) -> int:
    total, cursor = 0, ""
    while True:
        status, page = api("GET", f"/v1/sessions/{session_id}/snapshots?limit=100{cursor}")
        assert status == 200, page
        total += len(page["data"])
        if not page.get("next_cursor"):
            return total
        cursor = f"&cursor={page['next_cursor']}"


def test_acknowledged_spans_survive_sigkill(tmp_path: Path, database_env: dict[str, str]) -> None:
    data = tmp_path / "data"
    key = create_key(data, "crash", database_env)
    stack = start_dev(data, database_env)
    try:
        api = Http(stack.base, key)
        status, session = api("POST", "/v1/sessions", {"name": "crash"})
        assert status == 201, session
        bodies = [
            fixtures.protobuf(fixtures.record(llm_calls)) for _ in range(REQUESTS)
        ]  # built first, so the requests go back to back
        for body in bodies:
            request = urllib.request.Request(
                f"{stack.base}/ingest/v1/traces",
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/x-protobuf",
                    "X-Kontex-Api-Key": key,
                    "X-Kontex-Session-Id": session["id"],
                },
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
    finally:
        kill_dev(stack)  # right after the last 200
    queued = LocalQueue(data / QUEUE_FILE)
    print(f"{queued.pending()} message(s) were still queued at the kill")
    queued.close()

    again = start_dev(data, database_env)
    try:
        api = Http(again.base, key)
        expected = REQUESTS * SPANS_PER_REQUEST
        deadline = time.monotonic() + 120
        found = count_snapshots(api, session["id"])
        while found < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            found = count_snapshots(api, session["id"])
        assert found == expected
        time.sleep(0.5)
        assert count_snapshots(api, session["id"]) == expected  # nothing twice either
    finally:
        again.process.send_signal(signal.SIGINT)
        again.process.communicate(timeout=30)
