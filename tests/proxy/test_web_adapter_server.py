"""What the Lambda Web Adapter runs on AWS (functions/proxy/run.sh -> server.py): uvicorn
serving the proxy's ASGI app, started as its own process, answering /health and streaming SSE."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from kontex import bootstrap
from kontex.functions import functions_dir
from kontex.services import keys
from kontex.settings import Settings
from tests.proxy.fake_anthropic import FakeAnthropic


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Any) -> Iterator[tuple[str, str, FakeAnthropic]]:
    with FakeAnthropic().running() as upstream:
        env = {
            "KONTEX_API_KEY_SECRET": "s",
            "ANTHROPIC_API_URL": upstream.url,
            "KONTEX_DATA_DIR": str(tmp_path),
        }
        made = bootstrap.Container(Settings.from_env(env, kontex_data_dir=tmp_path))
        made.store.migrate()
        _, key = keys.create_key(made.deps, "lwa")
        port = free_port()
        folder = functions_dir() / "proxy"
        process = subprocess.Popen(  # as run.sh starts it: handler.py beside server.py
            [sys.executable, str(folder / "server.py")],
            cwd=folder,
            env={
                **os.environ,
                **env,
                "AWS_LWA_PORT": str(port),
                "PYTHONPATH": str(folder),
                "POWERTOOLS_METRICS_DISABLED": "true",
            },
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:  # the adapter's readiness check, as it polls it
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=1) as answer:
                        assert answer.status == 200
                        break
                except OSError:
                    assert process.poll() is None, "the server exited"
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            yield base, key, upstream
        finally:
            process.terminate()
            process.wait(10)


def test_health_json_and_stream(served: tuple[str, str, FakeAnthropic]) -> None:
    base, key, upstream = served
    client = anthropic.Anthropic(
        api_key="sk-ant", base_url=f"{base}/proxy", default_headers={"X-Kontex-Api-Key": key}
    )
    messages = [{"role": "user", "content": "what is the weather in Paris?"}]
    reply = client.messages.create(model="claude-fake", max_tokens=5, messages=messages)
    assert reply.content[1].text.startswith("Echo:")
    with client.messages.stream(model="claude-fake", max_tokens=5, messages=messages) as s:
        assert "".join(s.text_stream).startswith("Echo:")
    assert [m.id for m in client.models.list().data] == ["claude-fake"]
    assert not [h for h in upstream.requests[-1][0] if h.startswith("x-kontex")]


def test_the_server_runs_on_uvloop_and_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's fast event loop and HTTP parser, which the core layer carries, are the ones
    the Lambda server uses (uvicorn falls back to asyncio and h11 when they do not import)."""
    import importlib.util

    folder = functions_dir() / "proxy"
    monkeypatch.syspath_prepend(str(folder))  # handler.py beside server.py, as run.sh has it
    spec = importlib.util.spec_from_file_location("proxy_server_under_test", folder / "server.py")
    assert spec is not None and spec.loader is not None
    server = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(server)
    finally:
        sys.modules.pop("handler", None)  # its `from handler import app`: not left for others
    config = server.config()
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
