"""The real traceloop-sdk and the real anthropic SDK (against a fake Messages API) exporting to
`kontex dev`, with and without batching: the same task tree, no snapshot without messages, one
tool call per execution with its output, usage counted once, latency recorded.

traceloop-sdk does not resolve beside the main environment: it runs in its own venv, made here
on first use from tests/e2e/traceloop/requirements.txt and constraints.txt (60-100 s) and
cached outside the clone, so CI's fresh clones on the same machine reuse it:
`$XDG_CACHE_HOME/kontex/traceloop-venv-<sha256 of those files and the Python version>`
(`~/.cache` without XDG_CACHE_HOME; KONTEX_TRACELOOP_VENV names another folder). A change to
either file makes a new one. Never skipped: a failed install fails the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev
from tests.proxy.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent / "traceloop"
FILES = [HERE / "requirements.txt", HERE / "constraints.txt"]
STAMP = ".kontex-complete"  # written last: a folder without it is a half-built venv


def venv_key() -> str:
    """What the venv depends on: its requirement and constraint files and the interpreter."""
    digest = hashlib.sha256()
    for part in [*(f.read_bytes() for f in FILES), sys.version.encode()]:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def venv_dir() -> Path:
    named = os.environ.get("KONTEX_TRACELOOP_VENV")
    if named:
        return Path(named)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "kontex" / f"traceloop-venv-{venv_key()}"


def traceloop_venv() -> Path:
    """The cached venv's python, built when missing. Built in a temporary folder beside it and
    renamed into place only once complete, so two concurrent runs never share a half-built
    venv (the second to finish drops its own copy) and an interrupted build leaves none."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if (venv / STAMP).exists() and python.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    if venv.exists():  # no stamp: left by something else than this builder; set it aside
        stale = Path(tempfile.mkdtemp(prefix=f"{venv.name}.stale-", dir=venv.parent))
        with contextlib.suppress(FileNotFoundError):  # another run set it aside first
            venv.rename(stale / "venv")
        shutil.rmtree(stale, ignore_errors=True)
    build = Path(tempfile.mkdtemp(prefix=f"{venv.name}.build-", dir=venv.parent))
    try:
        # `bin/python` finds its venv beside it (pyvenv.cfg), so the renamed folder works;
        # only console-script shebangs keep the build path, and nothing here runs them.
        subprocess.run([sys.executable, "-m", "venv", str(build)], check=True)
        subprocess.run(
            [str(build / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            + ["--disable-pip-version-check", "-r", str(FILES[0]), "-c", str(FILES[1])],
            check=True,
            timeout=900,
        )
        (build / STAMP).write_text(venv_key())
        try:
            build.rename(venv)  # atomic; fails if another run put its venv there first
        except OSError:
            if not (venv / STAMP).exists():
                raise
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    return python


@pytest.fixture(scope="module")
def agent_python() -> Path:
    return traceloop_venv()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("traceloop") / "data"
    create_key(data, "bootstrap")
    running = start_dev(data)
    yield running
    stop_dev(running)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic().running() as running:
        yield running


def run_agent(python: Path, stack: DevStack, key: str, fake: FakeAnthropic, mode: str) -> str:
    done = subprocess.run(
        [str(python), str(HERE / "agent.py"), stack.base, key, fake.url, f"agent-{mode}", mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def settled(api: Http, expected_snapshots: int) -> dict[str, Any]:
    """The session once the worker has placed every snapshot and the tree stopped changing."""
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        sessions = api("GET", "/v1/sessions")[1]["data"]
        if sessions:
            sid = sessions[0]["id"]
            snaps = api("GET", f"/v1/sessions/{sid}/snapshots")[1]["data"]
            tasks = api("GET", f"/v1/sessions/{sid}/tasks")[1]["data"]
            state = {"sid": sid, "snaps": snaps, "tasks": tasks}
            if len(snaps) >= expected_snapshots and state == last:
                return state
            last = state
        time.sleep(0.3)
    raise AssertionError(f"the session did not settle: {last}")


def flat(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for node in nodes for n in [node, *flat(node["children"])]]


def tree(state: dict[str, Any]) -> list[tuple[str, str | None, str, list[str]]]:
    """(task, parent task, status, labels of its snapshots) in name order."""
    tasks = flat(state["tasks"])
    names = {t["id"]: t["name"] for t in tasks}
    return sorted(
        (
            t["name"],
            names.get(t.get("parent_task_id") or ""),
            t["status"],
            [s["label"] for s in state["snaps"] if s["task_id"] == t["id"]],
        )
        for t in tasks
    )


@pytest.mark.timeout(900)  # the first run on a machine installs the agent's venv (60-100 s)
@pytest.mark.parametrize("mode", ["batch", "nobatch"])
def test_traceloop_agent(
    agent_python: Path, stack: DevStack, fake: FakeAnthropic, mode: str
) -> None:
    key = create_key(stack.data_dir, f"traceloop-{mode}")
    api = Http(stack.base, key)
    stderr = run_agent(agent_python, stack, key, fake, mode)
    assert "Failed to export" not in stderr, stderr  # traces and metrics both answered 200

    state = settled(api, 4)
    labels = ["anthropic.chat", "tool: get_weather", "anthropic.chat"]
    assert tree(state) == [
        ("plan", "weather_agent", "completed", labels),
        ("summarize", "weather_agent", "completed", ["anthropic.chat"]),
        ("weather_agent", None, "completed", []),
    ]
    assert len(state["snaps"]) == 4  # the SDK's own anthropic.messages.create spans make none

    bundles = [api("GET", f"/v1/snapshots/{s['id']}/bundle")[1] for s in state["snaps"]]
    assert all(b["messages"] for b in bundles)
    by_label: dict[str, list[dict[str, Any]]] = {}
    for snap, bundle in zip(state["snaps"], bundles, strict=True):
        by_label.setdefault(snap["label"], []).append(bundle)

    first, second, streamed = by_label["anthropic.chat"]
    # The call waiting for its tool: pending, no output; the tool snapshot completes it.
    assert [(c["tool"], c["status"], c["output"]) for c in first["tool_calls"]] == [
        ("get_weather", "pending", None)
    ]
    (tool_snapshot,) = by_label["tool: get_weather"]
    for bundle in (tool_snapshot, second):
        (call,) = bundle["tool_calls"]  # one call for one execution
        assert call["id"] == "toolu_fake_1"
        assert call["status"] == "success"
        assert call["input"] == {"city": "Paris", "unit": "c"}
        assert call["output"] is not None
    assert streamed["tool_calls"] == []

    # Usage per call, from the spans; latency from the span's duration.
    assert tool_snapshot.get("usage") is None
    for bundle in (first, second, streamed):
        usage = bundle["usage"]
        assert usage["input_tokens"] >= 100 and usage["output_tokens"] >= 25
        assert usage["latency_ms"] > 0
        assert usage["cost_usd"] > 0  # claude-sonnet-4-5 is in the shipped price table
    kinds = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    expected = sum(b["usage"].get(k) or 0 for b in (first, second, streamed) for k in kinds)

    stats = api("GET", f"/v1/sessions/{state['sid']}/stats")[1]
    assert stats["llm_calls"] == 3
    # every token the calls used (cache reads and writes included), each call once, not every
    # snapshot's cumulative total
    assert stats["total_tokens"] == expected == stats["usage"]["total_tokens"]
    assert stats["usage"]["cost_usd"] == pytest.approx(
        sum(b["usage"]["cost_usd"] for b in (first, second, streamed))
    )
    assert stats["total_tool_calls"] == 1
    assert stats["tool_calls_by_status"]["success"] == 1
