"""Live feed Lambda (API Gateway WebSocket API: ``$connect``, ``$disconnect``, ``$default``):
glue only. Answers go to the client through the Management API (``Connections``), as the
protocol in ``kontex.services.live`` says; the return value only accepts the connection."""

from kontex.startup import loading

with loading():
    import base64
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from kontex.bootstrap import container
    from kontex.observability import metrics, tracer
    from kontex.ports import Connections
    from kontex.services import live
    from kontex.services.deps import Deps

    logger = Logger(service="kontex-live")


def handle(event: dict[str, Any], deps: Deps, connections: Connections | None = None) -> dict:
    context = event["requestContext"]
    route, connection_id = context["routeKey"], context["connectionId"]
    if route == "$connect":
        live.connect(deps, connection_id)
    elif route == "$disconnect":
        live.disconnect(deps, connection_id)
    else:
        body: str | bytes = event.get("body") or ""
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body)
        live.receive(deps, connections or container().connections, connection_id, body)
    return {"statusCode": 200}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return handle(event, container().deps)
