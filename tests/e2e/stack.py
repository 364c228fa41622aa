"""A real `kontex dev` process for end-to-end tests and benchmarks: start, key, HTTP, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


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


def start_dev(
    data_dir: Path, env: dict[str, str] | None = None, port: int | None = None
) -> DevStack:
    """``port``: a free one when None."""
    port = port or free_port()
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
        start_new_session=True,  # its own process group: kill_dev stops its workers too
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
    """Ctrl-C, then its output. A clean stop lets each worker finish the batch it holds (up to
    10 s each: kontex.adapters.local_queue), so a loaded machine may take longer than 15 s."""
    stack.process.send_signal(signal.SIGINT)
    out, _ = stack.process.communicate(timeout=45)
    return out


def kill_dev(stack: DevStack) -> None:
    """SIGKILL to the whole stack (the server and its worker processes), as a crash would."""
    os.killpg(stack.process.pid, signal.SIGKILL)
    stack.process.communicate(timeout=15)


def create_key(data_dir: Path, label: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kontex.cli",
            "keys",
            "create",
            "--label",
            label,
            "--json",
            "--data-dir",
            str(data_dir),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
        text=True,
    ).stdout
    return str(json.loads(out)["key"])


class Http:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None
