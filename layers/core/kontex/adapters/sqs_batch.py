"""Powertools' SQS batch processor with Kontex's retry rule (``kontex.domain.retry``).

Every queue worker (``functions/workers/*.py``) processes its records with
``RetryingBatchProcessor``: one record that fails never takes its neighbours with it (Powertools'
partial batch response), and each failure is sorted by kind:

- **permanent** (the record itself is wrong): on AWS it is sent to the worker's own DLQ with
  its reason (``SqsRedrive.dead_letter``) and reported as processed, so SQS does not hand it out
  again; if that send fails, it is reported as failed and retried like a transient one.
- **transient**: reported in ``batchItemFailures``; on AWS its visibility is set to the
  backoff of ``QUEUE_RETRY`` for its receive count (1 s, 2 s, 4 s, ... at most 60 s), so it
  comes back soon instead of after the queue's whole visibility timeout. SQS's redrive policy
  moves it to the DLQ after ``MAX_RECEIVE_COUNT`` receives (infra/messaging.py).

Locally (no DLQ configured: ``redrive`` gives None) both kinds are reported in
``batchItemFailures``; the local queue (``adapters/local_queue.py``) reads the kind of each
from ``batch_failure_reasons`` and does the same: a permanent one to the dead letters at once, a
transient one again after the same backoff.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from kontex.domain.retry import QUEUE_RETRY, Failure, RetryPolicy

log = logging.getLogger("kontex.queue")
MAX_REASON_CHARS = 1024  # a dead letter's reason attribute (the body is the message's own)


class Redrive(Protocol):
    """What a worker does itself with a failed record on a real queue."""

    def dead_letter(self, record: SQSRecord, failure: Failure) -> None:
        """Put the record in the dead-letter queue with its reason; raises if it could not."""
        ...

    def back_off(self, record: SQSRecord, seconds: float) -> None:
        """Hand the record out again in ``seconds`` (best effort)."""
        ...


def receives_of(record: SQSRecord) -> int:
    try:
        return max(int(record.attributes.approximate_receive_count), 1)
    except (KeyError, TypeError, ValueError):
        return 1


class SqsRedrive:
    """``Redrive`` on SQS: the worker's DLQ (its URL from infra) and ChangeMessageVisibility on
    the queue the record came from (its URL from the record's ARN)."""

    def __init__(self, dlq_url: str, client: Any = None) -> None:
        self.dlq_url = dlq_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        return self._client

    def dead_letter(self, record: SQSRecord, failure: Failure) -> None:
        self.client.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=record.body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": failure.reason[:MAX_REASON_CHARS]},
                "source_queue": {"DataType": "String", "StringValue": record.event_source_arn},
                "receives": {"DataType": "Number", "StringValue": str(receives_of(record))},
            },
        )

    def back_off(self, record: SQSRecord, seconds: float) -> None:
        try:
            self.client.change_message_visibility(
                QueueUrl=record.queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=math.ceil(seconds),
            )
        except Exception:  # the queue's own visibility timeout brings it back instead
            log.warning("could not set the backoff of message %s", record.message_id, exc_info=True)


class RetryingBatchProcessor(BatchProcessor):
    """An SQS ``BatchProcessor`` that dead-letters permanent failures at once and backs off
    transient ones. ``redrive`` gives the ``Redrive`` to use (on AWS), or None (locally: the
    local queue does both from what ``batch_failure_reasons`` tells it)."""

    def __init__(
        self,
        redrive: Callable[[], Redrive | None] = lambda: None,
        policy: RetryPolicy = QUEUE_RETRY,
    ) -> None:
        super().__init__(event_type=EventType.SQS)
        self.redrive = redrive
        self.policy = policy
        self.dead_lettered: list[str] = []  # message ids this batch sent to the DLQ itself

    def _prepare(self) -> None:
        super()._prepare()
        self.dead_lettered = []

    def failure_handler(self, record: Any, exception: Any) -> Any:
        error = exception[1] if isinstance(exception, tuple) and len(exception) > 1 else None
        if not isinstance(record, SQSRecord) or error is None:
            return super().failure_handler(record, exception)
        failure = Failure.of(error)
        try:
            redrive = self.redrive()
        except Exception:  # reported as failed: the queue retries it, and dead-letters it late
            log.exception("no redrive for message %s", record.message_id)
            redrive = None
        if redrive is None:
            return super().failure_handler(record, exception)
        if failure.permanent:
            try:
                redrive.dead_letter(record, failure)
            except Exception:
                log.exception(
                    "message %s could not be dead-lettered; retrying it", record.message_id
                )
            else:
                log.error(
                    "message %s moved to the dead-letter queue after %d receive(s): %s",
                    record.message_id,
                    receives_of(record),
                    failure.reason,
                )
                self.dead_lettered.append(record.message_id)
                return self.success_handler(record, failure.reason)
        redrive.back_off(record, self.policy.delay(receives_of(record)))
        return super().failure_handler(record, exception)
