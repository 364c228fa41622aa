"""One real `kontex dev` for the client tests (limits raised: agents write many snapshots)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from kontex_client import Kontex
from tests.e2e.stack import DevStack, create_key, start_dev, stop_dev
from tests.proxy.fake_anthropic import FakeAnthropic

UNLIMITED = {
    "KONTEX_RATE_LIMIT_PER_HOUR": "10000000",
    "KONTEX_SNAPSHOT_WRITES_PER_HOUR": "10000000",
}


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeAnthropic]:
    with FakeAnthropic().running() as fake:
        yield fake


def start_drained(data_dir: Path, env: dict[str, str]) -> DevStack:
    """``start_dev`` whose output is read as it comes: the access log of the thousands of
    requests an agent run makes would otherwise fill the pipe and stall the server."""
    running = start_dev(data_dir, env=env)
    tail: deque[str] = deque(maxlen=200)
    out = running.process.stdout

    def drain() -> None:
        for line in out or ():
            tail.append(line)

    threading.Thread(target=drain, daemon=True).start()
    return running


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAnthropic) -> Iterator[DevStack]:
    env = {**UNLIMITED, "ANTHROPIC_API_URL": upstream.url}
    running = start_drained(tmp_path_factory.mktemp("client") / "data", env=env)
    yield running
    stop_dev(running)


@pytest.fixture(scope="session")
def key(stack: DevStack) -> str:
    return create_key(stack.data_dir, "client tests")


@pytest.fixture
def client(stack: DevStack, key: str) -> Iterator[Kontex]:
    with Kontex(stack.base, key) as made:
        yield made


def new_account(stack: DevStack) -> str:
    """A key of a new account (nothing else in it)."""
    return create_key(stack.data_dir, "fresh account")
