"""Outbox sweeper: an EventBridge schedule invokes it every minute to publish the events the
relay could not (the topic was unreachable right after a commit, or the function stopped
between its commit and its publish).

Each run publishes what has waited longer than ``outbox.SWEEP_AFTER_SECONDS``, oldest first,
at most ``limit`` rows; the answer and the ``EventsSwept`` metric say how many went out.
Consumers are idempotent by event id, so an event the relay also sent changes nothing twice.

It also drops the live feed's expired WebSocket connections (API Gateway ends a connection
after 2 hours and calls ``$disconnect`` only on a best-effort basis) and delivery records
older than a day (``live.prune``), counted as ``ConnectionsPruned``.
"""

from kontex.startup import loading

with loading():
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import BaseModel, Field

    from kontex.bootstrap import container
    from kontex.observability import count, metrics, tracer
    from kontex.services import live, outbox

    logger = Logger(service="kontex-sweeper")

    class SweepRequest(BaseModel):
        """The schedule sends EventBridge's own event; only these keys are read (an operator's
        invocation may set them)."""

        older_than_seconds: float = Field(default=outbox.SWEEP_AFTER_SECONDS, ge=0)
        limit: int = Field(default=500, ge=1, le=5000)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = SweepRequest.model_validate(event)
    deps = container().deps
    published = outbox.sweep(deps, request.older_than_seconds, request.limit)
    count("EventsSwept", published)
    pruned = live.prune(deps)
    count("ConnectionsPruned", pruned)
    if published or pruned:
        logger.info("outbox swept", extra={"published": published, "connections_pruned": pruned})
    return {"published": published, "connections_pruned": pruned}
