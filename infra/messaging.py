"""Messaging: the spans and captures work queues, and the events topic fanned out to one queue
per event consumer (the live feed, embeddings), each queue with its dead-letter queue.

Events (the outbox's ``snapshot.created``, ``session.updated``, ...) are published once to an
SNS topic; every consumer has its own SQS queue subscribed with raw message delivery, so its
worker reads the event JSON as the producer wrote it, retries on its own and dead-letters on
its own. A new consumer is one entry in ``infra/workers.py`` WORKERS (``events=True``). The
topic is encrypted with SNS's AWS-managed key (the publishers are the stack's own functions,
which that key's policy admits through SNS) and refuses requests that are not TLS.

A queue's visibility timeout is six times its consumer's timeout (AWS's guidance for Lambda
event sources: a batch being retried is never handed to a second consumer), a message moves to
the DLQ after MAX_RECEIVE_COUNT failed receives, a CloudWatch alarm fires as soon as a DLQ holds
a message, and every queue is SSE-encrypted and TLS-only.

Retries follow the kind of failure (``kontex.domain.retry``, done by the worker's batch
processor, ``kontex.adapters.sqs_batch``): a record wrong in itself is sent by its worker to the
queue's DLQ at once, with its reason (``KONTEX_DEAD_LETTER_QUEUE_URL``, ``consumed_by``), and
deleted from the queue; a transient failure (the database unavailable, a timeout, throttling)
comes back after a backoff the worker sets with ChangeMessageVisibility (1 s, doubling, at most
60 s), so MAX_RECEIVE_COUNT receives span about ten minutes: a minute-long outage dead-letters
nothing. Should a worker not set its backoff (it crashed), the visibility timeout brings the
record back, and MAX_RECEIVE_COUNT of those last far longer.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MAX_RECEIVE_COUNT = 16  # kontex.domain.retry.QUEUE_RETRY.max_receives
VISIBILITY_FACTOR = 6
DLQ_RETENTION = Duration.days(14)
QUEUE_NAMES = ("spans", "captures")  # work queues producers send to by name


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
        # One message in the DLQ is a record wrong in itself, or one a worker failed
        # MAX_RECEIVE_COUNT times: look now
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

    def consumed_by(self, function: lambda_.Function) -> None:
        """``function`` is this queue's worker: it sends a record that failed for good to the
        DLQ itself (kontex.adapters.sqs_batch), so it gets the DLQ's URL and may send to it.
        (Its event source mapping grants the rest: receive, delete, change visibility.)"""
        function.add_environment("KONTEX_DEAD_LETTER_QUEUE_URL", self.dlq.queue_url)
        self.dlq.grant_send_messages(function)


class Messaging(Construct):
    """``queues``: every queue by name, the work queues and one per event consumer;
    ``topic``: where the outbox publishes events."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        consumer_timeout: Duration,
        event_consumers: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id)
        self.queues: dict[str, WorkQueue] = {
            name: WorkQueue(self, name.capitalize(), consumer_timeout=consumer_timeout)
            for name in QUEUE_NAMES
        }
        self.topic = sns.Topic(
            self,
            "Events",
            display_name="Kontex events",
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        self.event_consumers = tuple(event_consumers)
        for name in self.event_consumers:
            if name in self.queues:
                raise ValueError(f"event consumer {name!r} clashes with a work queue")
            self.subscribe(
                name, WorkQueue(self, name.capitalize(), consumer_timeout=consumer_timeout)
            )

    def subscribe(self, name: str, work: WorkQueue) -> None:
        """Make ``work`` the queue of event consumer ``name``: every event, raw delivery."""
        self.topic.add_subscription(
            # a message SNS cannot deliver (the queue unreachable for its whole retry policy)
            # goes to the consumer's own DLQ too, so its alarm says so
            subscriptions.SqsSubscription(
                work.queue, raw_message_delivery=True, dead_letter_queue=work.dlq
            )
        )
        self.queues[name] = work
