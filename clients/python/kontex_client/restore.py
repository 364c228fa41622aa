"""Resume a run from any snapshot: its bundle as the arguments of the Anthropic Messages API
(``to_anthropic``) or of OpenAI Chat Completions (``to_openai``). No dependencies.

Messages may have been captured in either shape (the proxy keeps Anthropic content blocks;
OTLP and the agent frameworks give OpenAI-style ``tool_calls`` and ``role: "tool"`` messages):
both are read, and the result is valid for the target API:

- every tool call is answered right after the message that made it: a result found later in
  the history is moved up; a call without a result in the messages is answered from the
  bundle's ``tool_calls`` (its ``output``, ``is_error`` when its status is ``error``) and
  dropped when the bundle has none either (a call still pending cannot be resumed);
- a result whose call is not in the messages (cut off by a context window) is dropped;
- Anthropic: system messages become ``system``; consecutive turns of one role are merged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["to_anthropic", "to_openai"]


def _as_dict(bundle: Any) -> dict[str, Any]:
    if hasattr(bundle, "model_dump"):
        dumped: dict[str, Any] = bundle.model_dump(mode="json")
        return dumped
    if isinstance(bundle, Mapping):
        return dict(bundle)
    raise TypeError("a bundle is a kontex_client.Bundle or a dict read from the API")


def _text(content: Any) -> str:
    """The text of a content (a string, or the text blocks of a list)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)
    return json.dumps(content, default=str)


def _output_text(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, default=str)


def _arguments(value: Any) -> Any:
    """Tool input as an object (OpenAI sends it as a JSON string)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {"input": value}
    return value if value is not None else {}


# -- a neutral form: turns of (role, parts), parts being text, tool_use, tool_result ---------


def _neutral(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts, and turns ``{"role": user|assistant, "parts": [...]}`` where a part is
    ``{"type": "text", "text"}``, ``{"type": "tool_use", "id", "name", "input"}``,
    ``{"type": "tool_result", "id", "content", "is_error"}`` or another block kept as is."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role == "system":
            text = _text(content)
            if text:
                system.append(text)
            continue
        parts: list[dict[str, Any]] = []
        if role == "tool":
            parts.append(
                {
                    "type": "tool_result",
                    "id": message.get("tool_call_id") or message.get("tool_use_id") or "",
                    "content": _text(content),
                    "is_error": bool(message.get("is_error")),
                }
            )
            turns.append({"role": "user", "parts": parts})
            continue
        if isinstance(content, str):
            if content:
                parts.append({"type": "text", "text": content})
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, str):
                    parts.append({"type": "text", "text": block})
                elif not isinstance(block, Mapping):
                    continue
                elif block.get("type") == "tool_use":
                    parts.append(
                        {
                            "type": "tool_use",
                            "id": block.get("id", ""),
                            "name": block.get("name", ""),
                            "input": _arguments(block.get("input")),
                        }
                    )
                elif block.get("type") == "tool_result":
                    parts.append(
                        {
                            "type": "tool_result",
                            "id": block.get("tool_use_id", ""),
                            "content": block.get("content", ""),
                            "is_error": bool(block.get("is_error")),
                        }
                    )
                elif block.get("type") in ("text", "input_text", "output_text"):
                    parts.append({"type": "text", "text": block.get("text", "")})
                else:
                    parts.append(dict(block))
        for call in message.get("tool_calls") or []:  # OpenAI-style assistant tool calls
            function = call.get("function") or {}
            parts.append(
                {
                    "type": "tool_use",
                    "id": call.get("id", ""),
                    "name": function.get("name") or call.get("name", ""),
                    "input": _arguments(function.get("arguments", call.get("arguments"))),
                }
            )
        turns.append({"role": "assistant" if role == "assistant" else "user", "parts": parts})
    return system, turns


def _paired(turns: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns where each tool_use is answered in the turn right after its own, and every
    tool_result answers a tool_use of the turn before."""
    results: dict[str, dict[str, Any]] = {}
    for turn in turns:
        for part in turn["parts"]:
            if part["type"] == "tool_result" and part["id"]:
                results.setdefault(part["id"], part)
    recorded = {c.get("id"): c for c in calls if c.get("id")}
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # answers owed to the previous assistant turn
    for turn in turns:
        if turn["role"] == "assistant":
            if pending:
                out.append({"role": "user", "parts": pending})
                pending = []
            parts: list[dict[str, Any]] = []
            for part in turn["parts"]:
                if part["type"] != "tool_use":
                    parts.append(part)
                    continue
                answer = results.pop(part["id"], None)
                if answer is None:
                    call = recorded.get(part["id"])
                    if call is None or call.get("status") == "pending":
                        continue  # never answered: a call still pending cannot be resumed
                    answer = {
                        "type": "tool_result",
                        "id": part["id"],
                        "content": _output_text(call.get("output")),
                        "is_error": call.get("status") == "error",
                    }
                parts.append(part)
                pending.append(answer)
            if parts:
                out.append({"role": "assistant", "parts": parts})
            continue
        rest = [p for p in turn["parts"] if p["type"] != "tool_result"]
        if pending:
            rest = pending + rest
            pending = []
        if rest:
            out.append({"role": "user", "parts": rest})
    if pending:
        out.append({"role": "user", "parts": pending})
    return out


def to_anthropic(bundle: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for ``client.messages.create(system=..., messages=...)``;
    ``system`` is None when the bundle has no system message."""
    content = _as_dict(bundle)
    system, turns = _neutral(content.get("messages") or [])
    messages: list[dict[str, Any]] = []
    for turn in _paired(turns, content.get("tool_calls") or []):
        blocks: list[dict[str, Any]] = []
        for part in turn["parts"]:
            if part["type"] == "tool_use":
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": part["id"],
                        "name": part["name"],
                        "input": part["input"],
                    }
                )
            elif part["type"] == "tool_result":
                block = {"type": "tool_result", "tool_use_id": part["id"]}
                block["content"] = part["content"]
                if part["is_error"]:
                    block["is_error"] = True
                blocks.append(block)
            else:
                blocks.append(part)
        if messages and messages[-1]["role"] == turn["role"]:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": turn["role"], "content": blocks})
    for message in messages:  # a lone text block reads best as a plain string
        blocks = message["content"]
        if (
            len(blocks) == 1
            and blocks[0].get("type") == "text"
            and set(blocks[0])
            == {
                "type",
                "text",
            }
        ):
            message["content"] = blocks[0]["text"]
    return ("\n\n".join(system) if system else None), messages


def to_openai(bundle: Any) -> list[dict[str, Any]]:
    """``messages`` for ``client.chat.completions.create(messages=...)``: system first,
    assistant ``tool_calls`` each followed by its ``role: "tool"`` answer."""
    content = _as_dict(bundle)
    system, turns = _neutral(content.get("messages") or [])
    messages: list[dict[str, Any]] = [{"role": "system", "content": s} for s in system]
    for turn in _paired(turns, content.get("tool_calls") or []):
        texts = [p for p in turn["parts"] if p["type"] not in ("tool_use", "tool_result")]
        if turn["role"] == "assistant":
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "\n".join(_text([p]) for p in texts) or None,
            }
            calls = [
                {
                    "id": p["id"],
                    "type": "function",
                    "function": {"name": p["name"], "arguments": json.dumps(p["input"])},
                }
                for p in turn["parts"]
                if p["type"] == "tool_use"
            ]
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
            continue
        for part in turn["parts"]:
            if part["type"] == "tool_result":
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": part["id"],
                        "content": _text(part["content"]),
                    }
                )
        if texts:
            if all(p["type"] == "text" for p in texts):
                messages.append({"role": "user", "content": "\n".join(p["text"] for p in texts)})
            else:
                messages.append({"role": "user", "content": texts})
    return messages
