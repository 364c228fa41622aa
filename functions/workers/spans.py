"""Span worker (SQS): each record is a batch of spans from one ingest request."""

import json

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kontex.adapters.claim_check import claimed
from kontex.bootstrap import container
from kontex.services import spans

logger = Logger(service="kontex-spans")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    deps = container().deps
    with claimed(deps.blobs, record.body) as body:  # a large batch travels by reference
        spans.store_message(deps, json.loads(body))


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event, record_handler, processor, context)
