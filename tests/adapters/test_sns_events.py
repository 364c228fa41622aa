"""The Events port on SNS, in moto: a real topic fanned out to SQS queues with raw delivery.

Each consumer's queue receives the event JSON exactly as published; the type travels as a
message attribute (a subscription can filter on it); an event too large for SNS goes by claim
check; a publish that fails raises, so the outbox keeps the event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.sns_events import CLAIMS, THRESHOLD, SnsEvents, event_body
from kontex.domain.errors import PayloadTooLarge, Transient
from kontex.ports import Event

NOW = datetime(2026, 12, 4, tzinfo=UTC)
SNAPSHOT = {
    "id": "snap_1",
    "task_id": "task_1",
    "label": "step 1",
    "token_count": 42,
    "usage": {"input_tokens": 40, "output_tokens": 2},
    "created_at": "2026-01-01T12:00:00+00:00",
}


def _topic_with_queues(*names: str, filter_type: str | None = None) -> tuple[str, dict[str, str]]:
    """A topic and one queue per consumer, subscribed with raw message delivery."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="kontex-events")["TopicArn"]
    urls = {}
    for name in names:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = {"RawMessageDelivery": "true"}
        if filter_type and name.endswith("filtered"):
            attributes["FilterPolicy"] = json.dumps({"type": [filter_type]})
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
        urls[name] = url
    return topic, urls


def _receive(url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    sqs = boto3.client("sqs")
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return messages
        messages.extend(got)


def test_each_consumer_queue_receives_the_event_json_unchanged(mocked_aws: None) -> None:
    # Given the topic fanned out to the feed's and the embedder's queues
    topic, urls = _topic_with_queues("feed", "embed")
    events = SnsEvents(topic)

    # When the outbox publishes one event
    events.publish(Event("evt_1", "snapshot.created", "acct_1", "sess_1", SNAPSHOT, NOW))

    # Then both queues hold exactly the contract's JSON, with the type as an attribute
    expected = {
        "id": "evt_1",
        "type": "snapshot.created",
        "account_id": "acct_1",
        "session_id": "sess_1",
        "data": SNAPSHOT,
    }
    for name, url in urls.items():
        (message,) = _receive(url)
        assert json.loads(message["Body"]) == expected, name
        assert message["MessageAttributes"]["type"] == {
            "StringValue": "snapshot.created",
            "DataType": "String",
        }


def test_a_subscription_can_filter_on_the_type_attribute(mocked_aws: None) -> None:
    topic, urls = _topic_with_queues("all", "filtered", filter_type="session.updated")
    events = SnsEvents(topic)

    events.publish(Event("evt_1", "snapshot.created", "acct_1", "sess_1", SNAPSHOT, NOW))
    events.publish(Event("evt_2", "session.updated", "acct_1", "sess_1", {"id": "sess_1"}, NOW))

    assert [json.loads(m["Body"])["id"] for m in _receive(urls["all"])] == ["evt_1", "evt_2"]
    assert [json.loads(m["Body"])["id"] for m in _receive(urls["filtered"])] == ["evt_2"]


def test_an_event_too_large_for_sns_goes_by_claim_check(mocked_aws: None, tmp_path: Path) -> None:
    # Given a session whose metadata alone is over SNS's 256 KiB
    topic, urls = _topic_with_queues("feed", "embed")
    blobs = LocalBlobs(tmp_path / "blobs")
    events = SnsEvents(topic, blobs=blobs)
    data = {"id": "sess_1", "metadata": {"notes": "x" * (300 * 1024)}}

    # When it is published, and published again by the sweeper
    events.publish(Event("evt_big", "session.updated", "acct_1", "sess_1", data, NOW))
    events.publish(Event("evt_big", "session.updated", "acct_1", "sess_1", data, NOW))

    # Then each queue holds a small reference, which opens to the whole event in both
    for url in urls.values():
        first, second = _receive(url)
        assert (
            first["Body"] == second["Body"] == json.dumps({"kontex_claim": f"{CLAIMS}evt_big.json"})
        )
        assert first["MessageAttributes"]["type"]["StringValue"] == "session.updated"
        opened = json.loads(event_body(first["Body"], blobs))
        assert opened["id"] == "evt_big" and opened["data"] == data
    # read by every consumer, so never deleted by one
    assert blobs.get(f"{CLAIMS}evt_big.json")
    # a small event is its own body
    assert event_body('{"id": "evt_1"}', blobs) == '{"id": "evt_1"}'


def test_an_event_too_large_without_an_object_store_is_refused(mocked_aws: None) -> None:
    topic, urls = _topic_with_queues("feed")
    events = SnsEvents(topic)
    with pytest.raises(PayloadTooLarge, match="evt_big is .* bytes, over SNS's"):
        events.publish(Event("evt_big", "session.updated", "a", "s", {"x": "y" * THRESHOLD}, NOW))
    assert _receive(urls["feed"]) == []


def test_a_publish_that_fails_raises_so_the_outbox_keeps_the_event(mocked_aws: None) -> None:
    missing = "arn:aws:sns:eu-west-1:123456789012:no-such-topic"
    with pytest.raises(Transient, match="topic is unavailable"):
        SnsEvents(missing).publish(Event("evt_1", "snapshot.created", "a", "s", SNAPSHOT, NOW))


def test_the_client_is_made_on_first_use_and_reused(mocked_aws: None) -> None:
    topic, urls = _topic_with_queues("feed")
    events = SnsEvents(topic)
    assert events._client is None  # nothing made at construction (moto may start later)
    events.publish(Event("evt_1", "task.updated", "a", "s", {"id": "task_1"}, NOW))
    client = events._client
    events.publish(Event("evt_2", "task.updated", "a", "s", {"id": "task_1"}, NOW))
    assert client is not None and events._client is client
    assert len(_receive(urls["feed"])) == 2


def test_many_events_go_out_in_batches_of_ten(mocked_aws: None) -> None:
    topic, urls = _topic_with_queues("feed")
    events = SnsEvents(topic)
    calls: list[int] = []
    publish_batch = events.client.publish_batch

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["PublishBatchRequestEntries"]))
        return publish_batch(**kwargs)

    events.client.publish_batch = counting
    many = [Event(f"evt_{n}", "snapshot.created", "a", "s", {"n": n}, NOW) for n in range(23)]
    assert events.publish_many(many) == [e.id for e in many]
    assert calls == [10, 10, 3]
    got = sorted(json.loads(m["Body"])["data"]["n"] for m in _receive(urls["feed"]))
    assert got == list(range(23))


def test_a_batch_that_fails_publishes_nothing_and_says_so(mocked_aws: None) -> None:
    events = SnsEvents("arn:aws:sns:eu-west-1:123456789012:missing")
    many = [Event(f"evt_{n}", "t", "a", "s", {}, NOW) for n in range(3)]
    assert events.publish_many(many) == []  # left in the outbox for the sweeper
