"""A local fake of OpenAI's API: Chat Completions and Responses, JSON and SSE (tool calls,
reasoning, usage with cached tokens), errors (429, 529, 500), the model list, and a record of
what it was sent. Answers depend only on the request, so a direct call and a proxied call can
be compared byte for byte."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED = 1_760_000_000
ERRORS = {"rate-limited": 429, "overloaded-529": 529, "broken-500": 500}


def _last_text(request: dict[str, Any]) -> str:
    if "messages" in request:
        content = request["messages"][-1].get("content")
    else:
        given = request.get("input")
        content = given if isinstance(given, str) else given[-1].get("content", given[-1])
    return content if isinstance(content, str) else json.dumps(content)


def usage_of(request: dict[str, Any], chat: bool) -> dict[str, Any]:
    cached = 1024 if str(request.get("model", "")).startswith("gpt-4o") else 0
    prompt, output = 1200 + len(_last_text(request)), 30
    if chat:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": prompt + output,
    }


def chat_reply(request: dict[str, Any]) -> dict[str, Any]:
    text = _last_text(request)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": f"Echo: {text[:60]}",
        "refusal": None,
    }
    finish = "stop"
    if "weather" in text:
        message["tool_calls"] = [
            {
                "id": "call_fake_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'},
            }
        ]
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fake" + str(abs(hash(text)) % 10**8),
        "object": "chat.completion",
        "created": CREATED,
        "model": request.get("model", "gpt-fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage_of(request, chat=True),
        "system_fingerprint": "fp_fake",
    }


def chat_chunks(request: dict[str, Any]) -> Iterator[bytes]:
    reply = chat_reply(request)
    message = reply["choices"][0]["message"]
    base = {k: reply[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    for piece in (message["content"][:5], message["content"][5:]):
        yield chunk({"content": piece})
    for index, call in enumerate(message.get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        start = {"index": index, "id": call["id"], "type": "function"}
        start["function"] = {"name": call["function"]["name"], "arguments": ""}
        yield chunk({"tool_calls": [start]})
        for piece in (arguments[:9], arguments[9:]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, reply["choices"][0]["finish_reason"])
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {**base, "choices": [], "usage": reply["usage"]}
        yield f"data: {json.dumps(usage)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def response_reply(request: dict[str, Any]) -> dict[str, Any]:
    text = _last_text(request)
    output: list[dict[str, Any]] = [
        {
            "id": "rs_fake_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": f"Thinking about: {text[:40]}"}],
        },
        {
            "id": "msg_fake_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": f"Echo: {text[:60]}", "annotations": []}],
        },
    ]
    if "weather" in text:
        output.append(
            {
                "id": "fc_fake_1",
                "type": "function_call",
                "call_id": "call_fake_2",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
                "status": "completed",
            }
        )
    return {
        "id": "resp_fake" + str(abs(hash(text)) % 10**8),
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "model": request.get("model", "gpt-fake"),
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage_of(request, chat=False),
    }


def response_events(request: dict[str, Any]) -> Iterator[bytes]:
    reply = response_reply(request)
    sequence = iter(range(1000))

    def event(kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": next(sequence), **data}
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

    begun = {**reply, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=begun)
    for index, item in enumerate(reply["output"]):
        yield event("response.output_item.added", output_index=index, item=item)
        if item["type"] == "message":
            text = item["content"][0]["text"]
            for piece in (text[:5], text[5:]):
                yield event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=reply)


class FakeOpenAI:
    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, extra: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for name, value in [
                    ("x-request-id", "req_openai_fake"),
                    ("openai-processing-ms", "7"),
                    ("x-ratelimit-remaining-requests", "499"),
                    *extra,
                ]:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, payload: Any, extra: list[tuple[str, str]] = []) -> None:  # noqa: B006
                self._send(
                    status,
                    json.dumps(payload).encode(),
                    [("content-type", "application/json"), *extra],
                )

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(
                    (
                        {k.lower(): v for k, v in self.headers.items()},
                        {"method": "GET", "path": self.path},
                    )
                )
                if self.path.split("?")[0] == "/v1/models":
                    model = {
                        "id": "gpt-fake",
                        "object": "model",
                        "created": CREATED,
                        "owned_by": "fake",
                    }
                    self._json(200, {"object": "list", "data": [model]})
                    return
                self._json(
                    404, {"error": {"message": "no such route", "type": "invalid_request_error"}}
                )

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                path = self.path.split("?")[0]
                if body.get("model") in ERRORS:
                    status = ERRORS[body["model"]]
                    error = {"message": f"fake {status}", "type": "server_error", "code": None}
                    self._json(status, {"error": error}, [("retry-after", "3")])
                    return
                if path not in ("/v1/chat/completions", "/v1/responses"):
                    self._json(
                        404,
                        {"error": {"message": "no such route", "type": "invalid_request_error"}},
                    )
                    return
                chat = path == "/v1/chat/completions"
                if not body.get("stream"):
                    self._json(200, chat_reply(body) if chat else response_reply(body))
                    return
                self.send_response(200)
                for name, value in [
                    ("x-request-id", "req_openai_fake"),
                    ("content-type", "text/event-stream; charset=utf-8"),
                ]:
                    self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in chat_chunks(body) if chat else response_events(body):
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[FakeOpenAI]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
