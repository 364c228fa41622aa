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


def test_custom_headers_reach_the_upstream_and_kontex_keys_never_do(
    stack: DevStack, upstream: FakeAnthropic, setup: dict[str, Any]
) -> None:
    # Given a client whose upstream key slot holds its Kontex key, plus a gateway header
    client = anthropic.Anthropic(
        api_key=setup["key"],
        base_url=f"{stack.base}/proxy",
        max_retries=0,
        default_headers={"X-Gateway-Route": "team-a", "X-Kontex-Session-Id": "header run"},
    )
    # When it calls through the proxy
    client.messages.create(model="claude-fake", max_tokens=5, messages=MESSAGES)
    # Then the custom header arrives, and no header carries the Kontex key
    headers = upstream.requests[-1][0]
    assert headers["x-gateway-route"] == "team-a"
    assert headers["anthropic-version"]
    assert not [v for v in headers.values() if "kontex_" in v]
    assert "authorization" not in headers and "x-api-key" not in headers


def test_count_tokens_and_models_are_forwarded(
    stack: DevStack, upstream: FakeAnthropic, setup: dict[str, Any]
) -> None:
    proxied, direct = clients(stack, upstream, setup)
    counted = proxied.messages.count_tokens(model="claude-fake", messages=MESSAGES)
    assert (
        counted.input_tokens
        == direct.messages.count_tokens(model="claude-fake", messages=MESSAGES).input_tokens
    )
    models = proxied.models.list(limit=5)
    assert [m.id for m in models.data] == ["claude-fake"]
    assert upstream.requests[-1][1] == {"method": "GET", "path": "/v1/models?limit=5"}
    raw = proxied.models.with_raw_response.list()
    assert raw.headers["x-fake-echo"] == "/v1/models" and raw.headers["request-id"] == "req_models"
    time.sleep(0.5)  # nothing but POST /v1/messages is captured
    data = setup["api"]("GET", f"/v1/sessions/{setup['session']['id']}/snapshots")[1]["data"]
    assert data == []


def test_overloaded_and_rate_limited_pass_through(
    stack: DevStack, upstream: FakeAnthropic, setup: dict[str, Any]
) -> None:
    proxied, direct = clients(stack, upstream, setup)
    for model, status in (("overloaded-529", 529), ("overloaded", 429)):
        seen = []
        for client in (proxied, direct):
            with pytest.raises(anthropic.APIStatusError) as caught:
                client.messages.create(model=model, max_tokens=5, messages=MESSAGES)
            headers = caught.value.response.headers
            seen.append(
                (
                    type(caught.value),
                    caught.value.status_code,
                    caught.value.body,
                    headers.get("retry-after"),
                    headers.get("x-should-retry"),
                    headers.get("request-id"),
                )
            )
        assert seen[0] == seen[1] and seen[0][1] == status


def test_a_session_named_in_the_header_is_made_once_and_every_call_is_captured(
    stack: DevStack, upstream: FakeAnthropic
) -> None:
    key = create_key(stack.data_dir, "named")
    api = Http(stack.base, key)
    client = anthropic.Anthropic(
        api_key="sk-ant-caller",
        base_url=f"{stack.base}/proxy",
        max_retries=0,
        default_headers={"X-Kontex-Api-Key": key, "X-Kontex-Session-Id": "nightly eval"},
    )
    history: list[dict[str, Any]] = []
    for turn in range(3):  # no trigger header: the default captures every call
        history.append({"role": "user", "content": f"question {turn}"})
        reply = client.messages.create(model="claude-fake", max_tokens=5, messages=history)
        history.append({"role": "assistant", "content": reply.content[1].text})
    listed = api("GET", "/v1/sessions")[1]["data"]
    assert [s["name"] for s in listed] == ["nightly eval"]
    session = listed[0]["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        snaps = api("GET", f"/v1/sessions/{session}/snapshots")[1]["data"]
        if len(snaps) >= 3:
            break
        time.sleep(0.1)
    assert len(snaps) == 3 and {s["source"] for s in snaps} == {"proxy"}
    # an unknown session id is still a 404, and the call is not forwarded
    count = len(upstream.requests)
    stranger = anthropic.Anthropic(
        api_key="sk",
        base_url=f"{stack.base}/proxy",
        max_retries=0,
        default_headers={"X-Kontex-Api-Key": key, "X-Kontex-Session-Id": "sess_nope"},
    )
    with pytest.raises(anthropic.NotFoundError):
        stranger.messages.create(model="claude-fake", max_tokens=5, messages=MESSAGES)
    assert len(upstream.requests) == count
