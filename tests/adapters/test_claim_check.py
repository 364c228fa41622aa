"""Claim check in moto: a 1 MB span batch and a 2 MB capture go through SQS by reference.

The real composition root builds the queue (SQS wrapped in the claim check) and the object
store (S3); the real ingest and proxy handlers send, the real workers receive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from opentelemetry.trace import Tracer

from kontex import bootstrap
from kontex.adapters.claim_check import PREFIX, THRESHOLD, claim_of
from kontex.functions import worker_paths
from kontex.http.apigw import LocalContext, http_api_event, response_parts
from kontex.local.server import load_handler, load_module, load_worker
from kontex.services import keys, sessions, snapshots
from kontex.settings import Settings
from tests.otlp import spans as fixtures
from tests.proxy.fake_anthropic import FakeAnthropic
from tests.proxy.served import Served

ingest = load_handler("ingest")
proxy = load_module("proxy")
span_worker = load_worker(worker_paths()["spans"]).lambda_handler
capture_worker = load_worker(worker_paths()["capture"]).lambda_handler
BUCKET = "kontex-bundles-test"


@pytest.fixture
def aws(store: Any, tmp_path: Any, mocked_aws: None) -> Iterator[Any]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sqs = boto3.client("sqs")
    urls = {
        name: sqs.create_queue(QueueName=f"kontex-{name}")["QueueUrl"]
        for name in ("spans", "capture")
    }
    with FakeAnthropic().running() as upstream:
        config = Settings.from_env(
            {
                "KONTEX_API_KEY_SECRET": "s",
                "KONTEX_BUNDLE_BUCKET": BUCKET,
                "KONTEX_SPANS_QUEUE_URL": urls["spans"],
                "KONTEX_CAPTURES_QUEUE_URL": urls["capture"],
                "ANTHROPIC_API_URL": upstream.url,
            },
            kontex_data_dir=tmp_path,
        )
        made = bootstrap.Container(config, store=store)
        bootstrap.configure(made)
        key, made.test_key = keys.create_key(made.deps, "big")
        made.account_id = key.account_id
        made.s3, made.sqs, made.urls = s3, sqs, urls
        yield made
    bootstrap.configure(None)


def claims(aws: Any) -> list[str]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
    return [o["Key"] for o in listed.get("Contents", [])]


def received(aws: Any, queue: str) -> dict[str, Any]:
    messages = aws.sqs.receive_message(
        QueueUrl=aws.urls[queue], MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:eu-west-1:123456789012:kontex-{queue}",
                "awsRegion": "eu-west-1",
            }
            for m in messages
        ]
    }


def big_call(tracer: Tracer) -> None:
    with tracer.start_as_current_span(
        "openai.completion",
        attributes={
            "llm.request.type": "completion",
            "llm.request.model": "gpt-4o",
            "llm.prompts.0.role": "user",
            "llm.prompts.0.content": "lorem ipsum " * (1024 * 1024 // 12),
            "llm.completions.0.role": "assistant",
            "llm.completions.0.content": "a summary",
            "session.id": "big-session",
        },
    ):
        pass


def post_spans(aws: Any) -> int:
    body = fixtures.protobuf(fixtures.record(big_call))
    assert len(body) > 1024 * 1024
    event = http_api_event(
        "POST",
        "/ingest/v1/traces",
        [("x-kontex-api-key", aws.test_key), ("content-type", "application/x-protobuf")],
        body,
    )
    return response_parts(ingest(event, LocalContext(function_name="kontex-ingest")))[0]


def all_snapshots(aws: Any) -> list[Any]:
    out = []
    for s in sessions.list_sessions(aws.deps, aws.account_id, limit=100).items:
        out += snapshots.list_snapshots(aws.deps, aws.account_id, s.id, limit=100).items
    return out


def test_a_1_mb_span_batch_lands_by_reference(aws: Any) -> None:
    # Given a 1 MB span accepted by ingest
    assert post_spans(aws) == 200
    # Then SQS carries a reference, and the payload waits in S3
    event = received(aws, "spans")
    (record,) = event["Records"]
    assert claim_of(record["body"]) in claims(aws) and len(record["body"]) < 200
    # When the span worker takes it
    assert span_worker(event, LocalContext(function_name="w")) == {"batchItemFailures": []}
    # Then the span landed in full, and the reference object is gone
    (snap,) = all_snapshots(aws)
    bundle = snapshots.get_bundle(aws.deps, aws.account_id, snap.id)
    assert len(bundle.messages[0].content) > 1024 * 1024 - 12
    assert claims(aws) == []


def test_a_failed_batch_keeps_its_payload_for_the_retry(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kontex.services import spans

    assert post_spans(aws) == 200
    event = received(aws, "spans")
    original = spans.store_batch

    def broken(*args: Any) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(spans, "store_batch", broken)
    with pytest.raises(BatchProcessingError):  # the whole batch failed: Lambda retries it
        span_worker(event, LocalContext(function_name="w"))
    assert len(claims(aws)) == 1  # kept for the retry
    monkeypatch.setattr(spans, "store_batch", original)
    assert span_worker(event, LocalContext(function_name="w")) == {"batchItemFailures": []}
    assert claims(aws) == [] and len(all_snapshots(aws)) == 1


def test_a_2_mb_capture_lands_by_reference(aws: Any) -> None:
    session = sessions.create_session(aws.deps, aws.account_id, "long context")
    request = {
        "model": "claude-fake",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": f"part {i}: " + "context " * 4096} for i in range(0, 128, 2)
        ]
        + [{"role": "user", "content": "now answer"}],
    }
    raw = json.dumps(request).encode()
    assert len(raw) > 2 * 1024 * 1024 - 100_000 and len(raw) > THRESHOLD
    headers = {
        "x-kontex-api-key": aws.test_key,
        "x-kontex-session-id": session.id,
        "x-api-key": "sk-ant",
        "content-type": "application/json",
    }
    # the proxy's ASGI app on uvicorn, as the Web Adapter runs it
    with Served(proxy.app).running() as served:
        with httpx.Client(base_url=served.url, timeout=60) as client:
            answer = client.post("/proxy/v1/messages", headers=headers, content=raw)
        served.settle()  # the capture is queued after the answer
    assert answer.status_code == 200
    event = received(aws, "capture")
    (record,) = event["Records"]
    assert claim_of(record["body"]) in claims(aws)
    assert capture_worker(event, LocalContext(function_name="w")) == {"batchItemFailures": []}
    (snap,) = snapshots.list_snapshots(aws.deps, aws.account_id, session.id).items
    bundle = snapshots.get_bundle(aws.deps, aws.account_id, snap.id)
    assert len(bundle.messages) == len(request["messages"]) + 1
    assert claims(aws) == []
