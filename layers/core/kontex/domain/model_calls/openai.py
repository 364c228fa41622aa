"""OpenAI's model calls (Chat Completions, Responses), JSON or SSE, read into the shape a capture
stores: the Anthropic-style ``Message`` the capture worker reads for every API.

A reply becomes ``{"type": "message", "model", "content": [blocks], "stop_reason", "usage"}``:
text as ``text`` blocks, tool calls as ``tool_use`` (``arguments`` parsed, kept as text when
they are not JSON), reasoning (a Responses ``reasoning`` item's summary, or a compatible
server's ``reasoning_content``) as ``thinking``. Usage follows Anthropic's split: OpenAI's
prompt tokens include the cached ones, so ``input_tokens`` is the uncached part and
``cache_read_input_tokens`` the cached part (each priced at its own rate). The request becomes
``{"model", "system", "messages"}``: system and developer messages (or ``instructions``) as the
system prompt, assistant tool calls as ``tool_use`` blocks, tool results as ``tool_result``
blocks of a user message.
"""

from __future__ import annotations

import json
from typing import Any

from kontex.domain.model_calls.anthropic import parse_sse

CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"


def _arguments(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw if raw is not None else {}
    try:
        return json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return raw


def _usage(usage: dict[str, Any] | None, chat: bool) -> dict[str, int]:
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens" if chat else "input_tokens") or 0)
    output = int(usage.get("completion_tokens" if chat else "output_tokens") or 0)
    details = usage.get("prompt_tokens_details" if chat else "input_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    out = {"input_tokens": max(prompt - cached, 0), "output_tokens": output}
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


# -- replies ----------------------------------------------------------------------------------


def _chat_message(reply: dict[str, Any]) -> dict[str, Any] | None:
    choices = reply.get("choices") or []
    if not choices:
        return None
    choice = choices[0]
    said = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = said.get("reasoning_content") or said.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning})
    text = said.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    elif isinstance(text, list):
        content += [{"type": "text", "text": p.get("text", "")} for p in text if p.get("text")]
    if said.get("refusal"):
        content.append({"type": "text", "text": said["refusal"]})
    for call in said.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": _arguments(function.get("arguments")),
            }
        )
    return {
        "type": "message",
        "id": reply.get("id"),
        "role": "assistant",
        "model": reply.get("model"),
        "content": content,
        "stop_reason": choice.get("finish_reason"),
        "usage": _usage(reply.get("usage"), chat=True),
    }


def chat_from_stream(raw: bytes) -> dict[str, Any] | None:
    """The Chat Completion a stream of ``chat.completion.chunk`` events adds up to (tool call
    arguments joined by index, usage from the last chunk when ``include_usage`` asked)."""
    reply: dict[str, Any] | None = None
    message: dict[str, Any] = {"role": "assistant"}
    texts: list[str] = []
    thoughts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for _, data in parse_sse(raw):
        if reply is None:
            reply = {"id": data.get("id"), "model": data.get("model"), "usage": None}
        if data.get("usage"):
            reply["usage"] = data["usage"]
        for choice in data.get("choices") or []:
            if int(choice.get("index") or 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                texts.append(delta["content"])
            for key in ("reasoning_content", "reasoning"):
                if isinstance(delta.get(key), str):
                    thoughts.append(delta[key])
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(
                    int(part.get("index") or 0),
                    {"id": "", "function": {"name": "", "arguments": ""}},
                )
                if part.get("id"):
                    call["id"] = part["id"]
                function = part.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if reply is None:
        return None
    message["content"] = "".join(texts)
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    reply["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
    return _chat_message(reply)


def _responses_message(reply: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for item in reply.get("output") or []:
        kind = item.get("type")
        if kind == "reasoning":
            parts = [p.get("text", "") for p in item.get("summary") or []]
            parts += [p.get("text", "") for p in item.get("content") or []]
            text = "\n\n".join(p for p in parts if p)
            if text:
                content.append({"type": "thinking", "thinking": text})
        elif kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    content.append({"type": "text", "text": part.get("text", "")})
                elif part.get("type") == "refusal":
                    content.append({"type": "text", "text": part.get("refusal", "")})
        elif kind == "function_call":
            content.append(
                {
                    "type": "tool_use",
                    "id": item.get("call_id") or item.get("id", ""),
                    "name": item.get("name", ""),
                    "input": _arguments(item.get("arguments")),
                }
            )
    calls = any(b["type"] == "tool_use" for b in content)
    return {
        "type": "message",
        "id": reply.get("id"),
        "role": "assistant",
        "model": reply.get("model"),
        "content": content,
        "stop_reason": "tool_use" if calls else reply.get("status"),
        "usage": _usage(reply.get("usage"), chat=False),
    }


def responses_from_stream(raw: bytes) -> dict[str, Any] | None:
    """The Response of a stream: the one its ``response.completed`` (or ``.incomplete``) event
    carries whole."""
    final = None
    for name, data in parse_sse(raw):
        kind = data.get("type", name)
        if kind in ("response.completed", "response.incomplete") and data.get("response"):
            final = data["response"]
    return final


def reply_of(path: str, raw: bytes, is_stream: bool) -> dict[str, Any] | None:
    """The reply of a Chat Completions or Responses call, in the captured shape."""
    chat = path.rstrip("/") == CHAT
    if is_stream:
        if chat:
            return chat_from_stream(raw)
        found = responses_from_stream(raw)
        return _responses_message(found) if found else None
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(parsed, dict):
        return None
    if chat and parsed.get("object") == "chat.completion":
        return _chat_message(parsed)
    if not chat and parsed.get("object") == "response":
        return _responses_message(parsed)
    return None


# -- requests ---------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("text")
        )
    return ""


def _parts(content: Any) -> str | list[dict[str, Any]]:
    """User or assistant content: text as is, parts as text blocks (others kept as given)."""
    if isinstance(content, str) or content is None:
        return content or ""
    out = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") in ("text", "input_text", "output_text"):
            out.append({"type": "text", "text": part.get("text", "")})
        else:
            out.append(part)
    return out


def _tool_result(call_id: Any, output: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": str(call_id or ""), "content": output}


def _chat_request(request: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for said in request.get("messages") or []:
        if not isinstance(said, dict):
            continue
        role = said.get("role")
        if role in ("system", "developer"):
            system.append(_text(said.get("content")))
        elif role == "tool":
            messages.append(
                {
                    "role": "user",
                    "content": [_tool_result(said.get("tool_call_id"), said.get("content"))],
                }
            )
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            content = _parts(said.get("content"))
            if isinstance(content, str):
                blocks += [{"type": "text", "text": content}] if content else []
            else:
                blocks += content
            for call in said.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": _arguments(function.get("arguments")),
                    }
                )
            messages.append({"role": "assistant", "content": blocks})
        elif role == "user":
            messages.append({"role": "user", "content": _parts(said.get("content"))})
    return system, messages


def _responses_request(request: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    system = [request["instructions"]] if isinstance(request.get("instructions"), str) else []
    given = request.get("input")
    if isinstance(given, str):
        return system, [{"role": "user", "content": given}]
    messages: list[dict[str, Any]] = []
    for item in given or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system.append(_text(item.get("content")))
            elif role in ("user", "assistant"):
                messages.append({"role": role, "content": _parts(item.get("content"))})
        elif kind == "function_call":
            block = {
                "type": "tool_use",
                "id": item.get("call_id") or item.get("id", ""),
                "name": item.get("name", ""),
                "input": _arguments(item.get("arguments")),
            }
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant" and isinstance(last["content"], list):
                last["content"].append(block)
            else:
                messages.append({"role": "assistant", "content": [block]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "user", "content": [_tool_result(item.get("call_id"), item.get("output"))]}
            )
    return system, messages


def request_of(path: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request in the captured shape: ``{"model", "system"?, "messages"}``."""
    chat = path.rstrip("/") == CHAT
    system, messages = _chat_request(request) if chat else _responses_request(request)
    out: dict[str, Any] = {"model": request.get("model"), "messages": messages}
    joined = "\n\n".join(s for s in system if s)
    if joined:
        out["system"] = joined
    return out
