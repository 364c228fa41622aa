"""The proxy (its ASGI app, served by uvicorn as on AWS) and the capture worker, on SQLite and
PostgreSQL, against a fake upstream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kontex.adapters.local_queue import sqs_record
from kontex.domain.model_calls.anthropic import message_from_stream
from kontex.functions import worker_paths
from kontex.http.apigw import LocalContext
from kontex.local.server import load_module, load_worker
from kontex.services import capture, keys, sessions, snapshots
from kontex.settings import Settings
from tests.proxy.fake_anthropic import FakeAnthropic, reply_for, sse_events
from tests.proxy.served import proxy_stack

proxy = load_module("proxy")  # functions/proxy/handler.py: its ``app``, as uvicorn runs it


worker = load_worker(worker_paths()["capture"]).lambda_handler
REQUEST = {
    "model": "claude-fake",
    "max_tokens": 100,
    "system": "Be kind.",
    "messages": [{"role": "user", "content": "hello there"}],
}


@pytest.fixture
def upstream() -> Iterator[FakeAnthropic]:
    with FakeAnthropic().running() as fake:
        yield fake


@pytest.fixture
def kontex(store: Any, tmp_path: Any, upstream: FakeAnthropic) -> Iterator[Any]:
    env = {"ANTHROPIC_API_URL": upstream.url, "KONTEX_PROXY_TIMEOUT_SECONDS": "2"}
    with proxy_stack(proxy.app, store, tmp_path, env, "proxy") as made:
        yield made


def send(
    kontex: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request over HTTP to the served app; returns once its capture is queued."""
    with httpx.Client(base_url=kontex.served.url, timeout=30) as client:
        answer = client.request(method, path, headers=headers, content=body)
    kontex.served.settle()
    return answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content


def call(kontex: Any, body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    sent = {
        "x-kontex-api-key": kontex.key,
        "x-api-key": "sk-ant-upstream",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return send(kontex, "POST", "/proxy/v1/messages", sent, raw)


def run_captures(kontex: Any, times: int = 1) -> None:
    records = [sqs_record("capture", f"c{i}", b, 1) for i, b in enumerate(kontex.queue.sent)]
    for _ in range(times):
        assert worker({"Records": records}, LocalContext(function_name="w")) == {
            "batchItemFailures": []
        }


def session_snapshots(kontex: Any) -> list[Any]:
    return snapshots.list_snapshots(kontex.deps, kontex.account_id, kontex.session.id).items


def test_json_call_is_forwarded_unchanged_and_captured(kontex: Any, upstream: Any) -> None:
    status, headers, body = call(
        kontex,
        REQUEST,
        x_kontex_session_id=kontex.session.id,
        x_kontex_snapshot_trigger="always",
        anthropic_beta="interleaved-thinking-2025-05-14",
    )
    assert status == 200 and json.loads(body) == reply_for(REQUEST)
    assert headers["request-id"] == "req_fake_123"
    assert headers["anthropic-ratelimit-requests-remaining"] == "99"
    sent_headers, sent_body = upstream.requests[-1]
    assert sent_body == REQUEST
    assert sent_headers["x-api-key"] == "sk-ant-upstream"
    assert sent_headers["anthropic-version"] == "2023-06-01"
    assert sent_headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert not [h for h in sent_headers if h.startswith("x-kontex")]

    assert session_snapshots(kontex) == []  # capture is queued, not done inline
    run_captures(kontex, times=3)  # redelivered: still one snapshot
    (snap,) = session_snapshots(kontex)
    assert snap.source == "proxy" and snap.token_total == 101 + 25
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
    assert [m.role for m in bundle.messages] == ["system", "user", "assistant"]
    assert bundle.messages[-1].content == [{"type": "text", "text": "Echo: hello there"}]
    assert bundle.reasoning == "Thinking about: hello there"
    tree = sessions.task_tree(kontex.deps, kontex.account_id, kontex.session.id)
    assert [t["name"] for t in tree] == ["proxy"] and tree[0]["id"] == snap.task_id


def test_streamed_reply_is_reassembled_for_capture(kontex: Any, upstream: Any) -> None:
    request = {
        **REQUEST,
        "stream": True,
        "messages": [{"role": "user", "content": "what is the weather in Paris?"}],
    }
    status, headers, body = call(
        kontex,
        request,
        x_kontex_session_id=kontex.session.id,
        x_kontex_snapshot_trigger="on_tool_end",
    )
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert body == b"".join(sse_events(reply_for(request)))
    run_captures(kontex)
    (snap,) = session_snapshots(kontex)
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
    assert [(c.id, c.tool, c.input) for c in bundle.tool_calls] == [
        ("toolu_fake_1", "get_weather", {"city": "Paris", "unit": "c"})
    ]
    assert bundle.messages[-1].content[-1]["type"] == "tool_use"
    assert snap.token_total == 101 + 25


def test_a_stream_reaches_the_caller_as_it_arrives(kontex: Any, upstream: Any) -> None:
    """Each event is passed on when the upstream sends it, not when the answer is complete."""
    assert call(kontex, REQUEST)[0] == 200  # the pools warm
    upstream.pause = 0.1
    request = {**REQUEST, "stream": True}
    sent = {"x-kontex-api-key": kontex.key, "x-kontex-session-id": kontex.session.id}
    client = httpx.Client(base_url=kontex.served.url, timeout=30)
    started = time.perf_counter()
    with client, client.stream("POST", "/proxy/v1/messages", json=request, headers=sent) as answer:
        chunks = answer.iter_raw()
        first = next(chunks)
        at_first = time.perf_counter() - started
        rest = b"".join(chunks)
    total = time.perf_counter() - started
    events = len(list(sse_events(reply_for(request))))
    assert first.startswith(b"event: message_start")
    assert at_first < 0.1 * events / 2 < total  # the first event came long before the last
    assert first + rest == b"".join(sse_events(reply_for(request)))
    kontex.served.settle()
    assert len(kontex.queue.sent) == 1  # captured once the last byte had gone


def test_stream_reassembly_matches_the_json_message() -> None:
    message = reply_for({"messages": [{"role": "user", "content": "weather please"}]})
    assert message_from_stream(b"".join(sse_events(message))) == message


def test_no_session_no_capture_and_never_an_open_relay(kontex: Any, upstream: Any) -> None:
    assert call(kontex, REQUEST)[0] == 200
    assert kontex.queue.sent == []  # forwarded, nothing captured without a session
    count = len(upstream.requests)
    kontex.key = "kontex_wrong"
    status, _, body = call(kontex, REQUEST)
    assert status == 401 and json.loads(body)["error"] == "unauthorized"
    assert json.loads(body)["details"] == {"reason": "unknown_key"}
    # no Kontex key at all (the upstream's key alone): the refusal shows where it goes
    kontex.key = ""
    status, _, body = call(kontex, REQUEST)
    assert status == 401 and json.loads(body)["message"] == (
        "no Kontex API key was sent: send `X-Kontex-Api-Key: kontex_...` (the upstream's key"
        " stays in its own header)"
    )
    assert len(upstream.requests) == count  # not forwarded


def test_bad_input_is_not_forwarded(kontex: Any, upstream: Any) -> None:
    assert call(kontex, b'{"model": ')[0] == 400
    other, _ = keys.create_key(kontex.deps, "other")
    foreign = sessions.create_session(kontex.deps, other.account_id, "theirs")
    assert call(kontex, REQUEST, x_kontex_session_id=foreign.id)[0] == 404
    assert (
        call(kontex, REQUEST, x_kontex_session_id=kontex.session.id, x_kontex_task_id="task_nope")[
            0
        ]
        == 404
    )
    assert (
        call(
            kontex,
            REQUEST,
            x_kontex_session_id=kontex.session.id,
            x_kontex_snapshot_trigger="sometimes",
        )[0]
        == 400
    )
    assert upstream.requests == []


@pytest.mark.parametrize("depth", [200, 10_000])
def test_a_body_nested_too_deep_is_a_400_not_forwarded(
    kontex: Any, upstream: Any, depth: int
) -> None:
    # 10,000 deep was a 500 (RecursionError); 200 parsed, then no capture could process it
    body = b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    status, _, raw = call(kontex, body, x_kontex_session_id=kontex.session.id)
    assert status == 400 and json.loads(raw)["error"] == "validation_error"
    assert "nested more than 128 levels" in json.loads(raw)["message"]
    assert upstream.requests == []


def test_upstream_errors_pass_through(kontex: Any, upstream: Any) -> None:
    status, headers, body = call(
        kontex, {**REQUEST, "model": "overloaded"}, x_kontex_session_id=kontex.session.id
    )
    assert status == 429 and headers["retry-after"] == "7"
    assert json.loads(body)["error"]["message"] == "slow down"
    assert kontex.queue.sent == []


def test_upstream_timeout_and_unreachable(kontex: Any, upstream: Any) -> None:
    upstream.delay = 3
    status, _, body = call(kontex, REQUEST)
    assert status == 504 and json.loads(body)["error"] == "upstream_error"
    upstream.delay = 0
    kontex.settings = Settings.from_env(
        {"KONTEX_API_KEY_SECRET": "s", "ANTHROPIC_API_URL": "http://127.0.0.1:9"}
    )
    status, _, body = call(kontex, REQUEST)
    assert status == 502 and json.loads(body)["error"] == "upstream_error"


def test_captures_are_queued_without_waiting_for_the_disk(kontex: Any) -> None:
    """The caller has its answer before the capture is queued, so the send asks for no fsync
    (``durable=False``): it still survives a crash of the proxy's process
    (tests/adapters/test_queues.py), not necessarily a power loss."""
    for _ in range(2):
        status, _, _ = call(kontex, REQUEST, x_kontex_session_id=kontex.session.id)
        assert status == 200
    assert len(kontex.queue.sent) == 2
    assert kontex.queue.durable and not any(kontex.queue.durable)


def test_capture_never_breaks_the_answer(kontex: Any) -> None:
    class Broken:
        def send(
            self, queue: str, bodies: list[str], delay_seconds: int = 0, *, durable: bool = True
        ) -> None:
            raise RuntimeError("queue down")

    kontex.queue = Broken()
    status, _, body = call(kontex, REQUEST, x_kontex_session_id=kontex.session.id)
    assert status == 200 and json.loads(body) == reply_for(REQUEST)


def post_unsettled(url: str, key: str, session_id: str) -> int:
    """One captured call over HTTP, returning as soon as the answer is complete."""
    headers = {"x-kontex-api-key": key, "x-kontex-session-id": session_id, "x-api-key": "sk"}
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.post("/proxy/v1/messages", headers=headers, json=REQUEST).status_code


def test_captures_are_handed_off_and_queued_together_while_the_queue_is_busy(
    kontex: Any,
) -> None:
    """The answers never wait for the capture queue; the captures that arrive while it is busy
    go in one send (one transaction of the local queue), not one send (and thread) each."""

    class Held:
        def __init__(self) -> None:
            self.sends: list[list[str]] = []
            self.release = threading.Event()

        def send(
            self, queue: str, bodies: list[str], delay_seconds: int = 0, *, durable: bool = True
        ) -> None:
            self.sends.append(list(bodies))
            assert self.release.wait(30)

    held = kontex.queue = Held()
    # Given the queue holds the first send, when four calls are answered meanwhile
    statuses = [post_unsettled(kontex.served.url, kontex.key, kontex.session.id) for _ in "abcd"]
    assert statuses == [200] * 4  # answered while the queue was held
    # Then once it is free, the captures still waiting go in one send
    held.release.set()
    kontex.served.settle()
    assert sum(len(bodies) for bodies in held.sends) == 4
    assert len(held.sends) <= 2  # the first, then the three (or none) that waited for it
    ids = {json.loads(body)["id"] for bodies in held.sends for body in bodies}
    assert len(ids) == 4


def test_in_lambda_the_capture_is_queued_before_the_answer_ends(
    store: Any, tmp_path: Any, upstream: FakeAnthropic
) -> None:
    """A Lambda environment may be frozen once the answer is complete: there the capture is
    queued first (the end of the answer waits for it; its bytes do not)."""
    from kontex.proxy.app import ProxyApp

    class Slow:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(
            self, queue: str, bodies: list[str], delay_seconds: int = 0, *, durable: bool = True
        ) -> None:
            time.sleep(0.2)
            self.sent += bodies

    env = {"ANTHROPIC_API_URL": upstream.url}
    app = ProxyApp(capture_before_end=True)
    with proxy_stack(app, store, tmp_path, env, "lambda") as made:
        made.queue = slow = Slow()
        assert post_unsettled(made.served.url, made.key, made.session.id) == 200
        assert len(slow.sent) == 1  # queued by the time the answer ended
        assert app.captures.idle


def test_a_refused_batch_is_kept_capture_by_capture(store: Any, tmp_path: Any) -> None:
    from kontex import bootstrap
    from kontex.adapters.local_blobs import LocalBlobs
    from kontex.services import proxy as service

    class Down:
        def send(
            self, queue: str, bodies: list[str], delay_seconds: int = 0, *, durable: bool = True
        ) -> None:
            raise RuntimeError("queue down")

    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "s"}, kontex_data_dir=tmp_path)
    made = bootstrap.Container(config, store=store, blobs=LocalBlobs(tmp_path / "blobs"))
    first, second = job("always", 1, 1), job("always", 1, 1)
    second.id = "k"
    service.queue_captures(made.deps, Down(), [first, None, second])
    kept = sorted(p.name for p in (tmp_path / "blobs" / service.UNDELIVERED).iterdir())
    assert kept == ["j.json", "k.json"]


def job(trigger: str, n: int, turns: int, tool: bool = False, tokens: int = 10) -> Any:
    history = []
    for i in range(turns - 1):
        history += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]
    content = [{"type": "text", "text": "ok"}]
    if tool:
        content.append({"type": "tool_use", "id": "t", "name": "x", "input": {}})
    return capture.CaptureJob(
        id="j",
        account_id="a",
        session_id="s",
        task_id=None,
        trigger=trigger,
        n=n,
        request={"messages": [*history, {"role": "user", "content": "q"}]},
        reply={"content": content, "usage": {"input_tokens": tokens, "output_tokens": 0}},
    )


def test_a_capture_job_travels_as_its_fields_in_json() -> None:
    """The queue message is the job's fields, nested values whole, and reads back the same."""
    import dataclasses

    made = job("on_tool_end", 1, 2, tool=True)
    made.latency_ms = 1.5
    text = made.to_json()
    assert text == json.dumps(dataclasses.asdict(made), separators=(",", ":"))
    assert capture.CaptureJob(**json.loads(text)) == made


@pytest.mark.parametrize(
    ("made", "fires"),
    [
        (job("every_n_turns", 5, 4), False),
        (job("every_n_turns", 5, 5), True),
        (job("every_n_turns", 2, 6), True),
        (job("on_tool_end", 1, 1), False),
        (job("on_tool_end", 1, 1, tool=True), True),
        (job("token_threshold", 100, 1, tokens=99), False),
        (job("token_threshold", 100, 1, tokens=100), True),
        (job("always", 1, 1), True),
    ],
)
def test_triggers(made: Any, fires: bool) -> None:
    assert capture.should_snapshot(made) is fires


def test_trigger_defaults() -> None:
    assert capture.parse_trigger(None, None) == ("always", 1)
    assert capture.parse_trigger("every_n_turns", None) == ("every_n_turns", 5)
    assert capture.parse_trigger("token_threshold", None) == ("token_threshold", 50_000)
    assert capture.parse_trigger("every_n_turns", "3") == ("every_n_turns", 3)


def test_which_headers_go_upstream_and_come_back() -> None:
    from kontex.domain.forwarding import returned_headers, upstream_headers

    sent = upstream_headers(
        {
            "Host": "kontex.example",
            "Content-Length": "12",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Transfer-Encoding": "chunked",
            "X-Kontex-Api-Key": "kontex_abcdefghijkl",
            "X-Kontex-Session-Id": "run",
            "Authorization": "Bearer kontex_abcdefghijklmnop",
            "X-Api-Key": "sk-ant-real",
            "X-Gateway": "team-a",
            "Accept-Encoding": "gzip",
            "anthropic-beta": "b1",
        }
    )
    assert sent == {
        "x-api-key": "sk-ant-real",
        "x-gateway": "team-a",
        "accept-encoding": "gzip",
        "anthropic-beta": "b1",
    }
    back = returned_headers(
        {"Content-Length": "3", "Transfer-Encoding": "chunked", "X-Custom": "1", "Via": "x"}
    )
    assert back == {"x-custom": "1", "via": "x"}
    kept = returned_headers({"Content-Length": "3", "X-Custom": "1"}, length_kept=True)
    assert kept == {"content-length": "3", "x-custom": "1"}


def test_a_json_answer_keeps_the_upstreams_length(kontex: Any, upstream: Any) -> None:
    """The body is relayed byte for byte, so the caller gets the upstream's Content-Length,
    as a direct call does, not a chunked answer; a stream stays chunked."""
    status, headers, body = call(kontex, REQUEST, x_kontex_session_id=kontex.session.id)
    assert status == 200 and json.loads(body) == reply_for(REQUEST)
    assert headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in headers
    status, headers, _ = call(kontex, {**REQUEST, "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers.get("transfer-encoding") == "chunked" and "content-length" not in headers


def test_a_named_session_is_made_once(kontex: Any, upstream: Any) -> None:
    for _ in range(2):
        assert call(kontex, REQUEST, x_kontex_session_id="batch job 7")[0] == 200
    named = [
        s
        for s in sessions.list_sessions(kontex.deps, kontex.account_id, None, 50, None).items
        if s.name == "batch job 7"
    ]
    assert len(named) == 1
    run_captures(kontex)
    assert len(snapshots.list_snapshots(kontex.deps, kontex.account_id, named[0].id).items) == 2


def test_other_paths_are_forwarded_not_captured(kontex: Any, upstream: Any) -> None:
    status, headers, body = send(
        kontex,
        "GET",
        "/proxy/v1/models?limit=2",
        {"x-kontex-api-key": kontex.key, "x-kontex-session-id": kontex.session.id},
    )
    assert status == 200 and json.loads(body)["data"][0]["id"] == "claude-fake"
    assert upstream.requests[-1][1] == {"method": "GET", "path": "/v1/models?limit=2"}
    assert kontex.queue.sent == []


def test_usage_latency_and_cost_are_recorded_once_per_call(
    kontex: Any, upstream: Any, tmp_path: Any
) -> None:
    from kontex.services import pricing, views

    # Given a prompt-cached JSON call and a streamed one, both priced models
    cached = {**REQUEST, "model": "claude-sonnet-4-5-20250929"}
    streamed = {**REQUEST, "model": "claude-haiku-4-5", "stream": True}
    for body in (cached, streamed):
        assert call(kontex, body, x_kontex_session_id=kontex.session.id)[0] == 200
    run_captures(kontex, times=2)  # redelivered: still counted once
    first, second = session_snapshots(kontex)

    # Then each snapshot carries its call's usage, latency and cost
    assert first.usage is not None and second.usage is not None
    assert (first.usage.input_tokens, first.usage.output_tokens) == (101, 25)
    assert (first.usage.cache_read_tokens, first.usage.cache_write_tokens) == (2000, 500)
    assert first.usage.cost_usd == pytest.approx(
        (101 * 3 + 25 * 15 + 2000 * 0.3 + 500 * 3.75) / 1e6
    )
    assert first.usage.latency_ms is not None and first.usage.latency_ms > 0
    assert (second.usage.input_tokens, second.usage.output_tokens) == (101, 25)  # from the SSE
    assert second.usage.cache_read_tokens is None
    assert second.usage.cost_usd == pytest.approx((101 * 1 + 25 * 5) / 1e6)
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, first.id)
    assert bundle.usage == first.usage

    # a rollback is not a call: the sums do not change
    snapshots.rollback(kontex.deps, kontex.account_id, first.id)
    stats = views.stats(kontex.deps, kontex.account_id, kontex.session.id)
    assert stats["total_snapshots"] == 3
    assert stats["usage"]["calls"] == 2
    assert stats["usage"]["input_tokens"] == 202 and stats["usage"]["output_tokens"] == 50
    assert stats["usage"]["cost_usd"] == pytest.approx(first.usage.cost_usd + second.usage.cost_usd)
    assert stats["total_tokens"] == 202 + 50 + 2500
    assert stats["context_tokens"] > 0
    account = views.usage(kontex.deps, kontex.account_id)
    assert account["usage"]["calls"] == 2 == account["usage_this_month"]["calls"]

    # an unknown model has no cost; a price file overrides the shipped table
    table = pricing.price_table()
    assert pricing.price_of("claude-fake", table) is None
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": {"claude-fake": {"input": 1, "output": 2}}}))
    priced = pricing.anthropic_usage(
        {"input_tokens": 10, "output_tokens": 5}, "claude-fake", 3.0, pricing.price_table(override)
    )
    assert priced.cost_usd == pytest.approx(20 / 1e6)


def test_a_capture_batch_is_one_unit_of_work(
    kontex: Any, upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23, captures keep pace: a queue batch of ten calls is sealed in one transaction
    (with the task it needs), in call order; redelivered, it writes nothing."""
    for n in range(10):
        body = {**REQUEST, "messages": [{"role": "user", "content": f"call {n}"}]}
        status, _, _ = call(
            kontex, body, x_kontex_session_id=kontex.session.id, x_kontex_snapshot_trigger="always"
        )
        assert status == 200
    store = kontex.deps.store
    opened: list[bool] = []
    open_tx = store._tx

    def counted(write: bool = True, durable: bool = True, autocommit: bool = False) -> Any:
        opened.append(write)
        return open_tx(write=write, durable=durable, autocommit=autocommit)

    monkeypatch.setattr(store, "_tx", counted)
    run_captures(kontex)
    # the sessions read, then tasks + ten snapshots in one write, then their events marked
    # published (each capture took three or four before: its task, its snapshot, its event)
    assert len(opened) == 3 and opened.count(True) == 2
    snaps = session_snapshots(kontex)
    assert len(snaps) == 10 and len({s.task_id for s in snaps}) == 1
    firsts = [
        snapshots.get_bundle(kontex.deps, kontex.account_id, s.id).messages[1].content
        for s in snaps
    ]
    assert firsts == [f"call {n}" for n in range(10)]
    opened.clear()
    run_captures(kontex, times=2)
    assert len(session_snapshots(kontex)) == 10 and opened.count(True) <= 2


def test_a_capture_batch_reads_each_session_once(
    kontex: Any, upstream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23, captures keep pace: a batch of six calls from two sessions reads each
    session once, and writes each call's snapshot into its own session."""
    from kontex.adapters.sql.sessions import SqlSessions

    other = sessions.create_session(kontex.deps, kontex.account_id, "second agent")
    for n in range(6):
        session_id = kontex.session.id if n % 2 == 0 else other.id
        body = {**REQUEST, "messages": [{"role": "user", "content": f"call {n}"}]}
        status, _, _ = call(
            kontex, body, x_kontex_session_id=session_id, x_kontex_snapshot_trigger="always"
        )
        assert status == 200
    read: list[str] = []
    get = SqlSessions.get

    def counted(self: Any, account_id: str, session_id: str) -> Any:
        read.append(session_id)
        return get(self, account_id, session_id)

    monkeypatch.setattr(SqlSessions, "get", counted)
    run_captures(kontex)
    assert sorted(read) == sorted([kontex.session.id, other.id])
    mine = snapshots.list_snapshots(kontex.deps, kontex.account_id, kontex.session.id).items
    theirs = snapshots.list_snapshots(kontex.deps, kontex.account_id, other.id).items
    assert len(mine) == 3 and len(theirs) == 3
