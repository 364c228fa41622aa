"""The server the Lambda Web Adapter runs on AWS (functions/proxy/server.py) streams SSE."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import anthropic
import pytest

from kontex import bootstrap
from kontex.adapters.local_blobs import LocalBlobs
from kontex.functions import functions_dir
from kontex.services import keys
from kontex.settings import Settings
from tests.proxy.fake_anthropic import FakeAnthropic


def load_server() -> Any:
    folder = functions_dir() / "proxy"
    sys.path.insert(0, str(folder))  # as run.sh runs it: `handler` beside it
    try:
        spec = importlib.util.spec_from_file_location(
            "kontex_proxy_lwa_server", folder / "server.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def served(tmp_path: Any) -> Iterator[tuple[str, str]]:
    class Sent:
        def send(self, queue: str, bodies: list[str], delay_seconds: int = 0) -> None:
            pass

    with FakeAnthropic().running() as upstream:
        config = Settings.from_env(
            {"KONTEX_API_KEY_SECRET": "s", "ANTHROPIC_API_URL": upstream.url},
            kontex_data_dir=tmp_path,
        )
        made = bootstrap.Container(config, blobs=LocalBlobs(tmp_path / "blobs"))
        made.store.migrate()
        made.queue = Sent()
        bootstrap.configure(made)
        _, key = keys.create_key(made.deps, "lwa")
        server = ThreadingHTTPServer(("127.0.0.1", 0), load_server().Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", key
        finally:
            server.shutdown()
            server.server_close()
            bootstrap.configure(None)


def test_health_json_and_stream(served: tuple[str, str]) -> None:
    base, key = served
    import urllib.request

    with urllib.request.urlopen(f"{base}/health") as answer:  # the adapter's readiness check
        assert answer.status == 200
    client = anthropic.Anthropic(
        api_key="sk-ant", base_url=f"{base}/proxy", default_headers={"X-Kontex-Api-Key": key}
    )
    messages = [{"role": "user", "content": "what is the weather in Paris?"}]
    reply = client.messages.create(model="claude-fake", max_tokens=5, messages=messages)
    assert reply.content[1].text.startswith("Echo:")
    with client.messages.stream(model="claude-fake", max_tokens=5, messages=messages) as s:
        assert "".join(s.text_stream).startswith("Echo:")
    assert [m.id for m in client.models.list().data] == ["claude-fake"]
