"""What a conversation itself says about tool calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kontex.domain.models import Message, ToolCall


def conversation_tool_calls(messages: list[Message], at: datetime | None) -> list[ToolCall]:
    """Tool calls the model asked for in the conversation, with results matched by id."""
    results: dict[str, tuple[Any, bool]] = {}
    for message in messages:
        if isinstance(message.content, list):
            for block in message.content:
                if block.get("type") == "tool_result":
                    results[str(block.get("tool_use_id"))] = (
                        block.get("content"),
                        bool(block.get("is_error")),
                    )
    calls = []
    for message in messages:
        if message.role != "assistant" or not isinstance(message.content, list):
            continue
        for block in message.content:
            if block.get("type") == "tool_use":
                answered = str(block.get("id")) in results
                output, failed = results.get(str(block.get("id")), (None, False))
                calls.append(
                    ToolCall(
                        id=str(block.get("id")),
                        tool=str(block.get("name")),
                        input=block.get("input"),
                        output=output,
                        status="error" if failed else "success" if answered else "pending",
                        timestamp=at,
                    )
                )
    return calls
