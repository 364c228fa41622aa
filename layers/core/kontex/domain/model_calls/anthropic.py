"""The assistant's reply, reassembled from a JSON answer or an SSE stream, for capture."""

from __future__ import annotations

import json
from typing import Any


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a complete Server-Sent Events body."""
    events = []
    for block in raw.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            try:
                events.append((name, json.loads("\n".join(data))))
            except json.JSONDecodeError:
                continue
    return events


def message_from_stream(raw: bytes) -> dict[str, Any] | None:
    """The final ``Message`` of a streamed answer: text, thinking and tool_use blocks rebuilt,
    usage from ``message_start`` and ``message_delta``."""
    message: dict[str, Any] | None = None
    partial_json: dict[int, str] = {}
    for name, data in parse_sse(raw):
        kind = data.get("type", name)
        if kind == "message_start":
            message = dict(data.get("message") or {})
            message["content"] = list(message.get("content") or [])
            message["usage"] = dict(message.get("usage") or {})
        elif message is None:
            continue
        elif kind == "content_block_start":
            index = int(data.get("index", len(message["content"])))
            while len(message["content"]) <= index:
                message["content"].append({})
            message["content"][index] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            index = int(data.get("index", 0))
            if index >= len(message["content"]):
                continue
            block, delta = message["content"][index], data.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif dtype == "signature_delta":
                block["signature"] = block.get("signature", "") + delta.get("signature", "")
            elif dtype == "input_json_delta":
                partial_json[index] = partial_json.get(index, "") + delta.get("partial_json", "")
        elif kind == "content_block_stop":
            index = int(data.get("index", 0))
            if index in partial_json and index < len(message["content"]):
                text = partial_json.pop(index)
                try:
                    message["content"][index]["input"] = json.loads(text) if text else {}
                except json.JSONDecodeError:
                    message["content"][index]["input"] = text
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            for key in ("stop_reason", "stop_sequence"):
                if key in delta:
                    message[key] = delta[key]
            message["usage"].update(data.get("usage") or {})
    return message


def reply_of(raw: bytes, is_stream: bool) -> dict[str, Any] | None:
    if is_stream:
        return message_from_stream(raw)
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) and parsed.get("type") == "message" else None
