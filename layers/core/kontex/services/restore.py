"""A snapshot's conversation made ready to send again to a model API (Anthropic or OpenAI).

A bundle keeps messages as they were captured: roles ``system | user | assistant | tool``,
content a string or Anthropic-style blocks (``text``, ``tool_use``, ``tool_result``, ...), and
messages written in OpenAI's shape keep their ``tool_calls`` / ``tool_call_id`` keys. The APIs
are stricter than that, so the conversion:

- Anthropic: system messages become the separate ``system`` text; ``tool`` messages become
  ``user`` messages of ``tool_result`` blocks; consecutive messages of one role merge (tool
  results first); thinking blocks without a signature are dropped (the API refuses them).
- OpenAI (Chat Completions): ``tool_use`` blocks become the assistant's ``tool_calls``
  (``arguments`` as a JSON string), each ``tool_result`` a ``tool`` message after it, images
  ``image_url`` parts.
- Both: every tool call is answered right after the message that made it, as both APIs
  require. A call with no recorded result gets an error result saying so; a result whose call
  is not in the message before it becomes plain text. Each change is listed in ``repairs``.

Pure functions over plain data (no I/O), so the Python client can mirror them exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from kontex.domain.models import Message

Format = Literal["anthropic", "openai"]
FORMATS: tuple[Format, ...] = ("anthropic", "openai")
NO_RESULT = "No result was recorded for this tool call when the snapshot was taken."


@dataclass
class Restored:
    """Messages ready for one API. ``system`` is set for Anthropic only (OpenAI keeps system
    messages in ``messages``)."""

    format: Format
    messages: list[dict[str, Any]]
    system: str | None = None
    repairs: list[str] = field(default_factory=list)


def restore(messages: list[Message] | list[dict[str, Any]], format: Format) -> Restored:
    plain = [m.model_dump(mode="json") if isinstance(m, Message) else dict(m) for m in messages]
    if format == "anthropic":
        return to_anthropic(plain)
    if format == "openai":
        return to_openai(plain)
    raise ValueError(f"format must be one of: {', '.join(FORMATS)}")


# -- shared helpers -----------------------------------------------------------------------------


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [b if isinstance(b, dict) else {"type": "text", "text": str(b)} for b in content]
    return [] if content is None else [{"type": "text", "text": json.dumps(content)}]


def _text_of(content: Any) -> str:
    """The text of a string, of text blocks, or a JSON rendering of anything else."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, str):
                parts.append(block)
            else:
                parts.append(json.dumps(block, default=str))
        return "\n".join(p for p in parts if p)
    return json.dumps(content, default=str)


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return {"arguments": raw}
    return raw if raw is not None else {}


def _openai_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """``tool_use`` blocks of the OpenAI-shaped ``tool_calls`` key of an assistant message."""
    uses = []
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") or {}
        uses.append(
            {
                "type": "tool_use",
                "id": str(call.get("id", "")),
                "name": str(function.get("name") or call.get("name") or ""),
                "input": _arguments(function.get("arguments", call.get("arguments"))),
            }
        )
    return uses


def _canonical(messages: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(role, blocks) with OpenAI-shaped tool calls and results turned into blocks."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        role = str(message.get("role", "user"))
        blocks = _blocks(message.get("content"))
        if role == "assistant":
            known = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
            blocks += [u for u in _openai_calls(message) if u["id"] not in known]
        if role == "tool" and not any(b.get("type") == "tool_result" for b in blocks):
            call_id = message.get("tool_call_id")
            if call_id:
                blocks = [
                    {
                        "type": "tool_result",
                        "tool_use_id": str(call_id),
                        "content": _text_of(message.get("content")),
                    }
                ]
        out.append((role, blocks))
    return out


def _paired(
    turns: list[tuple[str, list[dict[str, Any]]]], repairs: list[str]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Turns (system apart) where each assistant's tool calls are answered by the next turn.

    Results are moved to the front of the next user turn; a missing one is added as an error
    result, and a result answering no call of the turn before becomes text.
    """
    merged: list[tuple[str, list[dict[str, Any]]]] = []
    for role, blocks in turns:
        role = "user" if role == "tool" else role
        if role == "system":
            merged.append((role, blocks))
            continue
        last = next((i for i in range(len(merged) - 1, -1, -1) if merged[i][0] != "system"), None)
        if last is not None and merged[last][0] == role:
            merged[last] = (role, merged[last][1] + blocks)
        else:
            merged.append((role, list(blocks)))

    out: list[tuple[str, list[dict[str, Any]]]] = []
    pending: list[dict[str, Any]] = []  # tool_use blocks of the last assistant turn
    deferred: list[tuple[str, list[dict[str, Any]]]] = []  # system turns between call and result
    for role, blocks in merged:
        if role == "system":
            (deferred if pending else out).append((role, blocks))
            continue
        if role == "assistant":
            if pending:  # the calls of an earlier assistant turn were never answered
                out.append(("user", _missing(pending, repairs)))
                out.extend(deferred)
                deferred = []
            out.append((role, blocks))
            pending = [b for b in blocks if b.get("type") == "tool_use"]
            continue
        wanted = {str(b.get("id")) for b in pending}
        results, rest = [], []
        for block in blocks:
            if block.get("type") != "tool_result":
                rest.append(block)
            elif str(block.get("tool_use_id")) in wanted:
                wanted.discard(str(block.get("tool_use_id")))
                results.append(block)
            else:
                repairs.append(
                    f"tool result {block.get('tool_use_id')} answers no call of the message"
                    " before it: kept as text"
                )
                rest.append(
                    {
                        "type": "text",
                        "text": f"[tool result {block.get('tool_use_id')}] "
                        + _text_of(block.get("content")),
                    }
                )
        unanswered = [b for b in pending if str(b.get("id")) in wanted]
        out.append((role, _missing(unanswered, repairs) + results + rest))
        out.extend(deferred)
        pending, deferred = [], []
    if pending:
        out.append(("user", _missing(pending, repairs)))
    out.extend(deferred)
    return [(role, blocks) for role, blocks in out if blocks]


def _missing(uses: list[dict[str, Any]], repairs: list[str]) -> list[dict[str, Any]]:
    for use in uses:
        repairs.append(f"tool call {use.get('id')} ({use.get('name')}) had no result: added one")
    return [
        {
            "type": "tool_result",
            "tool_use_id": str(u.get("id")),
            "content": NO_RESULT,
            "is_error": True,
        }
        for u in uses
    ]


# -- Anthropic ----------------------------------------------------------------------------------

_ANTHROPIC_RESULT_KEYS = ("type", "tool_use_id", "content", "is_error", "cache_control")


def _anthropic_block(block: dict[str, Any], repairs: list[str]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        return block if block.get("text") else None
    if kind == "thinking" and not block.get("signature"):
        repairs.append("a thinking block without a signature was dropped")
        return None
    if kind == "tool_result":
        kept = {k: block[k] for k in _ANTHROPIC_RESULT_KEYS if k in block}
        content = kept.get("content")
        if content is not None and not isinstance(content, str | list):
            kept["content"] = json.dumps(content, default=str)
        return kept
    if kind == "image_url":  # an OpenAI part written into a bundle
        url = str((block.get("image_url") or {}).get("url", ""))
        if url.startswith("data:") and ";base64," in url:
            media, data = url[5:].split(";base64,", 1)
            source = {"type": "base64", "media_type": media, "data": data}
        else:
            source = {"type": "url", "url": url}
        return {"type": "image", "source": source}
    return block


def to_anthropic(messages: list[dict[str, Any]]) -> Restored:
    repairs: list[str] = []
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for role, blocks in _paired(_canonical(messages), repairs):
        if role == "system":
            system.append(_text_of(blocks))
            continue
        kept = [b for b in (_anthropic_block(b, repairs) for b in blocks) if b is not None]
        if not kept:
            continue
        if len(kept) == 1 and kept[0].get("type") == "text" and set(kept[0]) == {"type", "text"}:
            out.append({"role": role, "content": kept[0]["text"]})
        else:
            out.append({"role": role, "content": kept})
    text = "\n\n".join(s for s in system if s)
    return Restored("anthropic", out, system=text or None, repairs=repairs)


# -- OpenAI (Chat Completions) ------------------------------------------------------------------


def _openai_part(block: dict[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))} if block.get("text") else None
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        else:
            url = str(source.get("url", ""))
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "image_url":
        return block
    if kind in ("thinking", "redacted_thinking"):
        return None
    return {"type": "text", "text": json.dumps(block, default=str)}


def _user_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def to_openai(messages: list[dict[str, Any]]) -> Restored:
    repairs: list[str] = []
    out: list[dict[str, Any]] = []
    for role, blocks in _paired(_canonical(messages), repairs):
        if role == "system":
            out.append({"role": "system", "content": _text_of(blocks)})
            continue
        if role == "assistant":
            text = "\n".join(
                str(b.get("text", "")) for b in blocks if b.get("type") == "text" and b.get("text")
            )
            calls = [
                {
                    "id": str(b.get("id")),
                    "type": "function",
                    "function": {
                        "name": str(b.get("name")),
                        "arguments": json.dumps(b.get("input") or {}, default=str),
                    },
                }
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = calls
            if text or calls:
                out.append(message)
            continue
        for block in blocks:
            if block.get("type") == "tool_result":
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": str(block.get("tool_use_id")),
                        "content": _text_of(block.get("content")),
                    }
                )
        parts = [
            p
            for p in (_openai_part(b) for b in blocks if b.get("type") != "tool_result")
            if p is not None
        ]
        if parts:
            out.append({"role": "user", "content": _user_content(parts)})
    return Restored("openai", out, repairs=repairs)
