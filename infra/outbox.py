"""The outbox sweeper: an EventBridge schedule invokes `functions/sweeper` every minute.

A use case writes its events in its own transaction and publishes them right after the commit;
one that could not (the topic unreachable, the function stopped in between) stays in the
outbox, and the sweeper publishes it on its next run. The function's timeout is under the
schedule's period, so two runs never overlap (and if they did, consumers are idempotent by
event id). A missed run is caught by the next one, so EventBridge retries little.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.functions import Access, FunctionFactory

SWEEPER_TIMEOUT = Duration.seconds(50)  # under the period: runs never overlap
SCHEDULE = events.Schedule.rate(Duration.minutes(1))


class Sweeper(Construct):
    def __init__(self, scope: Construct, id: str, *, factory: FunctionFactory) -> None:
        super().__init__(scope, id)
        self.function = factory.create(
            self,
            "Sweeper",
            folder="sweeper",
            handler="handler.lambda_handler",
            timeout=SWEEPER_TIMEOUT,
            access=Access(events="publish", api_keys=False),
            memory_size=512,
            description="Kontex outbox sweeper: publishes events left unpublished",
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Kontex: publish outbox events the relay could not",
            schedule=SCHEDULE,
            targets=[
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=1,
                    max_event_age=Duration.minutes(1),  # the next run is due by then
                )
            ],
        )
