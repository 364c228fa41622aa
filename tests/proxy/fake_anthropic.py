"""A local fake of the Anthropic Messages API: JSON and SSE answers, errors, and a record of
what it was sent. Answers depend only on the request, so a direct call and a proxied call can
be compared byte for byte."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def reply_for(request: dict[str, Any]) -> dict[str, Any]:
    last = request["messages"][-1]["content"]
    text = last if isinstance(last, str) else json.dumps(last)
    content: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": f"Thinking about: {text[:40]}", "signature": "sig=="},
        {"type": "text", "text": f"Echo: {text[:60]}"},
    ]
    if "weather" in text:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_fake_1",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "c"},
            }
        )
    return {
        "id": "msg_fake_" + str(abs(hash(text)) % 10**8),
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "claude-fake"),
        "content": content,
        "stop_reason": "tool_use" if len(content) == 3 else "end_turn",
        "stop_sequence": None,
        "usage": usage_for(request),
    }


def usage_for(request: dict[str, Any]) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 100 + len(request["messages"]), "output_tokens": 25}
    if str(request.get("model", "")).startswith("claude-sonnet"):  # a prompt-cached call
        usage.update(cache_read_input_tokens=2000, cache_creation_input_tokens=500)
    return usage


def sse_events(message: dict[str, Any]) -> Iterator[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    yield event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(message["content"]):
        empty = {
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
            "text": {"type": "text", "text": ""},
            "tool_use": {**block, "input": {}},
        }[block["type"]]
        yield event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": empty},
        )
        if block["type"] == "thinking":
            for piece in (block["thinking"][:10], block["thinking"][10:]):
                yield event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "thinking_delta", "thinking": piece},
                    },
                )
            yield event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                },
            )
        elif block["type"] == "text":
            for piece in (block["text"][:5], block["text"][5:]):
                yield event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
        else:
            raw = json.dumps(block["input"])
            for piece in (raw[:7], raw[7:]):
                yield event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
        yield event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
    )
    yield event("message_stop", {"type": "message_stop"})


class FakeAnthropic:
    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.delay = 0.0
        self.pause = 0.0  # seconds between a stream's events
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body are separate writes: without TCP_NODELAY, Nagle's algorithm
            # holds the body until the client's delayed ACK (about 40 ms per answer)
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, payload: Any, extra: list[tuple[str, str]]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in [*extra, ("content-type", "application/json")]:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append((headers, {"method": "GET", "path": self.path}))
                if self.path.split("?")[0] == "/v1/models":
                    self._json(
                        200,
                        {
                            "data": [
                                {
                                    "type": "model",
                                    "id": "claude-fake",
                                    "display_name": "Claude Fake",
                                    "created_at": "2025-01-01T00:00:00Z",
                                }
                            ],
                            "has_more": False,
                            "first_id": "claude-fake",
                            "last_id": "claude-fake",
                        },
                        [("request-id", "req_models"), ("x-fake-echo", self.path)],
                    )
                    return
                self._json(404, {"type": "error", "error": {"type": "not_found_error"}}, [])

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if fake.delay:
                    time.sleep(fake.delay)
                common = [
                    ("request-id", "req_fake_123"),
                    ("anthropic-ratelimit-requests-remaining", "99"),
                ]
                if self.path.split("?")[0] == "/v1/messages/count_tokens":
                    count = sum(len(json.dumps(m)) for m in body.get("messages", [])) // 4
                    self._json(200, {"input_tokens": count}, common)
                    return
                if body.get("model") == "overloaded-529":
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    self._json(
                        529,
                        {"type": "error", "error": error},
                        [*common, ("x-should-retry", "true")],
                    )
                    return
                if body.get("model") == "overloaded":
                    payload = json.dumps(
                        {
                            "type": "error",
                            "error": {"type": "rate_limit_error", "message": "slow down"},
                        }
                    ).encode()
                    self.send_response(429)
                    for name, value in [
                        *common,
                        ("retry-after", "7"),
                        ("content-type", "application/json"),
                    ]:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                message = reply_for(body)
                if body.get("stream"):
                    self.send_response(200)
                    for name, value in [
                        *common,
                        ("content-type", "text/event-stream"),
                        ("cache-control", "no-cache"),
                    ]:
                        self.send_header(name, value)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in sse_events(message):
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                        time.sleep(fake.pause)
                    self.wfile.write(b"0\r\n\r\n")
                    return
                payload = json.dumps(message).encode()
                self.send_response(200)
                for name, value in [*common, ("content-type", "application/json")]:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[FakeAnthropic]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
