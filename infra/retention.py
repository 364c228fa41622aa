"""Retention: a schedule that purges whole sessions idle for the stage's `retention_days`.

Made only when the stage sets `retention_days` (off by default: Kontex keeps history unless the
operator asks otherwise). An EventBridge rule invokes `functions/prune` every hour with
``{"older_than_days": N, "limit": PER_RUN}``; each run purges at most PER_RUN sessions, so a
backlog (retention switched on for an old deployment) drains over a few runs, each well
inside the function's timeout. The function may delete bundle objects and read nothing; it
publishes each purge's `session.purged` event to the events topic.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.config import StageConfig
from infra.functions import Access, FunctionFactory

PRUNE_TIMEOUT = Duration.minutes(10)
SCHEDULE = events.Schedule.rate(Duration.hours(1))
PER_RUN = 500  # sessions purged per run: each is one transaction and one prefix delete


class Retention(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: StageConfig, factory: FunctionFactory
    ) -> None:
        super().__init__(scope, id)
        if not config.retention_days:
            raise ValueError("Retention needs the stage's retention_days")
        self.function = factory.create(
            self,
            "Prune",
            folder="prune",
            handler="handler.lambda_handler",
            timeout=PRUNE_TIMEOUT,
            # events="publish": each purge announces session.purged through the outbox
            access=Access(bundles="delete", events="publish", api_keys=False),
            memory_size=512,
            description=f"Kontex retention: purges sessions idle for {config.retention_days} days",
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"Kontex: purge sessions idle for {config.retention_days} days",
            schedule=SCHEDULE,
            targets=[
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object(
                        {"older_than_days": config.retention_days, "limit": PER_RUN}
                    ),
                    retry_attempts=2,  # a run is idempotent; the next hour's run also catches up
                    max_event_age=Duration.hours(1),
                )
            ],
        )
