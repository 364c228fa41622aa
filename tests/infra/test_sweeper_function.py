"""The scheduled sweeper function on both databases: outbox rows the relay could not publish
reach the consumers' queues through SNS (moto) when EventBridge's schedule invokes it."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from kontex import bootstrap
from kontex.adapters.sns_events import SnsEvents
from kontex.domain.models import ContextBundle
from kontex.services import keys, outbox, sessions, snapshots
from kontex.settings import Settings

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "sweeper" / "handler.py"
MISSING_TOPIC = "arn:aws:sns:eu-west-1:123456789012:gone"
SCHEDULED = {  # what an EventBridge schedule sends
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-01-01T12:01:00Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:events:eu-west-1:123456789012:rule/kontex-sweeper"],
    "detail": {},
}


class Context:
    function_name = "kontex-sweeper"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:kontex-sweeper"
    aws_request_id = "req-1"


@pytest.fixture
def feed(mocked_aws: None) -> tuple[str, str]:
    """The events topic and the feed's queue, subscribed with raw delivery."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="kontex-events")["TopicArn"]
    url = sqs.create_queue(QueueName="feed")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    return topic, url


@pytest.fixture
def sweeper(store: Any, tmp_path: Path, feed: tuple[str, str]) -> Iterator[ModuleType]:
    config = Settings.from_env({}, kontex_data_dir=tmp_path, kontex_api_key_secret="test-secret")
    # the topic is unreachable while the writes commit: their events stay in the outbox
    container = bootstrap.Container(config, store=store, events=SnsEvents(MISSING_TOPIC))
    bootstrap.configure(container)
    spec = importlib.util.spec_from_file_location("sweeper_handler", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        bootstrap.configure(None)


def _received(url: str) -> list[dict[str, Any]]:
    sqs, bodies = boto3.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _write_while_the_topic_is_down(seconds_ago: float) -> tuple[str, str, str]:
    deps = bootstrap.container().deps
    at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    deps.clock = lambda: at
    try:
        account = keys.create_key(deps, "sweep")[0].account_id
        s = sessions.create_session(deps, account, "run")
        t = sessions.create_task(deps, account, s.id, "work")
        bundle = ContextBundle.model_validate({"messages": [{"role": "user", "content": "hi"}]})
        snap = snapshots.create_snapshot(deps, account, t.id, "one", bundle)
        sessions.update_session(deps, account, s.id, name="renamed")
    finally:
        deps.clock = lambda: datetime.now(UTC)
    return account, s.id, snap.id


def test_scheduled_run_publishes_what_the_relay_left(
    sweeper: ModuleType, feed: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    topic, url = feed
    # Given four changes whose events did not go out (the topic was down), a minute ago
    account, session_id, snapshot_id = _write_while_the_topic_is_down(seconds_ago=60)
    assert _received(url) == []

    # When the topic is back and the schedule fires
    bootstrap.container().deps.events.topic_arn = topic  # type: ignore[attr-defined]
    answer = sweeper.lambda_handler(SCHEDULED, Context())

    # Then every event reaches the feed's queue once, as the contract's JSON
    assert answer == {"published": 4, "connections_pruned": 0}
    bodies = _received(url)
    assert sorted(b["type"] for b in bodies) == [
        "session.updated",  # created
        "session.updated",  # renamed
        "snapshot.created",
        "task.updated",  # created
    ]
    assert all(b["id"].startswith("evt_") for b in bodies) and len({b["id"] for b in bodies}) == 4
    assert {(b["account_id"], b["session_id"]) for b in bodies} == {(account, session_id)}
    (created,) = [b for b in bodies if b["type"] == "snapshot.created"]
    assert created["data"]["id"] == snapshot_id and "bundle_hash" not in created["data"]
    # ... counted in the run's metrics
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert [m["EventsSwept"] for m in emf if "EventsSwept" in m] == [[4.0]]
    # and the next run finds nothing left
    assert sweeper.lambda_handler(SCHEDULED, Context()) == {"published": 0, "connections_pruned": 0}
    assert _received(url) == []


def test_events_younger_than_the_sweep_delay_are_left_to_the_relay(
    sweeper: ModuleType, feed: tuple[str, str]
) -> None:
    topic, url = feed
    _write_while_the_topic_is_down(seconds_ago=0)
    bootstrap.container().deps.events.topic_arn = topic  # type: ignore[attr-defined]

    assert sweeper.lambda_handler(SCHEDULED, Context()) == {"published": 0, "connections_pruned": 0}
    # an operator may sweep everything at once
    assert sweeper.lambda_handler({"older_than_seconds": 0}, Context()) == {
        "published": 4,
        "connections_pruned": 0,
    }
    assert len(_received(url)) == 4


def test_a_run_while_the_topic_is_still_down_keeps_every_event(
    sweeper: ModuleType, feed: tuple[str, str]
) -> None:
    _, url = feed
    _write_while_the_topic_is_down(seconds_ago=60)

    assert sweeper.lambda_handler(SCHEDULED, Context()) == {"published": 0, "connections_pruned": 0}

    store = bootstrap.container().store
    later = datetime.now(UTC) + timedelta(seconds=1)
    with store.unit(write=False) as uow:
        assert len(uow.outbox.unpublished(later, 10)) == 4
    assert outbox.SWEEP_AFTER_SECONDS < 60


def test_a_run_drops_expired_connections_and_keeps_live_ones(sweeper: ModuleType) -> None:
    """API Gateway ends a connection after 2 hours and may never call $disconnect for it."""
    from kontex.services import live

    deps = bootstrap.container().deps
    store = bootstrap.container().store
    then = datetime.now(UTC) - live.CONNECTION_TTL - timedelta(minutes=1)
    deps.clock = lambda: then
    try:
        live.connect(deps, "gone-without-disconnect")
    finally:
        deps.clock = lambda: datetime.now(UTC)
    live.connect(deps, "still-open")

    assert sweeper.lambda_handler(SCHEDULED, Context()) == {
        "published": 0,
        "connections_pruned": 1,
    }
    now = datetime.now(UTC)
    with store.unit(write=False) as uow:
        assert uow.connections.get("still-open", now) is not None
    with store.unit(write=False) as uow:
        assert uow.connections.get("gone-without-disconnect", now - live.CONNECTION_TTL) is None
