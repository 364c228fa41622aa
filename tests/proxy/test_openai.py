"""The proxy's OpenAI-compatible path (/proxy/openai/v1/*), driven by the official `openai` SDK
through the ASGI app on uvicorn, against a local fake of OpenAI's API: answers equal a direct
call's, and Chat Completions and Responses calls are captured (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from kontex.adapters.local_queue import sqs_record
from kontex.functions import worker_paths
from kontex.http.apigw import LocalContext
from kontex.local.server import load_module, load_worker
from kontex.services import snapshots
from tests.proxy.fake_openai import FakeOpenAI
from tests.proxy.served import proxy_stack

proxy = load_module("proxy", instance=1)
worker = load_worker(worker_paths()["capture"]).lambda_handler
WEATHER = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": "what is the weather in Paris?"},
]
# headers each server sets for itself: not the upstream's answer
OWN = {"date", "server", "connection", "transfer-encoding", "content-length"}


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI().running() as fake:
        yield fake


@pytest.fixture
def kontex(store: Any, tmp_path: Any, upstream: FakeOpenAI) -> Iterator[Any]:
    env = {"OPENAI_API_URL": upstream.url}
    with proxy_stack(proxy.app, store, tmp_path, env, "openai") as made:
        yield made


def clients(kontex: Any, upstream: FakeOpenAI, **extra: str) -> tuple[Any, Any]:
    proxied = openai.OpenAI(
        api_key="sk-openai-caller",
        base_url=f"{kontex.served.url}/proxy/openai/v1",
        max_retries=0,
        default_headers={
            "X-Kontex-Api-Key": kontex.key,
            "X-Kontex-Session-Id": kontex.session.id,
            **extra,
        },
    )
    direct = openai.OpenAI(api_key="sk-openai-caller", base_url=f"{upstream.url}/v1", max_retries=0)
    return proxied, direct


def captured(kontex: Any) -> list[Any]:
    kontex.served.settle()
    records = [sqs_record("capture", f"c{i}", b, 1) for i, b in enumerate(kontex.queue.sent)]
    for _ in range(2):  # redelivered: still one snapshot per call
        assert worker({"Records": records}, LocalContext(function_name="w")) == {
            "batchItemFailures": []
        }
    return snapshots.list_snapshots(kontex.deps, kontex.account_id, kontex.session.id).items


def headers_of(raw: Any) -> dict[str, str]:
    return {k: v for k, v in raw.headers.items() if k.lower() not in OWN}


def test_chat_completions_json_equal_a_direct_call_and_are_captured(
    kontex: Any, upstream: FakeOpenAI
) -> None:
    proxied, direct = clients(kontex, upstream)
    via = proxied.chat.completions.with_raw_response.create(model="gpt-4o", messages=WEATHER)
    straight = direct.chat.completions.with_raw_response.create(model="gpt-4o", messages=WEATHER)
    assert via.status_code == straight.status_code == 200
    assert headers_of(via) == headers_of(straight)
    assert via.parse().model_dump() == straight.parse().model_dump()
    sent = upstream.requests[-2][0]
    assert sent["authorization"] == "Bearer sk-openai-caller"
    assert not [h for h in sent if h.startswith("x-kontex")]

    (snap,) = captured(kontex)
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
    assert [m.role for m in bundle.messages] == ["system", "user", "assistant"]
    assert bundle.messages[0].content == "Be brief."
    assert bundle.messages[-1].content[0] == {
        "type": "text",
        "text": "Echo: what is the weather in Paris?",
    }
    assert [(c.id, c.tool, c.input) for c in bundle.tool_calls] == [
        ("call_fake_1", "get_weather", {"city": "Paris", "unit": "c"})
    ]
    # OpenAI's prompt tokens include the cached ones: each part priced at its own rate
    prompt = 1200 + len("what is the weather in Paris?")
    assert snap.usage is not None
    assert (snap.usage.input_tokens, snap.usage.cache_read_tokens) == (prompt - 1024, 1024)
    assert snap.usage.output_tokens == 30 and snap.token_total == prompt + 30
    assert snap.usage.cost_usd == pytest.approx(
        ((prompt - 1024) * 2.5 + 1024 * 1.25 + 30 * 10.0) / 1e6
    )
    assert bundle.model == "gpt-4o"


def test_chat_completion_streams_equal_a_direct_stream_and_are_captured(
    kontex: Any, upstream: FakeOpenAI
) -> None:
    proxied, direct = clients(kontex, upstream, **{"X-Kontex-Snapshot-Trigger": "on_tool_end"})
    asked = {"model": "gpt-4.1-mini", "messages": WEATHER, "stream": True}
    asked["stream_options"] = {"include_usage": True}
    via = [c.model_dump() for c in proxied.chat.completions.create(**asked)]
    straight = [c.model_dump() for c in direct.chat.completions.create(**asked)]
    assert via == straight and via[-1]["usage"]["prompt_tokens"] > 0
    (snap,) = captured(kontex)
    bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
    assert [(c.id, c.tool, c.input) for c in bundle.tool_calls] == [
        ("call_fake_1", "get_weather", {"city": "Paris", "unit": "c"})
    ]
    assert bundle.messages[-1].content[0]["text"] == "Echo: what is the weather in Paris?"
    assert snap.usage is not None and snap.usage.output_tokens == 30
    assert snap.usage.cost_usd is not None  # gpt-4.1-mini is in the price table


def test_responses_json_and_stream_with_reasoning_are_captured(
    kontex: Any, upstream: FakeOpenAI
) -> None:
    proxied, direct = clients(kontex, upstream)
    given = [
        {"role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        {"type": "function_call", "call_id": "call_0", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_0", "output": "found"},
        {"role": "user", "content": "what is the weather in Paris?"},
    ]
    call = {"model": "o4-mini", "instructions": "Be brief.", "input": given}
    via = proxied.responses.create(**call)
    assert via.model_dump() == direct.responses.create(**call).model_dump()
    events = [e.model_dump() for e in proxied.responses.create(**call, stream=True)]
    assert events == [e.model_dump() for e in direct.responses.create(**call, stream=True)]
    assert events[-1]["type"] == "response.completed"

    first, second = captured(kontex)
    for snap in (first, second):
        bundle = snapshots.get_bundle(kontex.deps, kontex.account_id, snap.id)
        assert [m.role for m in bundle.messages] == [
            "system",
            "user",
            "assistant",
            "user",
            "user",
            "assistant",
        ]
        assert bundle.reasoning == "Thinking about: what is the weather in Paris?"
        assert [(c.id, c.tool, c.status) for c in bundle.tool_calls] == [
            ("call_0", "lookup", "success"),
            ("call_fake_2", "get_weather", "pending"),
        ]
        assert snap.usage is not None and snap.usage.output_tokens == 30
        assert snap.usage.cost_usd is not None


@pytest.mark.parametrize(
    ("model", "status", "error"),
    [
        ("rate-limited", 429, openai.RateLimitError),
        ("overloaded-529", 529, openai.APIStatusError),
        ("broken-500", 500, openai.InternalServerError),
    ],
)
def test_upstream_errors_reach_the_sdk_unchanged(
    kontex: Any, upstream: FakeOpenAI, model: str, status: int, error: type
) -> None:
    proxied, direct = clients(kontex, upstream)
    caught = []
    for client in (proxied, direct):
        with pytest.raises(error) as raised:
            client.chat.completions.create(model=model, messages=WEATHER)
        caught.append(raised.value)
    via, straight = caught
    assert via.status_code == straight.status_code == status
    assert via.body == straight.body
    assert via.response.headers["retry-after"] == "3"
    assert headers_of(via.response) == headers_of(straight.response)
    kontex.served.settle()
    assert kontex.queue.sent == []


def test_other_paths_are_forwarded_not_captured_and_kontex_keys_never_go(
    kontex: Any, upstream: FakeOpenAI
) -> None:
    # the Kontex key where the OpenAI key goes: it is the caller's Kontex key, never forwarded
    client = openai.OpenAI(api_key=kontex.key, base_url=f"{kontex.served.url}/proxy/openai/v1")
    assert [m.id for m in client.models.list().data] == ["gpt-fake"]
    sent, request = upstream.requests[-1]
    assert request == {"method": "GET", "path": "/v1/models"}
    assert "authorization" not in sent and kontex.key not in json.dumps(sent)
    kontex.served.settle()
    assert kontex.queue.sent == []
    bad = openai.OpenAI(api_key="sk-x", base_url=f"{kontex.served.url}/proxy/openai/v1")
    with pytest.raises(openai.AuthenticationError) as raised:
        bad.models.list()
    assert raised.value.body is not None
    assert len(upstream.requests) == 1  # refused before anything went upstream
