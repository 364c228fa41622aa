"""Workers: one Lambda per queue, fed by an SQS event source that reports partial failures.

`report_batch_item_failures=True` pairs with Powertools' `process_partial_response` in the
handlers: only the failed records of a batch are retried, the rest are deleted.
`max_concurrency` caps how many copies poll each queue, and so the database connections.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from infra.config import StageConfig
from infra.functions import Access, FunctionFactory
from infra.messaging import Messaging

WORKER_TIMEOUT = Duration.seconds(60)
BATCH_SIZE = 10

# queue name -> (construct id, handler in functions/workers, access beyond the database).
# Workers never see an API key (the library reads the HMAC secret on first use only), so they
# get no access to it.
WORKERS: dict[str, tuple[str, str, Access]] = {
    "spans": (
        "SpansWorker",
        "spans.lambda_handler",
        # "spans": the delayed retry of traces whose spans wait for their ancestors
        Access(bundles="read_write", sends_to=("events", "spans"), api_keys=False, claims="take"),
    ),
    "captures": (
        "CaptureWorker",
        "capture.lambda_handler",
        Access(bundles="read_write", sends_to=("events",), api_keys=False, claims="take"),
    ),
}
# The snapshot-events queue is filled by the API, ingest and capture paths (snapshot.created,
# snapshot.enriched, ...); its consumers (the live feed and embeddings) come with the issues
# that build them, and get their event source here then.


class Workers(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        factory: FunctionFactory,
        messaging: Messaging,
    ) -> None:
        super().__init__(scope, id)
        self.functions: dict[str, lambda_.Function] = {}
        for queue_name, (fn_id, handler, access) in WORKERS.items():
            work = messaging.queues[queue_name]
            if work.consumer_timeout.to_seconds() < WORKER_TIMEOUT.to_seconds():
                raise ValueError(f"queue {queue_name} is sized for a shorter consumer")
            function = factory.create(
                self,
                fn_id,
                folder="workers",
                handler=handler,
                timeout=WORKER_TIMEOUT,
                access=access,
                description=f"Kontex worker for the {queue_name} queue",
            )
            function.add_event_source(
                sources.SqsEventSource(
                    work.queue,
                    batch_size=BATCH_SIZE,
                    report_batch_item_failures=True,
                    max_concurrency=config.worker_max_concurrency,
                )
            )
            self.functions[queue_name] = function
