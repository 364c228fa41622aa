"""Messaging: the spans, captures and snapshot-events queues, each with its dead-letter queue.

A queue's visibility timeout is six times its consumer's timeout (AWS's guidance for Lambda
event sources: a batch being retried is never handed to a second consumer), a message moves to
the DLQ after MAX_RECEIVE_COUNT failed receives, a CloudWatch alarm fires as soon as a DLQ holds
a message, and every queue is SSE-encrypted and TLS-only.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RECEIVE_COUNT = 5
VISIBILITY_FACTOR = 6
DLQ_RETENTION = Duration.days(14)
QUEUE_NAMES = ("spans", "captures", "events")


class WorkQueue(Construct):
    """One queue and its DLQ, sized for a consumer that runs at most ``consumer_timeout``."""

    def __init__(self, scope: Construct, id: str, *, consumer_timeout: Duration) -> None:
        super().__init__(scope, id)
        self.consumer_timeout = consumer_timeout
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=Duration.seconds(consumer_timeout.to_seconds() * VISIBILITY_FACTOR),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        # One message in the DLQ is a record a worker failed MAX_RECEIVE_COUNT times: look now
        # (docs/deploy.md, "Operating notes": find the reason, fix, redrive).
        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "DlqNotEmpty",
            alarm_description=f"Kontex {id}: messages in the dead-letter queue",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


class Messaging(Construct):
    def __init__(self, scope: Construct, id: str, *, consumer_timeout: Duration) -> None:
        super().__init__(scope, id)
        self.queues: dict[str, WorkQueue] = {
            name: WorkQueue(self, name.capitalize(), consumer_timeout=consumer_timeout)
            for name in QUEUE_NAMES
        }
