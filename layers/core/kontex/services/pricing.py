"""Usage and cost of one LLM call, from the provider's token counts and the price table.

The table ships in the package (``kontex/data/prices.json``: USD per million tokens for
Anthropic and OpenAI models, with the date the prices were read); a JSON file of the same
shape named by ``KONTEX_PRICES_FILE`` overrides or adds models. A model matches its exact name,
else the longest table name it starts with (dated releases). A model not in the table has
``cost_usd: null``: unknown, never a guess. A model's ``context_window`` (tokens) rides in the
same table: the session timeline reports it, and the dashboard draws it as the context's limit.

Token fields, the same for every source (the proxy now; OTLP spans fill the same ``Usage``):
``input_tokens`` (uncached input), ``output_tokens``, ``cache_read_tokens``,
``cache_write_tokens`` (absent when the provider gave none), ``latency_ms`` (request sent to
answer complete), ``cost_usd``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from kontex.domain.models import Usage

PER = 1_000_000


@lru_cache(maxsize=8)
def price_table(override: Path | None = None) -> dict[str, dict[str, float]]:
    text = (resources.files("kontex") / "data" / "prices.json").read_text("utf-8")
    models: dict[str, dict[str, float]] = dict(json.loads(text)["models"])
    if override is not None:
        models.update(json.loads(Path(override).read_text("utf-8"))["models"])
    return models


def price_of(model: str | None, table: dict[str, dict[str, float]]) -> dict[str, float] | None:
    if not model:
        return None
    name = model.lower().split("/")[-1]  # "anthropic/claude-..." and bare names alike
    if name in table:
        return table[name]
    prefixes = [m for m in table if name.startswith(m)]
    return table[max(prefixes, key=len)] if prefixes else None


def context_window(model: str | None, table: dict[str, dict[str, float]]) -> int | None:
    """The model's context window in tokens (the table's ``context_window``), when known."""
    window = (price_of(model, table) or {}).get("context_window")
    return int(window) if window else None


def cost(usage: Usage, price: dict[str, float] | None) -> float | None:
    if price is None:
        return None
    total = usage.input_tokens * price["input"] + usage.output_tokens * price["output"]
    total += (usage.cache_read_tokens or 0) * price.get("cache_read", price["input"])
    total += (usage.cache_write_tokens or 0) * price.get("cache_write", price["input"])
    return round(total / PER, 8)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def anthropic_usage(
    usage: dict[str, Any],
    model: str | None,
    latency_ms: float | None,
    table: dict[str, dict[str, float]],
) -> Usage:
    """From a Messages ``usage`` (JSON answer, or ``message_start`` + ``message_delta``)."""
    made = Usage(
        input_tokens=_int(usage.get("input_tokens")) or 0,
        output_tokens=_int(usage.get("output_tokens")) or 0,
        cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
        cache_write_tokens=_int(usage.get("cache_creation_input_tokens")),
        latency_ms=round(latency_ms, 3) if latency_ms is not None else None,
    )
    made.cost_usd = cost(made, price_of(model, table))
    return made


def priced(
    usage: dict[str, Any] | None, model: str | None, table: dict[str, dict[str, float]]
) -> Usage | None:
    """A span's usage (token counts and latency as keys) with its cost from the table."""
    if not usage:
        return None
    made = Usage.model_validate(usage)
    made.cost_usd = cost(made, price_of(model, table))
    return made
