"""What the sync and async clients share: configuration, retry timing, answers to values."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from kontex_client._errors import KontexError, error_for
from kontex_client._version import __version__

DEFAULT_URL = "http://127.0.0.1:8787"
RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable[..., Any])


def route(method: str, path: str) -> Callable[[F], F]:
    """Mark a client method with the REST route it calls (the OpenAPI-agreement test reads it)."""

    def mark(fn: F) -> F:
        fn.__kontex_route__ = (method, path)  # type: ignore[attr-defined]
        return fn

    return mark


def settings(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The base URL (argument, else ``KONTEX_URL``, else the local default) and the key
    (argument, else ``KONTEX_API_KEY``)."""
    url = (base_url or os.environ.get("KONTEX_URL") or DEFAULT_URL).rstrip("/")
    return url, api_key or os.environ.get("KONTEX_API_KEY") or None


def headers(api_key: str | None) -> dict[str, str]:
    out = {"User-Agent": f"kontex-client/{__version__}", "Accept": "application/json"}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RetryPolicy:
    """Retries of 429 and 503 answers (and of failed connections): the server's ``Retry-After``
    when it gave one, else exponential backoff with full jitter. A ``Retry-After`` longer than
    ``max_wait`` is not slept through: the error is raised at once (with ``retry_after``)."""

    def __init__(
        self,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_wait: float = 60.0,
    ) -> None:
        self.max_retries, self.backoff = max_retries, backoff
        self.max_backoff, self.max_wait = max_backoff, float(max_wait)

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None to stop and raise."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in RETRY_STATUSES:
                return None
            told = retry_after(response)
            if told is not None:
                return told if told <= self.max_wait else None
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))


def params(values: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters without the unset ones; booleans and times as the API reads them."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = str(value)
    return out


def body(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body without the arguments left unset."""
    return {k: v for k, v in values.items() if v is not None}


def answer(response: httpx.Response) -> Any:
    """The decoded JSON of a success, None for 204; raises the matching ``KontexError``."""
    if response.is_success and (response.status_code == 204 or not response.content):
        return None
    try:
        decoded = response.json()
    except ValueError:
        decoded = response.text
    if response.is_success:
        return decoded
    raise error_for(response.status_code, decoded, retry_after(response))


def connection_error(error: httpx.HTTPError, url: str) -> KontexError:
    from kontex_client._errors import ConnectionError

    return ConnectionError(f"cannot reach {url}: {error}", code="connection_error")


BUNDLE_FIELDS = (
    "messages",
    "tool_calls",
    "files",
    "reasoning",
    "log_events",
    "model",
    "token_total",
    "captured_at",
)


def bundle_in(bundle: Any, **fields: Any) -> dict[str, Any]:
    """The body's ``bundle``: a ``Bundle`` or dict read back from the API (its ids, source and
    usage dropped: the server sets them), overridden by the fields given."""
    if bundle is None:
        given: dict[str, Any] = {}
    elif hasattr(bundle, "model_dump"):
        given = bundle.model_dump(mode="json", by_alias=True)
    else:
        given = dict(bundle)
    out = {k: given[k] for k in BUNDLE_FIELDS if given.get(k) is not None}
    for key, value in fields.items():
        if value is not None:
            out[key] = value.isoformat() if isinstance(value, datetime) else value
    out.setdefault("messages", [])
    return out
