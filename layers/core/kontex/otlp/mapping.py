"""GenAI spans to Kontex content, for every attribute generation in use.

- OpenLLMetry indexed: ``gen_ai.prompt.{i}.role|content|tool_calls.{j}.*|tool_call_id``,
  ``gen_ai.completion.{i}.*``, ``gen_ai.usage.*``, ``llm.request.type``, ``traceloop.*``.
- OpenTelemetry GenAI semantic conventions: ``gen_ai.operation.name``,
  ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (typed parts),
  ``gen_ai.system_instructions``, ``gen_ai.tool.*``, ``gen_ai.conversation.id``.
- Legacy ``llm.prompts.{i}.*`` / ``llm.completions.{i}.*`` and OpenInference
  ``llm.input_messages.{i}.message.*`` / ``llm.output_messages.{i}.message.*``.

Message content is kept as the instrumentation gave it: a string, or content blocks when the
string is a JSON list of blocks. Tool calls become ``tool_use`` blocks, tool results
``tool_result`` blocks, so one bundle shape serves every source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from kontex.domain.models import Message, ToolCall, nested_deeper_than
from kontex.otlp.span import Span, SpanEvent

TASK_KINDS = {"workflow", "agent", "task"}
LLM_OPERATIONS = {"chat", "text_completion", "generate_content"}
ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "model": "assistant",
    "function": "tool",
    "developer": "system",
    "ipython": "tool",
}
SESSION_KEYS = (
    "traceloop.association.properties.session_id",
    "session.id",
    "gen_ai.conversation.id",
)


def kind_of(span: Span) -> str:
    """``task``, ``llm``, ``tool``, ``events`` or ``other``."""
    if span.get("events_of"):
        return "events"  # GenAI events of a span, received as OTLP log records
    a = span["attributes"]
    traceloop = str(a.get("traceloop.span.kind", "")).lower()
    operation = str(a.get("gen_ai.operation.name", "")).lower()
    openinference = str(a.get("openinference.span.kind", "")).upper()
    if traceloop == "tool" or operation == "execute_tool" or openinference == "TOOL":
        return "tool"
    if (
        traceloop in TASK_KINDS
        or operation in ("invoke_agent", "create_agent")
        or (openinference == "AGENT")
    ):
        return "task"
    if (
        "llm.request.type" in a
        or operation in LLM_OPERATIONS
        or openinference == "LLM"
        or any(k.startswith(("gen_ai.prompt.", "llm.prompts.", "gen_ai.input.messages")) for k in a)
    ):
        return "llm"
    return "other"


def session_hint(span: Span) -> str | None:
    for source in (span["attributes"], span.get("resource") or {}):
        for key in SESSION_KEYS:
            value = source.get(key)
            if value not in (None, ""):
                return str(value)
    return None


def task_name(span: Span) -> str:
    a = span["attributes"]
    name = a.get("traceloop.entity.name") or a.get("gen_ai.agent.name") or span["name"]
    return str(name)[:200] or "task"


# -- helpers -----------------------------------------------------------------------------------


JSON_DEPTH = 64  # deeper documents in attributes stay text (any span can then be placed)


def _json(value: Any) -> Any:
    """A JSON document given as text, parsed; anything else (or one nested deeper than
    ``JSON_DEPTH``, which would take its span down with a RecursionError) as it is."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{", '"'):
            try:
                parsed = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                return value
            return value if nested_deeper_than(parsed, JSON_DEPTH) else parsed
    return value


@lru_cache(maxsize=64)
def _index_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)$")


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.{i}.rest = v`` attributes grouped by ``i``, in index order."""
    pattern = _index_pattern(prefix)
    start = prefix + "."
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(start):  # most keys: no regex run
            continue
        match = pattern.match(key)
        if match:
            groups.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [groups[i] for i in sorted(groups)]


def _role(value: Any, default: str = "user") -> str:
    role = str(value or default).lower()
    role = ROLE_ALIASES.get(role, role)
    return role if role in ("system", "user", "assistant", "tool") else default


def _blocks_of(content: Any) -> list[dict[str, Any]] | str:
    parsed = _json(content)
    if isinstance(parsed, list) and all(isinstance(b, dict) and "type" in b for b in parsed):
        return parsed
    if isinstance(parsed, dict) and "type" in parsed:
        return [parsed]
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content)


def _tool_use(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    args = _json(arguments)
    return {
        "type": "tool_use",
        "id": str(call_id or ""),
        "name": str(name or ""),
        "input": args if args is not None else {},
    }


def _with_tool_uses(content: list[dict[str, Any]] | str, uses: list[dict[str, Any]]) -> Any:
    if not uses:
        return content
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) and content else []
    if isinstance(content, list):
        blocks = list(content)
    known = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
    return blocks + [u for u in uses if u["id"] not in known]


def _indexed_message(group: dict[str, Any], default_role: str) -> Message:
    role = _role(group.get("role"), default_role)
    content = _blocks_of(group.get("content"))
    uses = [
        _tool_use(call.get("id"), call.get("name"), call.get("arguments"))
        for call in _indexed(group, "tool_calls")
    ]
    extra: dict[str, Any] = {}
    if role == "tool" and group.get("tool_call_id"):
        call_id = str(group["tool_call_id"])
        extra["tool_call_id"] = call_id
        if isinstance(content, str):
            content = [{"type": "tool_result", "tool_use_id": call_id, "content": content}]
    return Message(role=role, content=_with_tool_uses(content, uses), **extra)  # type: ignore[arg-type]


# -- the current semantic conventions: typed parts ----------------------------------------------


def _part_block(part: dict[str, Any]) -> dict[str, Any] | None:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": str(part.get("content", ""))}
    if kind == "tool_call":
        return _tool_use(part.get("id"), part.get("name"), part.get("arguments"))
    if kind == "tool_call_response":
        return {
            "type": "tool_result",
            "tool_use_id": str(part.get("id", "")),
            "content": part.get("response"),
        }
    if kind == "reasoning":
        return None  # reasoning is carried separately
    return dict(part)


def _listed(value: Any) -> list[dict[str, Any]]:
    """``gen_ai.*.messages``: a list of message objects. Anything else a sender put there (a
    text that is not JSON, or too deep to parse; an object; other items) is kept as the text
    of a user message, so the span is still placed."""
    parsed = _json(value)
    if parsed is None:
        return []
    items = parsed if isinstance(parsed, list) else [parsed]
    return [
        item if isinstance(item, dict) else {"role": "user", "parts": [_text_part(item)]}
        for item in items
    ]


def _text_part(value: Any) -> dict[str, Any]:
    return {"type": "text", "content": value if isinstance(value, str) else json.dumps(value)}


def _parts_message(raw: dict[str, Any]) -> tuple[Message, list[str]]:
    given = raw.get("parts") or []
    if not isinstance(given, list):
        given = [given]
    parts = [p if isinstance(p, dict) else _text_part(p) for p in given]
    thoughts = [str(p.get("content", "")) for p in parts if p.get("type") == "reasoning"]
    blocks = [b for b in (_part_block(p) for p in parts) if b is not None]
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        content: Any = blocks[0]["text"]
    else:
        content = blocks
    return Message(role=_role(raw.get("role")), content=content), thoughts  # type: ignore[arg-type]


# -- LLM calls ---------------------------------------------------------------------------------


@dataclass
class LlmCall:
    messages: list[Message] = field(default_factory=list)  # the prompt, then the reply
    reasoning: list[str] = field(default_factory=list)
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def token_total(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


def _first_int(attributes: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                continue
    return None


def llm_call(span: Span) -> LlmCall:
    return _llm_call(span["attributes"])


def _llm_call(a: dict[str, Any]) -> LlmCall:
    """The call given by a span's attributes (or its events' attributes and body)."""
    call = LlmCall()
    if "gen_ai.input.messages" in a or "gen_ai.output.messages" in a:
        system = _json(a.get("gen_ai.system_instructions"))
        if isinstance(system, list) and system:
            text = "\n".join(str(p.get("content", "")) for p in system if isinstance(p, dict))
            call.messages.append(Message(role="system", content=text))
        for raw in _listed(a.get("gen_ai.input.messages")):
            message, thoughts = _parts_message(raw)
            call.messages.append(message)
        for raw in _listed(a.get("gen_ai.output.messages")):
            message, thoughts = _parts_message(raw)
            call.reasoning += thoughts
            if message.content:
                call.messages.append(message)
    else:
        for prompt_prefix, completion_prefix in (
            ("gen_ai.prompt", "gen_ai.completion"),
            ("llm.prompts", "llm.completions"),
        ):
            prompts = _indexed(a, prompt_prefix)
            completions = _indexed(a, completion_prefix)
            if prompts or completions:
                break
        if not prompts and not completions:  # OpenInference
            prompts = [
                {k.removeprefix("message."): v for k, v in g.items()}
                for g in _indexed(a, "llm.input_messages")
            ]
            completions = [
                {k.removeprefix("message."): v for k, v in g.items()}
                for g in _indexed(a, "llm.output_messages")
            ]
        call.messages += [_indexed_message(g, "user") for g in prompts]
        for group in completions:
            if str(group.get("role", "")).lower() in ("thinking", "reasoning"):
                call.reasoning.append(str(group.get("content", "")))
                continue
            call.messages.append(_indexed_message(group, "assistant"))
    call.model = next(
        (
            str(a[k])
            for k in (
                "gen_ai.response.model",
                "gen_ai.request.model",
                "llm.response.model",
                "llm.request.model",
                "llm.model_name",
            )
            if a.get(k)
        ),
        None,
    )
    call.input_tokens = _first_int(
        a,
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.prompt_tokens",
        "llm.token_count.prompt",
    )
    call.output_tokens = _first_int(
        a,
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.completion_tokens",
        "llm.token_count.completion",
    )
    return call


def usage(span: Span) -> dict[str, Any]:
    """The per-call usage a span gives: token counts from ``gen_ai.usage.*`` (and the older
    names), ``latency_ms`` from the span's duration. Only the keys known are present."""
    a = span["attributes"]
    found: dict[str, Any] = {
        "input_tokens": _first_int(
            a,
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.usage.prompt_tokens",
            "llm.token_count.prompt",
        ),
        "output_tokens": _first_int(
            a,
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
            "llm.token_count.completion",
        ),
        "cache_read_tokens": _first_int(
            a,
            "gen_ai.usage.cache_read_input_tokens",
            "gen_ai.usage.cache_read.input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
        "cache_write_tokens": _first_int(
            a,
            "gen_ai.usage.cache_creation_input_tokens",
            "gen_ai.usage.cache_creation.input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
    }
    start, end = span.get("start_time_unix_nano") or 0, span.get("end_time_unix_nano") or 0
    if start and end >= start:
        found["latency_ms"] = round((end - start) / 1e6, 3)
    return {k: v for k, v in found.items() if v is not None}


def has_content(span: Span) -> bool:
    """Whether an LLM span carries messages (the anthropic SDK's own spans carry usage only)."""
    return bool(llm_call(span).messages)


def tool_input(value: Any) -> Any:
    """A tool's input as the model gave it: Traceloop records ``{"args": [], "kwargs": {...}}``."""
    if isinstance(value, dict) and set(value) == {"args", "kwargs"} and not value["args"]:
        return value["kwargs"]
    return value


def tool_execution(span: Span) -> ToolCall:
    a = span["attributes"]
    name = a.get("gen_ai.tool.name") or a.get("traceloop.entity.name") or a.get("tool.name")
    arguments = a.get(
        "gen_ai.tool.call.arguments", a.get("traceloop.entity.input", a.get("input.value"))
    )
    result = a.get(
        "gen_ai.tool.call.result", a.get("traceloop.entity.output", a.get("output.value"))
    )
    return ToolCall(
        id=str(a.get("gen_ai.tool.call.id") or a.get("tool.call.id") or span["span_id"]),
        tool=str(name or span["name"]),
        input=tool_input(_json(arguments)),
        output=_json(result),
        status="error" if span.get("status") == "error" else "success",
        timestamp=span_time(span["end_time_unix_nano"]),
    )


def span_time(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos / 1e9, UTC) if nanos else datetime.now(UTC)


# -- GenAI events (OTLP log records) ----------------------------------------------------------

EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def is_genai_event(name: str) -> bool:
    return name in EVENT_ROLES or name in (
        "gen_ai.choice",
        "gen_ai.client.inference.operation.details",
    )


def _event_group(role: str, body: dict[str, Any]) -> dict[str, Any]:
    """An event body (``content``, ``tool_calls``, ``id``) as an indexed-attribute group."""
    group: dict[str, Any] = {"role": body.get("role") or role, "content": body.get("content")}
    for j, call in enumerate(body.get("tool_calls") or []):
        function = call.get("function") or {}
        group[f"tool_calls.{j}.id"] = call.get("id")
        group[f"tool_calls.{j}.name"] = function.get("name", call.get("name"))
        arguments = function.get("arguments", call.get("arguments"))
        group[f"tool_calls.{j}.arguments"] = arguments
    if role == "tool" and body.get("id"):
        group["tool_call_id"] = body["id"]
    return group


def event_messages(events: list[SpanEvent]) -> tuple[list[Message], list[str]]:
    """Messages (and reasoning) of an LLM call from its GenAI events, in time order: the
    ``gen_ai.{system,user,assistant,tool}.message`` events of the prompt, then the
    ``gen_ai.choice`` events of the reply (or one ``gen_ai.client.inference.operation.details``
    event carrying ``gen_ai.input.messages`` / ``gen_ai.output.messages``). The messages equal
    those of the same call given as span attributes."""
    ordered = sorted(events, key=lambda e: e.get("time_unix_nano") or 0)
    details = [e for e in ordered if e["name"] == "gen_ai.client.inference.operation.details"]
    if details:
        attributes: dict[str, Any] = {}
        for event in details:
            attributes.update(event.get("attributes") or {})
            if isinstance(event.get("body"), dict):
                attributes.update(event["body"])
        call = _llm_call({**attributes, "gen_ai.operation.name": "chat"})
        return call.messages, call.reasoning
    messages: list[Message] = []
    choices: list[tuple[int, Message]] = []
    for event in ordered:
        body = event.get("body")
        body = _json(body) if isinstance(body, str) else body
        if not isinstance(body, dict):
            body = {"content": body}
        if event["name"] in EVENT_ROLES:
            role = EVENT_ROLES[event["name"]]
            messages.append(_indexed_message(_event_group(role, body), role))
        elif event["name"] == "gen_ai.choice":
            message = body.get("message") or {}
            group = _event_group("assistant", message if isinstance(message, dict) else {})
            choices.append((int(body.get("index") or 0), _indexed_message(group, "assistant")))
    return messages + [m for _, m in sorted(choices, key=lambda c: c[0])], []
