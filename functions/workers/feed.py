"""Feed worker (SQS, from the events topic): each event posted to the WebSocket connections
subscribed to its session; idempotent per (event, connection)."""

from kontex.startup import loading

with loading():
    import json

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.batch import process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kontex.adapters.claim_check import claim_of
    from kontex.adapters.sns_events import event_body
    from kontex.adapters.sqs_batch import RetryingBatchProcessor
    from kontex.bootstrap import container
    from kontex.observability import count, metrics, tracer
    from kontex.services import live

    logger = Logger(service="kontex-feed")
    # a permanent failure to the DLQ at once, a transient one back after a backoff (sqs_batch)
    processor = RetryingBatchProcessor(lambda: container().redrive)


def record_handler(record: SQSRecord, audience: live.Audience | None = None) -> None:
    deps = container().deps
    body = event_body(record.body, deps.blobs)  # a large event arrives by claim check
    posted = live.deliver(deps, container().connections, body, audience)
    count("EventsPosted", posted)


def _audience(records: list[dict]) -> live.Audience | None:
    """Which sessions of the batch have subscribers, in one read (events by claim check, or
    that do not parse, are looked up on their own); None when the read fails (each record then
    looks up its own, and fails and is retried on its own)."""
    events = []
    for record in records:
        if claim_of(record["body"]) is None:
            try:
                events.append(json.loads(record["body"]))
            except ValueError:
                continue  # fails on its own, in record_handler
    try:
        return live.audience(container().deps, events)
    except Exception:
        logger.exception("the batch's subscribers were not looked up; looking up per event")
        return None


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    audience = _audience(event["Records"])
    answer = process_partial_response(
        event, lambda record: record_handler(record, audience), processor, context
    )
    count("RecordsFailed", len(answer.get("batchItemFailures", [])))
    return answer
