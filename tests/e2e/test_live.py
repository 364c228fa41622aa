"""The live feed end to end: the `websockets` client against a real `kontex dev` at /ws.

Snapshots made over REST, OTLP (the real OpenTelemetry exporter) and the proxy (the real
`anthropic` SDK against a fake upstream) each arrive as `snapshot.created`; thread state over
the socket is the REST thread state; another account sees nothing; `kontex tail` prints them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev
from tests.e2e.test_otlp_exporter import export
from tests.otlp import spans as fixtures
from tests.proxy.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.e2e
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeAnthropic]:
    with FakeAnthropic().running() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAnthropic) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("live") / "data"
    create_key(data, "bootstrap")
    running = start_dev(data, env={"ANTHROPIC_API_URL": upstream.url})
    yield running
    stop_dev(running)


def ws_url(stack: DevStack) -> str:
    return stack.base.replace("http://", "ws://") + "/ws"


class Live:
    """A feed client: requests answered by id, pushed events kept in arrival order."""

    def __init__(self, stack: DevStack, key: str) -> None:
        opened = connect(ws_url(stack), open_timeout=10, max_size=4 * 2**20)
        self.ws: ClientConnection = opened.__enter__()  # closed by close()
        self.ws.send(json.dumps({"authorization": key}))
        self.auth = json.loads(self.ws.recv(timeout=TIMEOUT))
        self.events: list[dict[str, Any]] = []
        self._n = 0

    def _next(self, timeout: float) -> dict[str, Any]:
        message = json.loads(self.ws.recv(timeout=timeout))
        if "type" in message:
            self.events.append(message)
        return dict(message)

    def ask(self, action: str, **data: Any) -> dict[str, Any]:
        self._n += 1
        rid = f"r{self._n}"
        self.ws.send(json.dumps({"id": rid, "action": action, "data": data}))
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._next(deadline - time.monotonic())
            if message.get("id") == rid and "success" in message:
                return message

    def wait_for(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while True:
            for event in self.events[seen:]:
                if check(event):
                    return event
            seen = len(self.events)
            self._next(max(0.01, deadline - time.monotonic()))

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def account(stack: DevStack) -> Iterator[dict[str, Any]]:
    key = create_key(stack.data_dir, "live")
    api = Http(stack.base, key)
    session = api("POST", "/v1/sessions", {"name": "watched"})[1]
    task = api("POST", f"/v1/sessions/{session['id']}/tasks", {"name": "work"})[1]
    live = Live(stack, key)
    assert live.auth == {"success": True}
    answer = live.ask("subscribe", session_id=session["id"])
    assert answer == {"id": "r1", "success": True, "data": {"session_id": session["id"]}}
    yield {"key": key, "api": api, "session": session["id"], "task": task["id"], "live": live}
    live.close()


def created(snapshot_id: str | None = None, source: str | None = None) -> Callable[[dict], bool]:
    def check(event: dict[str, Any]) -> bool:
        if event["type"] != "snapshot.created":
            return False
        if snapshot_id is not None and event["data"]["snapshot_id"] != snapshot_id:
            return False
        return source is None or event["data"]["source"] == source

    return check


def test_a_bad_key_is_refused_and_closed(stack: DevStack) -> None:
    for frame in ({"authorization": "kontex_not-a-key"}, {"id": "1", "action": "subscribe"}):
        with connect(ws_url(stack), open_timeout=10) as ws:
            ws.send(json.dumps(frame))
            answer = json.loads(ws.recv(timeout=TIMEOUT))
            assert answer["success"] is False and answer["error"] == "unauthorized"
            with pytest.raises(ConnectionClosed):  # the server closes it
                ws.recv(timeout=TIMEOUT)


def test_rest_snapshots_and_enrichment_arrive(account: dict[str, Any]) -> None:
    api, live = account["api"], account["live"]
    status, snap = api(
        "POST",
        f"/v1/tasks/{account['task']}/snapshots",
        {"label": "read the code", "bundle": {"messages": [{"role": "user", "content": "hi"}]}},
    )
    assert status == 201
    event = live.wait_for(created(snap["id"]))
    assert event["session_id"] == account["session"]
    data = event["data"]
    assert data["label"] == "read the code" and data["task_id"] == account["task"]
    assert data["token_total"] == snap["token_total"] and data["created_at"] == snap["created_at"]
    assert "bundle" not in data and "messages" not in data

    status, _ = api("POST", f"/v1/snapshots/{snap['id']}/enrich", {"reasoning": "because"})
    assert status == 200
    enriched = live.wait_for(lambda e: e["type"] == "snapshot.enriched")
    assert enriched["data"]["snapshot_id"] == snap["id"] and enriched["data"]["enriched"] is True

    api("PATCH", f"/v1/tasks/{account['task']}", {"status": "completed"})
    task = live.wait_for(
        lambda e: e["type"] == "task.updated" and e["data"]["status"] == "completed"
    )
    assert task["data"]["id"] == account["task"]


def test_otlp_spans_arrive_as_snapshots(stack: DevStack, account: dict[str, Any]) -> None:
    session = account["session"]
    export(stack, account["key"], lambda tracer: fixtures.openllmetry_agent(tracer, session))
    event = account["live"].wait_for(created(source="openllmetry"))
    assert event["session_id"] == session and event["data"]["label"] == "anthropic.chat"


def test_proxied_calls_arrive_as_snapshots(
    stack: DevStack, upstream: FakeAnthropic, account: dict[str, Any]
) -> None:
    client = anthropic.Anthropic(
        api_key="sk-ant-caller",
        base_url=f"{stack.base}/proxy",
        max_retries=0,
        default_headers={
            "X-Kontex-Api-Key": account["key"],
            "X-Kontex-Session-Id": account["session"],
        },
    )
    client.messages.create(
        model="claude-fake", max_tokens=50, messages=[{"role": "user", "content": "weather?"}]
    )
    event = account["live"].wait_for(created(source="proxy"))
    assert event["data"]["usage"]["input_tokens"] > 0


def test_another_account_can_neither_subscribe_nor_receive(
    stack: DevStack, account: dict[str, Any]
) -> None:
    key_b = create_key(stack.data_dir, "other")
    api_b = Http(stack.base, key_b)
    own = api_b("POST", "/v1/sessions", {"name": "b's"})[1]
    own_task = api_b("POST", f"/v1/sessions/{own['id']}/tasks", {"name": "b"})[1]
    b = Live(stack, key_b)
    try:
        refused = b.ask("subscribe", session_id=account["session"])
        unknown = b.ask("subscribe", session_id="sess_doesnotexist")
        assert refused["success"] is False and refused["error"] == unknown["error"] == "not_found"
        assert b.ask("subscribe", session_id=own["id"])["success"] is True
        # A's snapshot reaches A; then B's own reaches B, and B never saw A's
        bundle = {"messages": [{"role": "user", "content": "x"}]}
        path_a = f"/v1/tasks/{account['task']}/snapshots"
        a_snap = account["api"]("POST", path_a, {"label": "a", "bundle": bundle})[1]
        account["live"].wait_for(created(a_snap["id"]))
        path_b = f"/v1/tasks/{own_task['id']}/snapshots"
        b_snap = api_b("POST", path_b, {"label": "b", "bundle": bundle})[1]
        b.wait_for(created(b_snap["id"]))
        assert {e["session_id"] for e in b.events} == {own["id"]}
        assert a_snap["id"] not in json.dumps(b.events)
    finally:
        b.close()


def test_thread_state_over_the_socket(stack: DevStack, account: dict[str, Any]) -> None:
    live, api = account["live"], account["api"]
    tid = "thrd_" + "live-e2e-" + "x" * 20
    nothing = live.ask("restore", thread_id=tid)
    assert nothing["success"] is True and "data" in nothing and nothing["data"] is None
    saved = live.ask("save", thread_id=tid, user_data='{"cursor": 41}')
    assert saved["success"] is True and saved["data"]["version"] == 1
    assert live.ask("restore", thread_id=tid)["data"] == '{"cursor": 41}'
    status, state = api("GET", f"/v1/threads/{tid}/state")
    assert status == 200 and state["user_data"] == '{"cursor": 41}'
    # saved over REST, restored over the socket: one store
    api("PUT", f"/v1/threads/{tid}/state", {"user_data": "from rest"})
    assert live.ask("restore", thread_id=tid)["data"] == "from rest"

    too_big = live.ask("save", thread_id=tid, user_data="z" * (1024 * 1024 + 1))
    assert too_big["success"] is False and too_big["error"] == "payload_too_large"
    for bad in ("thrd_short", "thread_" + "a" * 30, "thrd_" + "a" * 60, "thrd_" + "a" * 26 + "!"):
        answer = live.ask("save", thread_id=bad, user_data="x")
        assert answer["error"] == "validation_error", bad
    live.ws.send("{broken json")
    assert json.loads(live.ws.recv(timeout=TIMEOUT))["error"] == "validation_error"

    # the connection survived every refusal
    deleted = live.ask("delete", thread_id=tid)
    assert deleted["success"] is True and "error" not in deleted
    assert live.ask("restore", thread_id=tid)["data"] is None
    assert api("GET", f"/v1/threads/{tid}/state")[0] == 404


def interruptible() -> None:
    """Ctrl-C reaches the child as it would from a terminal: a run started in the background of
    a non-interactive shell (`.ci/run &`) has SIGINT ignored, the child would inherit that, and
    Python keeps an inherited SIG_IGN (the test saw `SigIgn` with SIGINT's bit and no handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_kontex_tail_prints_events_and_stops_on_ctrl_c(
    stack: DevStack, account: dict[str, Any]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kontex.cli", "tail", account["session"], "--url", ws_url(stack)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KONTEX_API_KEY": account["key"]},
        preexec_fn=interruptible,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        line = process.stderr.readline()  # blocks until it follows (or fails)
        assert "following" in line, line
        snap = account["api"](
            "POST",
            f"/v1/tasks/{account['task']}/snapshots",
            {"label": "tailed", "bundle": {"messages": [{"role": "user", "content": "hi"}]}},
        )[1]
        printed = process.stdout.readline()
        assert "snapshot.created" in printed and snap["id"] in printed and '"tailed"' in printed
        said: list[str] = []  # what it says after Ctrl-C (read, so no pipe fills meanwhile)
        for stream in (process.stdout, process.stderr):
            threading.Thread(target=lambda s=stream: said.extend(s), daemon=True).start()
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
            signals = [line for line in status if line.startswith(("SigIgn", "SigCgt"))]
            raise AssertionError(f"still running after Ctrl-C: {signals}, said {said}") from None
        assert code == 0, said
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_kontex_tail_refuses_a_foreign_session(stack: DevStack, account: dict[str, Any]) -> None:
    other = create_key(stack.data_dir, "tail-other")
    done = subprocess.run(
        [sys.executable, "-m", "kontex.cli", "tail", account["session"], "--url", ws_url(stack)],
        capture_output=True,
        text=True,
        env={**os.environ, "KONTEX_API_KEY": other},
        timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "not found" in done.stderr
