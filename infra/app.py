"""Build the app: one KontexStack for the stage in context, cdk-nag on everything.

Shared by `app.py` (the CDK entry point) and the infra tests, so both check the same thing.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import dashboard_dir, deploy_env, layer_dir, stage_config, with_context
from infra.stack import KontexStack

# CDK tags this L1, but CloudFormation's schema has no Tags on it (CDK's validation rejects it).
UNTAGGABLE = ["AWS::RDS::DBProxyTargetGroup"]


def build(app: cdk.App) -> KontexStack:
    config = with_context(stage_config(app.node.try_get_context("stage") or "dev"), app)
    stack = KontexStack(
        app,
        f"Kontex-{config.name}",
        config=config,
        layer_dir=layer_dir(app),
        dashboard_dir=dashboard_dir(app),
        env=deploy_env(app),
        termination_protection=config.prod,
        description=f"Kontex ({config.name}): immutable snapshots of AI agent runs",
    )
    cdk.Tags.of(app).add("project", "kontex", exclude_resource_types=UNTAGGABLE)
    cdk.Tags.of(app).add("stage", config.name, exclude_resource_types=UNTAGGABLE)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return stack
