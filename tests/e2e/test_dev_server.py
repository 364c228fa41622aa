"""`kontex dev` as a user runs it: a real process on a free port, real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import DevStack, start_dev, stop_dev

pytestmark = pytest.mark.e2e


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevStack]:
    stack = start_dev(tmp_path / "data")
    yield stack
    if stack.process.poll() is None:
        stop_dev(stack)


def test_health_answers_and_the_stack_stops_cleanly_on_ctrl_c(dev: DevStack) -> None:
    status, body = dev.get("/health")
    assert status == 200 and body["status"] == "ok" and body["version"]
    output = stop_dev(dev)
    assert dev.process.returncode == 0
    assert f"serving {dev.base}" in output
    assert "applied migrations 0001_foundation" in output
    assert "stopping" in output
    assert (dev.data_dir / "kontex.db").exists()
