"""Span worker (SQS): each record is a batch of spans from one ingest request.

The whole SQS batch is one unit of work (``spans.store_batch``). When it fails, the records
are processed again one by one through the Powertools batch processor, so only a record that
fails on its own fails: dead-lettered at once when it is wrong in itself, else reported in
``batchItemFailures`` and retried after a backoff (``kontex.adapters.sqs_batch``). Spans left
waiting (see
``kontex.services.spans``) get a delayed retry of their trace on this same queue
(``spans.retry_later``: an SQS delay on AWS, a delayed message in the local queue).
"""

from kontex.startup import loading

with loading():
    from typing import TYPE_CHECKING

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kontex.adapters.claim_check import all_claimed, claimed
    from kontex.adapters.lazy_processor import lazy_processor
    from kontex.bootstrap import container
    from kontex.observability import count, metrics, tracer
    from kontex.services import spans

    if TYPE_CHECKING:
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    logger = Logger(service="kontex-spans")


# the batch processor, made the first time a batch needs it (cold start)
_processor, __getattr__ = lazy_processor(globals(), lambda: container().redrive)


def record_handler(record: "SQSRecord") -> None:
    deps = container().deps
    waiting: list[tuple[str, str]] = []
    with claimed(deps.blobs, record.body) as body:  # a large batch travels by reference
        count("SnapshotsWritten", spans.store_batch(deps, [spans.read_message(body)], waiting))
    spans.retry_later(deps, container().queue, waiting)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    records = event["Records"]
    deps = container().deps
    waiting: list[tuple[str, str]] = []
    try:
        with all_claimed(deps.blobs, [r["body"] for r in records]) as bodies:
            made = spans.store_batch(deps, [spans.read_message(b) for b in bodies], waiting)
    except Exception:  # any record may be the poison one: find it record by record
        logger.exception("the batch failed as a whole; retrying its records one by one")
        from aws_lambda_powertools.utilities.batch import process_partial_response

        answer = process_partial_response(event, record_handler, _processor(), context)
        count("RecordsFailed", len(answer.get("batchItemFailures", [])))
        return answer
    count("SnapshotsWritten", made)
    spans.retry_later(deps, container().queue, waiting)
    return {"batchItemFailures": []}
