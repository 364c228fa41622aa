"""Capture worker (SQS): proxy calls to snapshots, by the caller's trigger.

The whole SQS batch is one unit of work (``capture.capture_many``). When it fails, the records
are processed again one by one through the Powertools batch processor, so only a record that
fails on its own fails (dead-lettered at once when it is wrong in itself, else retried after a
backoff: ``kontex.adapters.sqs_batch``).
"""

from kontex.startup import loading

with loading():
    import json
    from typing import TYPE_CHECKING

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kontex.adapters.claim_check import all_claimed, claimed
    from kontex.adapters.lazy_processor import lazy_processor
    from kontex.bootstrap import container
    from kontex.observability import count, metrics, tracer

    if TYPE_CHECKING:
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from kontex.services import capture

    logger = Logger(service="kontex-capture")
# `kontex dev` hands this worker a batch once it holds ten captures or its first has waited this
# long (Lambda's batching window): one batch of ten costs about half the CPU per capture of ten
# batches of one, which is what a proxy answering calls one by one otherwise makes
# (docs/benchmarks.md, "Captures at proxy speed (issue 23)")
BATCH_WINDOW_SECONDS = 0.1


# the batch processor, made the first time a batch needs it (cold start)
_processor, __getattr__ = lazy_processor(globals(), lambda: container().redrive)


def record_handler(record: "SQSRecord") -> None:
    deps = container().deps
    with claimed(deps.blobs, record.body) as body:  # a large capture travels by reference
        if capture.capture(deps, capture.CaptureJob(**json.loads(body))) is not None:
            count("SnapshotsWritten")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    deps = container().deps
    try:
        with all_claimed(deps.blobs, [r["body"] for r in event["Records"]]) as bodies:
            jobs = [capture.CaptureJob(**json.loads(body)) for body in bodies]
            made = capture.capture_many(deps, jobs)
    except Exception:  # any record may be the bad one: find it record by record
        logger.exception("the batch failed as a whole; retrying its records one by one")
        from aws_lambda_powertools.utilities.batch import process_partial_response

        answer = process_partial_response(event, record_handler, _processor(), context)
        count("RecordsFailed", len(answer.get("batchItemFailures", [])))
        return answer
    count("SnapshotsWritten", made)
    return {"batchItemFailures": []}
