"""The fake upstreams of the proxy benchmarks, on an event loop: Anthropic's Messages API and
OpenAI's Chat Completions and Responses, answering as the fakes of the tests
(``tests/proxy/fake_anthropic.py``, ``tests/proxy/fake_openai.py``) do, from their own
functions, but served by one asyncio server (uvloop when it imports, requests parsed by
httptools) instead of an ``http.server`` thread per connection.

A benchmark's calls are the same request over and over: the answer to a given body is made
once and kept (``ANSWERS_KEPT`` bodies at most), so the fake spends a few microseconds on a
call and its share of the cores stays out of what the benchmark measures. A stream is written
an event at a time (one chunked-encoding chunk and one ``send`` each, with TCP_NODELAY, as
asyncio sets it), as the tests' fakes write it, so a proxy sees the same reads. Only the model
calls (``POST /v1/messages``, ``/v1/chat/completions``, ``/v1/responses``) and the fakes'
error models (429, 529, 500) are answered; anything else is a 404.

    python bench/upstream.py PORT   # Anthropic's API on PORT, OpenAI's on PORT + 1
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httptools

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests.proxy import fake_anthropic, fake_openai  # noqa: E402

ANTHROPIC, OPENAI = "anthropic", "openai"
ANSWERS_KEPT = 256
Answer = tuple[bytes, list[bytes]]  # the head with the body (or the first part), the rest


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
    lines = [f"HTTP/1.1 {status} {reason.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _whole(status: int, headers: list[tuple[str, str]], body: bytes) -> Answer:
    return _head(status, [*headers, ("Content-Length", str(len(body)))]) + body, []


def _chunked(status: int, headers: list[tuple[str, str]], events: Iterator[bytes]) -> Answer:
    head = _head(status, [*headers, ("Transfer-Encoding", "chunked")])
    chunks = [f"{len(event):x}\r\n".encode() + event + b"\r\n" for event in events]
    return head, [*chunks, b"0\r\n\r\n"]


def anthropic_answer(path: str, body: bytes) -> Answer:
    """What ``tests/proxy/fake_anthropic.py`` answers to ``POST path`` with ``body``."""
    common = [("request-id", "req_fake_123"), ("anthropic-ratelimit-requests-remaining", "99")]
    json_type = ("content-type", "application/json")
    if path != "/v1/messages":
        error = {"type": "error", "error": {"type": "not_found_error"}}
        return _whole(404, [json_type], json.dumps(error).encode())
    request = json.loads(body)
    if request.get("model") == "overloaded-529":
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        extra = [*common, ("x-should-retry", "true"), json_type]
        return _whole(529, extra, json.dumps(error).encode())
    if request.get("model") == "overloaded":
        error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
        return _whole(429, [*common, ("retry-after", "7"), json_type], json.dumps(error).encode())
    message = fake_anthropic.reply_for(request)
    if request.get("stream"):
        stream = [*common, ("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        return _chunked(200, stream, fake_anthropic.sse_events(message))
    return _whole(200, [*common, json_type], json.dumps(message).encode())


def openai_answer(path: str, body: bytes) -> Answer:
    """What ``tests/proxy/fake_openai.py`` answers to ``POST path`` with ``body``."""
    common = [
        ("x-request-id", "req_openai_fake"),
        ("openai-processing-ms", "7"),
        ("x-ratelimit-remaining-requests", "499"),
    ]
    json_type = ("content-type", "application/json")
    request = json.loads(body)
    if request.get("model") in fake_openai.ERRORS:
        status = fake_openai.ERRORS[request["model"]]
        error = {"error": {"message": f"fake {status}", "type": "server_error", "code": None}}
        extra = [*common, json_type, ("retry-after", "3")]
        return _whole(status, extra, json.dumps(error).encode())
    if path not in ("/v1/chat/completions", "/v1/responses"):
        error = {"error": {"message": "no such route", "type": "invalid_request_error"}}
        return _whole(404, [*common, json_type], json.dumps(error).encode())
    chat = path == "/v1/chat/completions"
    if request.get("stream"):
        events = fake_openai.chat_chunks(request) if chat else fake_openai.response_events(request)
        stream = [("x-request-id", "req_openai_fake")]
        stream.append(("content-type", "text/event-stream; charset=utf-8"))
        return _chunked(200, stream, events)
    reply = fake_openai.chat_reply(request) if chat else fake_openai.response_reply(request)
    return _whole(200, [*common, json_type], json.dumps(reply).encode())


class Answers:
    """The answer to each (path, body), made once: ``ANSWERS_KEPT`` kept, the oldest dropped."""

    def __init__(self, api: str) -> None:
        self.make = anthropic_answer if api == ANTHROPIC else openai_answer
        self.kept: collections.OrderedDict[tuple[str, bytes], Answer] = collections.OrderedDict()

    def __call__(self, method: str, path: str, body: bytes) -> Answer:
        if method != "POST":
            return _whole(404, [("content-type", "application/json")], b'{"error":"not found"}')
        key = (path, body)
        found = self.kept.get(key)
        if found is None:
            try:
                found = self.make(path, body)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                found = _whole(400, [("content-type", "application/json")], b'{"error":"bad"}')
            self.kept[key] = found
            if len(self.kept) > ANSWERS_KEPT:
                self.kept.popitem(last=False)
        return found


class Connection(asyncio.Protocol):
    """One client connection: requests parsed as they arrive, each answered at once."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools' callbacks
    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        assert transport is not None
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        method = self.parser.get_method().decode("latin-1")
        head, rest = self.answers(method, path, b"".join(self.body))
        transport.write(head)
        for part in rest:  # a stream: an event a write, as an upstream sends them
            transport.write(part)
        if not self.parser.should_keep_alive():
            transport.close()


async def serve(port: int, api: str, host: str = "127.0.0.1") -> asyncio.Server:
    answers = Answers(api)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Connection(answers), host, port, backlog=1024)


async def _main(port: int) -> None:
    servers = [await serve(port, ANTHROPIC), await serve(port + 1, OPENAI)]
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()


def run(coroutine: Any) -> Any:
    """On uvloop when it imports (as uvicorn runs the servers), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    run(_main(int(sys.argv[1])))
