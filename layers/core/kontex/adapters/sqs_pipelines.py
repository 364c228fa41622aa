"""The ``Pipelines`` port on AWS: each pipeline's SQS queue and dead-letter queue.

Depth is what SQS counts for the queue (visible, in flight and delayed messages); the age of
the oldest message is SQS's CloudWatch metric ``ApproximateAgeOfOldestMessage`` (SQS has no API
call that answers it), its latest one-minute maximum of the last ten minutes, read for every
queue in one ``GetMetricData`` call. The same metric carries the stack's lag alarms
(infra/observability.py). ``KONTEX_PIPELINES`` names the queues:
``{"spans": {"queue": <url>, "dlq": <url>}, ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kontex.domain.errors import Transient
from kontex.ports import PipelineLag

DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class SqsPipelines:
    def __init__(
        self, queues: Mapping[str, Mapping[str, str]], sqs: Any = None, cloudwatch: Any = None
    ) -> None:
        self.queues = {name: dict(urls) for name, urls in queues.items()}
        self._sqs, self._cloudwatch = sqs, cloudwatch

    @classmethod
    def from_json(cls, text: str) -> SqsPipelines:
        return cls(json.loads(text))

    def _clients(self) -> tuple[Any, Any]:
        if self._sqs is None or self._cloudwatch is None:
            import boto3

            self._sqs = self._sqs or boto3.client("sqs")
            self._cloudwatch = self._cloudwatch or boto3.client("cloudwatch")
        return self._sqs, self._cloudwatch

    def _depth(self, sqs: Any, url: str | None) -> int:
        if not url:
            return 0
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))
        attributes = found.get("Attributes", {})
        return sum(int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES)

    def _ages(self, cloudwatch: Any) -> dict[str, float]:
        now = datetime.now(UTC)
        queries = [
            {
                "Id": f"q{n}",
                "Label": name,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": queue_name(urls["queue"])}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for n, (name, urls) in enumerate(self.queues.items())
        ]
        if not queries:
            return {}
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=queries,
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),  # the current minute too (times go as seconds)
            ScanBy="TimestampDescending",
        )
        return {
            result["Label"]: float(result["Values"][0])
            for result in answer.get("MetricDataResults", [])
            if result.get("Values")
        }

    def lag(self) -> list[PipelineLag]:
        from botocore.exceptions import BotoCoreError, ClientError

        sqs, cloudwatch = self._clients()
        try:
            ages = self._ages(cloudwatch)
            lags = []
            for name, urls in self.queues.items():
                depth = self._depth(sqs, urls.get("queue"))
                lags.append(
                    PipelineLag(
                        name=name,
                        depth=depth,
                        oldest_age_seconds=ages.get(name) if depth else None,
                        dead_letters=self._depth(sqs, urls.get("dlq")),
                    )
                )
        except (BotoCoreError, ClientError) as error:
            raise Transient("the queues' figures are unavailable") from error
        return lags
