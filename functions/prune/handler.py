"""Retention worker: an EventBridge schedule invokes it to purge sessions idle for N days.

The rule's input is ``{"older_than_days": N, "limit": M}`` (N from the stage's config). An
operator may invoke it by hand with ``"dry_run": true`` (and ``"account_id"``) to see what a
run would remove. Every removed session is logged, and listed in the answer.
"""

from kontex.startup import loading

with loading():
    from datetime import timedelta
    from typing import Any

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from pydantic import BaseModel, Field

    from kontex.bootstrap import container
    from kontex.observability import metrics, tracer
    from kontex.services import retention

    logger = Logger(service="kontex-prune")

    class PruneRequest(BaseModel):
        older_than_days: int = Field(ge=1)
        account_id: str | None = None
        dry_run: bool = False
        limit: int = Field(default=retention.DEFAULT_LIMIT, ge=1, le=retention.DEFAULT_LIMIT)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PruneRequest.model_validate(event)
    deps = container().deps
    cutoff = deps.clock() - timedelta(days=request.older_than_days)
    result = retention.prune(deps, cutoff, request.account_id, request.dry_run, request.limit)
    answer = result.as_json()
    for session in answer["sessions"]:
        # "name" would clash with the log record's own attribute
        extra = {("session_name" if k == "name" else k): v for k, v in session.items()}
        logger.info("would prune" if request.dry_run else "pruned", extra=extra)
    logger.info("prune run", extra={k: v for k, v in answer.items() if k != "sessions"})
    return answer
