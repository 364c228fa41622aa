"""Embed worker (SQS): the event fan-out's ``embed`` queue into the vector index.

Each record is one event (``{"id", "type", "account_id", "session_id", "data"}``):
``snapshot.created`` / ``snapshot.enriched`` embed what the snapshot adds and announce
``snapshot.embedded``; ``session.purged`` deletes the session's points; any other type is
acknowledged and ignored. Redelivery is harmless: points are keyed by their content. A record
that fails (the embedder or the vector store down) is reported in ``batchItemFailures`` and
only it is retried, after a backoff; one wrong in itself is dead-lettered at once
(``kontex.adapters.sqs_batch``).
"""

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kontex.adapters.sns_events import event_body
from kontex.adapters.sqs_batch import RetryingBatchProcessor
from kontex.bootstrap import container
from kontex.observability import count, metrics, tracer
from kontex.services import search

logger = Logger(service="kontex-embed")
# a permanent failure to the DLQ at once, a transient one back after a backoff (sqs_batch)
processor = RetryingBatchProcessor(lambda: container().redrive)


def record_handler(record: SQSRecord) -> None:
    deps = container().deps
    # a large event arrives by claim check, read (never deleted: the feed reads it too)
    done = search.handle_event(deps, json.loads(event_body(record.body, deps.blobs)))
    if done == "embedded":
        count("SnapshotsEmbedded")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    answer = process_partial_response(event, record_handler, processor, context)
    count("RecordsFailed", len(answer.get("batchItemFailures", [])))
    return answer
