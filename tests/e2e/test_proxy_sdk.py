"""The real `anthropic` SDK through `kontex dev` to a fake Messages API, JSON and streamed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev
from tests.proxy.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.e2e
MESSAGES = [{"role": "user", "content": "what is the weather in Paris?"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeAnthropic]:
    with FakeAnthropic().running() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAnthropic) -> Iterator[DevStack]:
    data = tmp_path_factory.mktemp("proxy") / "data"
    create_key(data, "bootstrap")
    running = start_dev(data, env={"ANTHROPIC_API_URL": upstream.url})
    yield running
    stop_dev(running)


@pytest.fixture
def setup(stack: DevStack) -> dict[str, Any]:
    key = create_key(stack.data_dir, "sdk")
    api = Http(stack.base, key)
    session = api("POST", "/v1/sessions", {"name": "sdk run"})[1]
    return {"key": key, "api": api, "session": session}


def clients(
    stack: DevStack, upstream: FakeAnthropic, setup: dict[str, Any], trigger: str = "always"
) -> tuple[anthropic.Anthropic, anthropic.Anthropic]:
    proxied = anthropic.Anthropic(
        api_key="sk-ant-caller",
        base_url=f"{stack.base}/proxy",
        max_retries=0,
        default_headers={
            "X-Kontex-Api-Key": setup["key"],
            "X-Kontex-Session-Id": setup["session"]["id"],
            "X-Kontex-Snapshot-Trigger": trigger,
            "anthropic-beta": "interleaved-thinking-2025-05-14",
        },
    )
    direct = anthropic.Anthropic(api_key="sk-ant-caller", base_url=upstream.url, max_retries=0)
    return proxied, direct


def snapshots_of(setup: dict[str, Any], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = setup["api"]("GET", f"/v1/sessions/{setup['session']['id']}/snapshots")[1]["data"]
        if len(data) >= count:
            return data
        time.sleep(0.1)
    raise AssertionError(f"expected {count} snapshots")


def test_json_answers_equal_a_direct_call(
    stack: DevStack, upstream: FakeAnthropic, setup: dict[str, Any]
) -> None:
    proxied, direct = clients(stack, upstream, setup)
    via = proxied.messages.create(model="claude-fake", max_tokens=50, messages=MESSAGES)
    straight = direct.messages.create(model="claude-fake", max_tokens=50, messages=MESSAGES)
    assert via.model_dump() == straight.model_dump()
    headers = upstream.requests[-2][0]
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "sk-ant-caller" in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    assert not [h for h in headers if h.startswith("x-kontex")]

    (snap,) = snapshots_of(setup, 1)
    bundle = setup["api"]("GET", f"/v1/snapshots/{snap['id']}/bundle")[1]
    assert snap["source"] == "proxy" and snap["token_total"] == 126
    assert [m["role"] for m in bundle["messages"]] == ["user", "assistant"]
    assert bundle["reasoning"].startswith("Thinking about:")
    assert bundle["tool_calls"][0]["tool"] == "get_weather"


def test_streams_equal_a_direct_stream(
    stack: DevStack, upstream: FakeAnthropic, setup: dict[str, Any]
) -> None:
    proxied, direct = clients(stack, upstream, setup)
    with proxied.messages.stream(model="claude-fake", max_tokens=50, messages=MESSAGES) as s:
        texts = list(s.text_stream)
        via = s.get_final_message()
    with direct.messages.stream(model="claude-fake", max_tokens=50, messages=MESSAGES) as s:
        assert list(s.text_stream) == texts
        assert s.get_final_message().model_dump() == via.model_dump()
    events = [
        e.type
        for e in proxied.messages.create(
            model="claude-fake", max_tokens=50, messages=MESSAGES, stream=True
        )
    ]
    assert events[0] == "message_start" and events[-1] == "message_stop"

    snaps = snapshots_of(setup, 2)
    bundle = setup["api"]("GET", f"/v1/snapshots/{snaps[0]['id']}/bundle")[1]
    reply = bundle["messages"][-1]["content"]
    assert [b["type"] for b in reply] == ["text", "tool_use"]
    assert reply[1]["input"] == {"city": "Paris", "unit": "c"}
    assert snaps[0]["token_total"] == 126


def test_upstream_errors_reach_the_sdk_unchanged(
    stack: DevStack, upstream: FakeAnthropic, setup: dict[str, Any]
) -> None:
    proxied, direct = clients(stack, upstream, setup)
    errors = []
    for client in (proxied, direct):
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="overloaded", max_tokens=5, messages=MESSAGES)
        errors.append(
            (
                caught.value.status_code,
                caught.value.body,
                caught.value.response.headers.get("retry-after"),
            )
        )
    assert errors[0] == errors[1] == (429, errors[1][1], "7")

    unauthenticated = anthropic.Anthropic(
        api_key="sk", base_url=f"{stack.base}/proxy", max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError):
        unauthenticated.messages.create(model="claude-fake", max_tokens=5, messages=MESSAGES)
