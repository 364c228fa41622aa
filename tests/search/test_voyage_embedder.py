"""The Voyage AI embedder through the real ``voyageai`` client against a local fake of its HTTP
API (a real socket on 127.0.0.1, ``base_url``): batching within the limits, 429 honouring
``Retry-After``, outages as ``Transient``, a refused key as a configuration error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kontex.adapters import voyage_embedder
from kontex.adapters.voyage_embedder import VoyageEmbedder
from kontex.domain.errors import KontexError, Transient


class FakeVoyage:
    """``POST /v1/embeddings``; ``script`` holds answers to give first, e.g. (429, {...})."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                fake.headers.append(dict(self.headers))
                if fake.script:
                    status, headers = fake.script.pop(0)
                    self._answer(status, {"detail": "slow down"}, headers)
                    return
                data = [
                    {"object": "embedding", "index": i, "embedding": [float(len(t)), float(i)]}
                    for i, t in enumerate(body["input"])
                ]
                usage = {"total_tokens": sum(len(t) for t in body["input"])}
                self._answer(200, {"object": "list", "data": data, "model": body["model"],
                                   "usage": usage})  # fmt: skip

            def _answer(
                self, status: int, body: Any, headers: dict[str, str] | None = None
            ) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeVoyage]:
    made = FakeVoyage()
    yield made
    made.close()


def _embedder(fake: FakeVoyage, slept: list[float]) -> VoyageEmbedder:
    return VoyageEmbedder("pa-test-key", "voyage-code-3", fake.base_url, sleep=slept.append)


def test_documents_go_in_batches_within_the_limits_and_keep_their_order(
    fake: FakeVoyage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(voyage_embedder, "MAX_TEXTS", 4)
    texts = [f"text number {i}" for i in range(10)]
    vectors = _embedder(fake, []).embed_documents(texts)
    assert [len(r["input"]) for r in fake.requests] == [4, 4, 2]
    assert [v[0] for v in vectors] == [float(len(t)) for t in texts]
    first = fake.requests[0]
    assert first["path"] == "/v1/embeddings"
    assert (first["model"], first["input_type"]) == ("voyage-code-3", "document")
    assert fake.headers[0]["Authorization"] == "Bearer pa-test-key"


def test_a_request_stays_under_the_token_budget(
    fake: FakeVoyage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(voyage_embedder, "MAX_TOKENS", 300)
    texts = ["lorem ipsum dolor sit amet " * 20] * 5  # about 130 tokens each with the margin
    _embedder(fake, []).embed_documents(texts)
    assert [len(r["input"]) for r in fake.requests] == [2, 2, 1]


def test_a_429_is_retried_after_the_time_retry_after_asks(fake: FakeVoyage) -> None:
    fake.script = [(429, {"Retry-After": "7"}), (429, {"Retry-After": "2"})]
    slept: list[float] = []
    vector = _embedder(fake, slept).embed_query("find parse_jwt_claims")
    assert slept == [7.0, 2.0]
    assert len(fake.requests) == 3
    assert fake.requests[-1]["input_type"] == "query"
    assert vector == [float(len("find parse_jwt_claims")), 0.0]


def test_an_outage_that_lasts_is_transient(fake: FakeVoyage) -> None:
    fake.script = [(503, {})] * voyage_embedder.ATTEMPTS
    slept: list[float] = []
    with pytest.raises(Transient):
        _embedder(fake, slept).embed_documents(["x"])
    assert len(slept) == voyage_embedder.ATTEMPTS - 1
    assert all(0 < s <= voyage_embedder.MAX_WAIT_SECONDS for s in slept)


def test_an_unreachable_service_is_transient() -> None:
    gone = FakeVoyage()
    url = gone.base_url
    gone.close()
    slept: list[float] = []
    with pytest.raises(Transient):
        VoyageEmbedder("pa-k", base_url=url, sleep=slept.append).embed_query("x")


def test_a_refused_key_is_not_retried(fake: FakeVoyage) -> None:
    fake.script = [(401, {})]
    slept: list[float] = []
    with pytest.raises(KontexError) as refused:
        _embedder(fake, slept).embed_query("x")
    assert not isinstance(refused.value, Transient)
    assert slept == [] and len(fake.requests) == 1
