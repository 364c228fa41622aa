"""How far behind each pipeline is: the local queue file and SQS + CloudWatch (moto), what
`kontex dev` says about it and what `GET /health?detail=true` answers (issue 23, lag)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3

from kontex.adapters.local_queue import LocalQueue, batch_failure_reasons
from kontex.adapters.sqs_pipelines import SqsPipelines
from kontex.local.server import LagWatch
from kontex.ports import PIPELINES, PipelineLag
from kontex.services import health
from tests.adapters.test_queues import Worker


def by_name(lags: list[PipelineLag]) -> dict[str, PipelineLag]:
    return {lag.name: lag for lag in lags}


def test_the_local_queue_reports_depth_age_and_dead_letters(tmp_path: Path) -> None:
    q = LocalQueue(tmp_path / "queue.db", max_receive_count=1)
    try:
        assert {lag.name for lag in q.lag()} >= set(PIPELINES)
        assert all(lag.depth == 0 and lag.oldest_age_seconds is None for lag in q.lag())
        q.send("spans", [json.dumps({"id": f"s{i}"}) for i in range(3)])
        time.sleep(0.05)
        q.send("embed", [json.dumps({"id": "e"})])
        lags = by_name(q.lag())
        assert lags["spans"].depth == 3 and lags["embed"].depth == 1
        spans_age, embed_age = lags["spans"].oldest_age_seconds, lags["embed"].oldest_age_seconds
        assert spans_age is not None and embed_age is not None and spans_age > embed_age >= 0
        assert lags["feed"].depth == 0 and lags["feed"].oldest_age_seconds is None
        # a worker takes the spans; a poison one is dead-lettered and counted as such
        worker = Worker()
        q.register("spans", worker, batch_failure_reasons(worker.processor))
        q.send("spans", [json.dumps({"poison": True})])
        q.start()
        deadline = time.monotonic() + 10
        while by_name(q.lag())["spans"].depth and time.monotonic() < deadline:
            time.sleep(0.02)
        lags = by_name(q.lag())
        assert lags["spans"].depth == 0 and lags["spans"].dead_letters == 1
        assert lags["embed"].depth == 1  # nobody consumes it here
    finally:
        q.close()


def test_sqs_pipelines_read_depth_from_sqs_and_age_from_cloudwatch(mocked_aws: None) -> None:
    sqs, cloudwatch = boto3.client("sqs"), boto3.client("cloudwatch")
    queues = {}
    for name in ("spans", "feed"):
        queues[name] = {
            "queue": sqs.create_queue(QueueName=f"kontex-{name}")["QueueUrl"],
            "dlq": sqs.create_queue(QueueName=f"kontex-{name}-dlq")["QueueUrl"],
        }
    for i in range(4):
        sqs.send_message(QueueUrl=queues["spans"]["queue"], MessageBody=str(i))
    sqs.send_message(QueueUrl=queues["feed"]["dlq"], MessageBody="dead")
    # SQS's own metric, as CloudWatch would hold it for the spans queue
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "kontex-spans"}],
                "Timestamp": datetime.now(UTC),
                "Value": 42.0,
            }
        ],
    )
    pipelines = SqsPipelines.from_json(json.dumps(queues))
    lags = by_name(pipelines.lag())
    assert lags["spans"] == PipelineLag("spans", 4, 42.0, 0)
    assert lags["feed"] == PipelineLag("feed", 0, None, 1)


class Fixed:
    def __init__(self, lags: list[PipelineLag]) -> None:
        self.lags = lags

    def lag(self) -> list[PipelineLag]:
        return self.lags


def test_kontex_dev_says_when_a_pipeline_falls_behind_and_when_it_caught_up() -> None:
    said: list[str] = []
    pipelines = Fixed([PipelineLag("spans", 3, 1.0, 0), PipelineLag("embed", 0, None, 0)])
    watch = LagWatch(pipelines, said.append, every=10)
    watch.check(now=0)
    assert said == []  # a second old is not behind
    pipelines.lags = [PipelineLag("spans", 1240, 12.0, 0), PipelineLag("embed", 790, 190.0, 0)]
    watch.check(now=1)
    watch.check(now=5)  # said once per ten seconds at most
    assert said == ["behind: spans 1,240 waiting (oldest 12 s), embed 790 waiting (oldest 3 min)"]
    watch.check(now=12)
    assert len(said) == 2
    pipelines.lags = [PipelineLag("spans", 0, None, 0), PipelineLag("embed", 0, None, 0)]
    watch.check(now=13)
    watch.check(now=30)
    assert said[2:] == ["pipelines caught up"]


def test_health_detail_reports_each_pipeline() -> None:
    answer = health.report(
        Fixed([PipelineLag("spans", 5, 11.5, 2), PipelineLag("feed", 0, None, 0)])
    )
    assert answer["pipelines"]["spans"] == {
        "depth": 5,
        "oldest_age_seconds": 11.5,
        "dead_letters": 2,
        "behind": True,
    }
    assert answer["pipelines"]["feed"]["behind"] is False
    assert answer["behind"] == ["spans"]
    assert health.report(None)["pipelines"] == {}
