"""Retries of 429 and 503 honour Retry-After; errors carry the server's code. The HTTP layer is
httpx's own MockTransport (the client's real httpx.Client, no socket)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

import kontex_client
from kontex_client import AsyncKontex, Kontex
from tests.client.conftest import new_account
from tests.e2e.stack import start_dev, stop_dev

SESSION = {
    "id": "sess_1",
    "name": "n",
    "status": "active",
    "metadata": {},
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


def answers(*replies: httpx.Response) -> tuple[Callable[[httpx.Request], httpx.Response], list]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return replies[min(len(seen), len(replies)) - 1]

    return handle, seen


def busy(status: int, retry_after: str | None) -> httpx.Response:
    code = "rate_limit_exceeded" if status == 429 else "unavailable"
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(
        status, json={"error": code, "message": "busy", "details": None}, headers=headers
    )


def test_429_is_retried_after_the_servers_retry_after() -> None:
    handle, seen = answers(busy(429, "0.3"), httpx.Response(200, json=SESSION))
    client = Kontex(
        "http://k", "key", http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )
    started = time.monotonic()
    assert client.sessions.get("sess_1").id == "sess_1"
    assert len(seen) == 2 and time.monotonic() - started >= 0.3
    assert seen[0].headers["authorization"] == "Bearer key"


def test_503_is_retried_with_backoff_and_an_http_date_is_read() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
    handle, seen = answers(busy(503, None), busy(503, soon), httpx.Response(200, json=SESSION))
    client = Kontex(
        "http://k", "key", http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )
    assert client.sessions.get("sess_1").name == "n"
    assert len(seen) == 3


def test_retries_stop_and_the_error_carries_code_and_retry_after() -> None:
    handle, seen = answers(busy(429, "0"))
    client = Kontex(
        "http://k",
        "key",
        max_retries=2,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )
    with pytest.raises(kontex_client.RateLimitError) as error:
        client.sessions.list()
    assert len(seen) == 3  # the first try and two retries
    assert error.value.code == "rate_limit_exceeded" and error.value.status == 429
    assert error.value.retry_after == 0


def test_a_retry_after_longer_than_max_retry_wait_is_raised_at_once() -> None:
    handle, seen = answers(busy(429, "3600"))
    client = Kontex(
        "http://k",
        "key",
        max_retry_wait=5,
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
    )
    with pytest.raises(kontex_client.RateLimitError) as error:
        client.sessions.list()
    assert len(seen) == 1 and error.value.retry_after == 3600


def test_other_errors_are_not_retried() -> None:
    handle, seen = answers(
        httpx.Response(409, json={"error": "conflict", "message": "no", "details": {"a": 1}})
    )
    client = Kontex(
        "http://k", "key", http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )
    with pytest.raises(kontex_client.ConflictError) as error:
        client.sessions.create("x")
    assert len(seen) == 1 and error.value.details == {"a": 1}


def test_async_client_retries_too() -> None:
    handle, seen = answers(busy(503, "0.1"), httpx.Response(200, json=SESSION))

    async def run() -> str:
        transport = httpx.MockTransport(handle)
        async with AsyncKontex(
            "http://k", "key", http_client=httpx.AsyncClient(transport=transport)
        ) as client:
            return (await client.sessions.get("sess_1")).id

    assert asyncio.run(run()) == "sess_1" and len(seen) == 2


def test_the_real_servers_429_has_retry_after(tmp_path: Path) -> None:
    # Given a server allowing 3 requests per hour
    stack = start_dev(tmp_path / "data", env={"KONTEX_RATE_LIMIT_PER_HOUR": "3"})
    try:
        key = new_account(stack)
        with Kontex(stack.base, key, max_retry_wait=1) as client:
            for _ in range(3):
                client.sessions.list()
            # When the fourth comes, the server's Retry-After (the rest of the hour) is too long
            with pytest.raises(kontex_client.RateLimitError) as error:
                client.sessions.list()
        # Then the error says when to come back, and no time was spent sleeping
        assert error.value.code == "rate_limit_exceeded"
        assert error.value.retry_after is not None and error.value.retry_after > 1
    finally:
        stop_dev(stack)
