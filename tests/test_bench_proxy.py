"""The proxy benchmark's own tools, checked cheaply: the event-loop fakes of ``bench/upstream.py``
answer as the tests' fakes do (the same bytes, through the real SDKs too), and
``bench/load.py`` sends the request the SDK would send, times every call, and fails on an
answer that is not a whole 200. Timings are printed by the benchmark, never asserted."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from bench import proxy, upstream
from tests.e2e.stack import free_port
from tests.proxy.fake_anthropic import FakeAnthropic
from tests.proxy.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def fast() -> Iterator[tuple[str, str]]:
    """bench/upstream.py's two fakes on an event loop of their own: (Anthropic URL, OpenAI's)."""
    loop = asyncio.new_event_loop()
    servers: list[Any] = []

    async def start() -> None:
        servers.extend(
            [await upstream.serve(0, upstream.ANTHROPIC), await upstream.serve(0, upstream.OPENAI)]
        )

    loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    try:
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        for server in servers:
            loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def post(url: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.headers["content-type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read()


CASES = [
    (
        "anthropic",
        "/v1/messages",
        {
            "model": "claude-fake",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "weather?"}],
        },
    ),
    (
        "anthropic",
        "/v1/messages",
        {
            "model": "claude-fake",
            "stream": True,
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    (
        "anthropic",
        "/v1/messages",
        {"model": "overloaded", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    ),
    (
        "openai",
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "weather?"}]},
    ),
    (
        "openai",
        "/v1/chat/completions",
        {
            "model": "gpt-4o-mini",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    ("openai", "/v1/responses", {"model": "gpt-4o-mini", "input": "weather?"}),
    ("openai", "/v1/responses", {"model": "gpt-4o-mini", "stream": True, "input": "hi"}),
    (
        "openai",
        "/v1/chat/completions",
        {"model": "rate-limited", "messages": [{"role": "user", "content": "hi"}]},
    ),
]


@pytest.mark.parametrize(("api", "path", "body"), CASES)
def test_the_event_loop_fakes_answer_as_the_tests_fakes_do(
    fast: tuple[str, str], api: str, path: str, body: dict[str, Any]
) -> None:
    with FakeAnthropic().running() as claude, FakeOpenAI().running() as gpt:
        threaded = (claude if api == "anthropic" else gpt).url
        expected = post(threaded + path, body)
    got = post(fast[0 if api == "anthropic" else 1] + path, body)
    assert got == expected
    # a second call is answered from what the first made, the same
    assert post(fast[0 if api == "anthropic" else 1] + path, body) == expected


def test_the_sdks_read_the_event_loop_fakes(fast: tuple[str, str]) -> None:
    claude, gpt = fast
    client = anthropic.Anthropic(api_key="sk", base_url=claude, max_retries=0)
    message = [{"role": "user", "content": "hi"}]
    with client.messages.stream(model="claude-fake", max_tokens=5, messages=message) as stream:
        assert "".join(stream.text_stream) == "Echo: hi"
    chat = openai.OpenAI(api_key="sk", base_url=f"{gpt}/v1", max_retries=0)
    pieces = chat.chat.completions.create(model="gpt-4o-mini", messages=message, stream=True)
    assert "".join(p.choices[0].delta.content or "" for p in pieces if p.choices) == "Echo: hi"


def test_the_recorded_request_is_the_sdks(fast: tuple[str, str]) -> None:
    make = proxy._clients(
        "anthropic", "kontex alone", "http://127.0.0.1:9", {"X-Kontex-Api-Key": "k"}
    )
    sent = proxy.sdk_request(make, proxy.call_anthropic, True)
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /proxy/v1/messages HTTP/1.1"
    headers = {k.lower(): v for k, _, v in (line.partition(b": ") for line in lines[1:])}
    assert headers[b"host"] == b"127.0.0.1:9"
    assert headers[b"x-kontex-api-key"] == b"k"
    assert headers[b"user-agent"].startswith(b"Anthropic/Python")
    assert int(headers[b"content-length"]) == len(body)
    assert json.loads(body)["stream"] is True


@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_load_generator_times_every_call(fast: tuple[str, str], api: str, stream: bool) -> None:
    url = fast[0 if api == "anthropic" else 1]
    call = proxy.call_anthropic if api == "anthropic" else proxy.call_openai
    request = proxy.sdk_request(proxy._clients(api, "direct", url, {}), call, stream)
    latencies, firsts, rps, cpu = proxy.measure_load(api, url, request, stream, 3, 40)
    assert len(latencies) == 40 and all(ms > 0 for ms in latencies)
    # a stream's first token is timed in every call, before its end; JSON has none
    assert len(firsts) == (40 if stream else 0)
    assert rps > 0 and cpu >= 0


def test_the_load_generator_fails_on_an_error_answer(fast: tuple[str, str]) -> None:
    body = json.dumps({"model": "overloaded", "max_tokens": 5, "messages": []}).encode()
    request = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body
    with pytest.raises(RuntimeError, match="status 429"):
        proxy.measure_load("anthropic", fast[0], request, False, 2, 10)


def test_the_alone_proxy_queues_its_captures_where_no_worker_takes_them(
    fast: tuple[str, str], tmp_path: Any
) -> None:
    """By default the alone proxy's captures go to a queue file of its own, so that nothing
    needs stopping while its rows run (a process stopped holding the shared queue's writer lock
    once hung the benchmark); ``--alone-workers`` queues them for `kontex dev`'s workers."""
    from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue

    env = {"ANTHROPIC_API_URL": fast[0], "OPENAI_API_URL": fast[1]}
    key = proxy.make_key(tmp_path, env)
    headers = {
        "X-Kontex-Api-Key": key,
        "X-Kontex-Session-Id": "bench-alone",  # a name: made on first use
        "X-Kontex-Snapshot-Trigger": "always",
    }
    for shared in (False, True):
        with proxy.kontex_alone(tmp_path, free_port(), env, shared_queue=shared) as alone:
            client = anthropic.Anthropic(
                api_key="sk", base_url=f"{alone.url}/proxy", default_headers=headers
            )
            client.messages.create(
                model="claude-fake", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        pending = {}
        for name in (proxy.ALONE_QUEUE_FILE, QUEUE_FILE):
            queue = LocalQueue(tmp_path / name)
            pending[name] = queue.pending()
            queue.close()
        expected = QUEUE_FILE if shared else proxy.ALONE_QUEUE_FILE
        assert pending[expected] >= 1, pending
        if not shared:
            assert pending[QUEUE_FILE] == 0, pending
