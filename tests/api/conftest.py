"""Handler tests: API Gateway HTTP API events into the real ``functions/api`` handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kontex import bootstrap
from kontex.adapters.local_blobs import LocalBlobs
from kontex.http.apigw import LocalContext, http_api_event
from kontex.local.server import load_handler
from kontex.services import keys
from kontex.settings import Settings

_handler = load_handler("api")


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Client:
    def __init__(self, key: str | None) -> None:
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        sent = {"content-type": "application/json"}
        if self.key:
            sent["authorization"] = f"Bearer {self.key}"
        sent.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        event = http_api_event(method, path, list(sent.items()), data)
        result = _handler(event, LocalContext(function_name="kontex-api"))
        text = result.get("body") or ""
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        lowered = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        return Reply(result["statusCode"], parsed, lowered)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PATCH", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)


@pytest.fixture
def env_limits() -> dict[str, str]:
    return {}


def new_container(
    store: Any, data_dir: Path, clock: Any, env_limits: dict[str, str] | None = None
) -> bootstrap.Container:
    """The handlers' container over ``store`` (not installed: ``bootstrap.configure`` does)."""
    config = Settings.from_env(
        {"KONTEX_API_KEY_SECRET": "handler-tests", **(env_limits or {})}, kontex_data_dir=data_dir
    )
    made = bootstrap.Container(config, store=store, blobs=LocalBlobs(data_dir / "blobs"))
    made.deps.clock = clock
    return made


@pytest.fixture
def container(store: Any, tmp_path: Any, clock: Any, env_limits: dict[str, str]) -> Iterator[Any]:
    made = new_container(store, tmp_path, clock, env_limits)
    bootstrap.configure(made)
    yield made
    bootstrap.configure(None)


@pytest.fixture
def alice(container: Any) -> Client:
    _, plaintext = keys.create_key(container.deps, "alice")
    return Client(plaintext)


@pytest.fixture
def bob(container: Any) -> Client:
    _, plaintext = keys.create_key(container.deps, "bob")
    return Client(plaintext)


@pytest.fixture
def anonymous(container: Any) -> Client:
    return Client(None)


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for i in range(turns):
        messages += [
            {"role": "user", "content": f"question {i}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"answer {i}"},
                    {"type": "tool_use", "id": f"tu_{i}", "name": "grep", "input": {"q": i}},
                ],
            },
            {
                "role": "tool",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"tu_{i}", "content": f"found {i}"},
                ],
            },
        ]
    return messages
