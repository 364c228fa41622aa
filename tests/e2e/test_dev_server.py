"""`kontex dev` as a user runs it: a real process on a free port, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevStack:
    def __init__(self, process: subprocess.Popen[str], base: str, data_dir: Path) -> None:
        self.process, self.base, self.data_dir = process, base, data_dir

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def start_dev(data_dir: Path, env: dict[str, str] | None = None) -> DevStack:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kontex.cli",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"kontex dev exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return DevStack(process, base, data_dir)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("kontex dev did not start in 30 s")


def stop_dev(stack: DevStack) -> str:
    stack.process.send_signal(signal.SIGINT)
    out, _ = stack.process.communicate(timeout=15)
    return out


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
