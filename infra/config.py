"""Configuration by stage (`cdk synth -c stage=dev|prod`) and the deployment environment.

Everything that differs between a throwaway dev stack and production lives in StageConfig;
everything that must not differ (runtime, timeouts, queue redrive) is a constant in the
construct that owns it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_logs as logs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAYER_DIR = ROOT / ".build" / "layers" / "core"
DEFAULT_DASHBOARD_DIR = ROOT / "web" / "dist"


@dataclass(frozen=True)
class StageConfig:
    name: str
    prod: bool
    nat_gateways: int  # NAT for the functions' egress (Anthropic upstream, AWS APIs)
    db_min_acu: float  # Aurora Serverless v2 capacity units
    db_max_acu: float
    db_readers: int  # serverless v2 readers in another AZ (failover target)
    backup_days: int
    log_retention: logs.RetentionDays
    log_level: str  # POWERTOOLS_LOG_LEVEL and Lambda's application log level
    api_rate_limit: int  # HTTP API stage: steady requests per second
    api_burst_limit: int
    worker_max_concurrency: int  # per SQS event source: caps the database connections
    # Sessions idle this many days are purged by a scheduled worker; None: kept for ever (no
    # worker, no rule). `-c retention_days=N` sets it for one synth (0 turns it off).
    retention_days: int | None = None

    @property
    def removal_policy(self) -> cdk.RemovalPolicy:
        return cdk.RemovalPolicy.RETAIN if self.prod else cdk.RemovalPolicy.DESTROY


STAGES: dict[str, StageConfig] = {
    "dev": StageConfig(
        name="dev",
        prod=False,
        nat_gateways=1,
        db_min_acu=0.5,
        db_max_acu=4,
        db_readers=0,
        backup_days=1,
        log_retention=logs.RetentionDays.TWO_WEEKS,
        log_level="DEBUG",
        api_rate_limit=50,
        api_burst_limit=100,
        worker_max_concurrency=2,
    ),
    "prod": StageConfig(
        name="prod",
        prod=True,
        nat_gateways=2,
        db_min_acu=0.5,
        db_max_acu=16,
        db_readers=1,
        backup_days=14,
        log_retention=logs.RetentionDays.THREE_MONTHS,
        log_level="INFO",
        api_rate_limit=500,
        api_burst_limit=1000,
        worker_max_concurrency=10,
    ),
}


def stage_config(name: str) -> StageConfig:
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}: use -c stage={'|'.join(STAGES)}") from None


def with_context(config: StageConfig, app: cdk.App) -> StageConfig:
    """The stage's config with what `-c key=value` overrides (only `retention_days`)."""
    retention = app.node.try_get_context("retention_days")
    if retention is None:
        return config
    try:
        days = int(retention)
        if days < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            f"retention_days must be a whole number of days, not {retention!r}"
        ) from None
    return replace(config, retention_days=days or None)


def deploy_env(app: cdk.App) -> cdk.Environment:
    """The account and region to synthesize for, with no AWS call.

    `-c account=... -c region=...` wins; then the CLI's CDK_DEFAULT_ACCOUNT/REGION (set when
    credentials are present); with no credentials, the placeholder `offline_env` of cdk.json,
    whose availability zones cdk.json also carries, so `cdk synth` never needs a lookup.
    """
    account = app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = app.node.try_get_context("region")
    if account:
        region = region or os.environ.get("CDK_DEFAULT_REGION")
    else:
        offline = app.node.try_get_context("offline_env") or {}
        account, region = offline.get("account"), region or offline.get("region")
    return cdk.Environment(account=account, region=region)


def layer_dir(app: cdk.App) -> Path:
    """The built layer (`make build`); `-c layer_dir=...` points elsewhere (tests do)."""
    configured = app.node.try_get_context("layer_dir")
    path = Path(configured) if configured else DEFAULT_LAYER_DIR
    if not (path / "python").is_dir():
        raise SystemExit(f"no layer at {path}/python: run `make build` first")
    return path


def dashboard_dir(app: cdk.App) -> Path:
    """The built dashboard (`make build` runs vite); `-c dashboard_dir=...` points elsewhere."""
    configured = app.node.try_get_context("dashboard_dir")
    path = Path(configured) if configured else DEFAULT_DASHBOARD_DIR
    if not (path / "index.html").is_file():
        raise SystemExit(f"no dashboard at {path}/index.html: run `make build` first")
    return path
