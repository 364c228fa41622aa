"""Anthropic-compatible proxy (/proxy/v1/*): forward unchanged, queue the capture of Messages."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from kontex.api import proxy
from kontex.observability import metrics, tracer

logger = Logger(service="kontex-proxy")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return proxy.handle(event)


def stream_handler(event: dict) -> tuple:
    """The same call, streamed: used by servers that can stream (local stack, web adapter)."""
    return proxy.stream(event)
