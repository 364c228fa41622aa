"""OTLP/HTTP receiver (POST /ingest/v1/traces, /logs, /metrics): validates and queues only."""

from kontex.startup import loading

with loading():
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kontex.api.otlp import handle
    from kontex.observability import metrics, tracer

    logger = Logger(service="kontex-ingest")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return handle(event)
