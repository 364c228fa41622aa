"""Workers: one Lambda per queue, fed by an SQS event source that reports partial failures.

`report_batch_item_failures=True` pairs with Powertools' `process_partial_response` in the
handlers: only the failed records of a batch are retried, the rest are deleted. Each worker
also sends a record that failed for good to its queue's DLQ itself (`WorkQueue.consumed_by`).
`max_concurrency` caps how many copies poll each queue, and so the database connections.
Event consumers (``events=True``) get their own queue subscribed to the events topic
(infra/messaging.py), so adding one is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from infra.config import StageConfig
from infra.functions import Access, FunctionFactory
from infra.messaging import Messaging

WORKER_TIMEOUT = Duration.seconds(60)
BATCH_SIZE = 10


@dataclass(frozen=True)
class Worker:
    id: str  # construct id (its service name is kontex-<id lower>)
    handler: str  # in functions/workers: <module>.lambda_handler
    access: Access  # beyond the database
    # True: a consumer of the events topic; its queue (named by its key) is subscribed to it
    events: bool = False
    # Lambda waits up to this long for a fuller batch (whole seconds; 0: hand over at once).
    # The capture worker's batch of ten costs about half the CPU per capture of ten batches of
    # one (docs/benchmarks.md, "Captures at proxy speed (issue 23)"); `kontex dev` waits 0.1 s
    # (functions/workers/capture.py), Lambda's smallest window is a second
    batching_window_seconds: int = 0


# queue name -> its worker. Workers never see an API key (the library reads the HMAC secret on
# first use only), so they get no access to it. An event consumer is one entry with
# events=True: its own queue + DLQ + alarm, subscribed to the topic with raw delivery.
WORKERS: dict[str, Worker] = {
    "spans": Worker(
        "SpansWorker",
        "spans.lambda_handler",
        # "spans": the delayed retry of traces whose spans wait for their ancestors
        Access(
            bundles="read_write",
            sends_to=("spans",),
            events="publish",
            api_keys=False,
            claims="take",
        ),
    ),
    "captures": Worker(
        "CaptureWorker",
        "capture.lambda_handler",
        Access(bundles="read_write", events="publish", api_keys=False, claims="take"),
        batching_window_seconds=1,
    ),
    # the live feed: posts each event to the WebSocket connections subscribed to its session
    "feed": Worker(
        "FeedWorker",
        "feed.lambda_handler",
        Access(events="consume", connections=True, api_keys=False),
        events=True,
    ),
}
EVENT_CONSUMERS = tuple(name for name, worker in WORKERS.items() if worker.events)


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
        for queue_name, worker in WORKERS.items():
            work = messaging.queues[queue_name]
            if work.consumer_timeout.to_seconds() < WORKER_TIMEOUT.to_seconds():
                raise ValueError(f"queue {queue_name} is sized for a shorter consumer")
            function = factory.create(
                self,
                worker.id,
                folder="workers",
                handler=worker.handler,
                timeout=WORKER_TIMEOUT,
                access=worker.access,
                description=f"Kontex worker for the {queue_name} queue",
            )
            work.consumed_by(function)
            function.add_event_source(
                sources.SqsEventSource(
                    work.queue,
                    batch_size=BATCH_SIZE,
                    max_batching_window=(
                        Duration.seconds(worker.batching_window_seconds)
                        if worker.batching_window_seconds
                        else None
                    ),
                    report_batch_item_failures=True,
                    max_concurrency=config.worker_max_concurrency,
                )
            )
            self.functions[queue_name] = function
