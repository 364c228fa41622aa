"""REST API Lambda (API Gateway HTTP API, payload 2.0): glue only, the work is in ``kontex``.

Its cold start runs without the cyclic garbage collector (``kontex.startup.loading``): what
the imports and the resolver make is then frozen out of every later collection.
"""

from kontex.startup import loading

with loading():
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kontex.api.rest import build_resolver, handle
    from kontex.domain.models import ApiKey
    from kontex.observability import metrics, tracer

    logger = Logger(service="kontex-api")
    app = build_resolver()


def mcp(event: dict, key: ApiKey) -> dict:
    """``/mcp``: the MCP server (the MCP SDK loads with the first MCP request)."""
    from kontex.mcp import lambda_adapter

    return lambda_adapter.handle(event, key)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return handle(app, event, context, mcp)
