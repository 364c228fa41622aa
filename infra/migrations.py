"""Migrations on deploy: a CDK Trigger invokes `functions/migrate` once the database and its
proxy are up, and again whenever the function (or its layer, which carries the SQL) changes.

The invocation is synchronous: a failed migration fails the deployment, which CloudFormation
then rolls back. The same function creates the first API key when invoked by hand
(docs/deploy.md).
"""

from __future__ import annotations

from aws_cdk import Duration, triggers
from constructs import Construct

from infra.database import Database
from infra.functions import Access, FunctionFactory

MIGRATE_TIMEOUT = Duration.minutes(5)


class Migrations(Construct):
    def __init__(
        self, scope: Construct, id: str, *, factory: FunctionFactory, database: Database
    ) -> None:
        super().__init__(scope, id)
        self.function = factory.create(
            self,
            "Migrate",
            folder="migrate",
            handler="handler.lambda_handler",
            timeout=MIGRATE_TIMEOUT,
            access=Access(),
            memory_size=512,
            description="Kontex database migrations (run on every deploy that changes them)",
        )
        self.trigger = triggers.Trigger(
            self,
            "OnDeploy",
            handler=self.function,
            execute_after=[database],
            execute_on_handler_change=True,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            timeout=MIGRATE_TIMEOUT.plus(Duration.minutes(1)),
        )
