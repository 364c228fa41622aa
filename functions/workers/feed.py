"""Feed worker (SQS, from the events topic): each event posted to the WebSocket connections
subscribed to its session; idempotent per (event, connection)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kontex.adapters.sns_events import event_body
from kontex.adapters.sqs_batch import RetryingBatchProcessor
from kontex.bootstrap import container
from kontex.observability import count, metrics, tracer
from kontex.services import live

logger = Logger(service="kontex-feed")
# a permanent failure to the DLQ at once, a transient one back after a backoff (sqs_batch)
processor = RetryingBatchProcessor(lambda: container().redrive)


def record_handler(record: SQSRecord) -> None:
    deps = container().deps
    body = event_body(record.body, deps.blobs)  # a large event arrives by claim check
    posted = live.deliver(deps, container().connections, body)
    count("EventsPosted", posted)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    answer = process_partial_response(event, record_handler, processor, context)
    count("RecordsFailed", len(answer.get("batchItemFailures", [])))
    return answer
