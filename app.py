#!/usr/bin/env python3
"""The CDK app: `npx cdk synth -c stage=dev|prod` (docs/deploy.md). Synth makes no AWS call."""

import aws_cdk as cdk

from infra.app import build

app = cdk.App()
build(app)
app.synth()
