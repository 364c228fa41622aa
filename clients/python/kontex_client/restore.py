"""Resume a run from any snapshot: its bundle as the arguments of the Anthropic Messages API
(``to_anthropic``) or of OpenAI Chat Completions (``to_openai``). No dependencies.

The conversion is the server's own (``kontex_client._restore`` is generated from it, the rules
are in its docstring): messages captured in either shape are read, every tool call is answered
right after the message that made it (from the messages, else from the bundle's ``tool_calls``,
else by an error result saying no result was recorded), and a result whose call is not in the
messages before it becomes text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kontex_client._restore import Format, Restored, restore

__all__ = ["to_anthropic", "to_openai"]


def _restore(bundle: Any, format: Format) -> Restored:
    if hasattr(bundle, "model_dump"):
        bundle = bundle.model_dump(mode="json")
    if not isinstance(bundle, Mapping):
        raise TypeError("a bundle is a kontex_client.Bundle or a dict read from the API")
    return restore(bundle.get("messages") or [], format, bundle.get("tool_calls") or [])


def to_anthropic(bundle: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for ``client.messages.create(system=..., messages=...)``;
    ``system`` is None when the bundle has no system message."""
    restored = _restore(bundle, "anthropic")
    return restored.system, restored.messages


def to_openai(bundle: Any) -> list[dict[str, Any]]:
    """``messages`` for ``client.chat.completions.create(messages=...)``: system first,
    assistant ``tool_calls`` each followed by its ``role: "tool"`` answer."""
    return _restore(bundle, "openai").messages
