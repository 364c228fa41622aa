"""KontexStack: the capabilities composed (network, data, storage, messaging, api, the live
WebSocket API, workers, the outbox sweeper, migrations, and retention when the stage sets it),
plus the few things every function shares:
the layer, the security group that may reach the RDS Proxy, and the API-key secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.api import Api
from infra.config import StageConfig
from infra.dashboard import Dashboard
from infra.database import Database
from infra.functions import ARCHITECTURE, RUNTIME, FunctionFactory, Wiring
from infra.live import LiveApi
from infra.messaging import Messaging
from infra.migrations import Migrations
from infra.network import Network
from infra.observability import Observability
from infra.outbox import Sweeper
from infra.retention import Retention
from infra.search import Search, search_layer_dir
from infra.storage import Storage
from infra.workers import EVENT_CONSUMERS, WORKER_TIMEOUT, Workers


class KontexStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        layer_dir: Path,
        dashboard_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.config = config
        network = Network(self, "Network", config=config)
        self.database = Database(self, "Database", config=config, network=network)
        self.storage = Storage(self, "Storage", config=config)
        self.messaging = Messaging(
            self, "Messaging", consumer_timeout=WORKER_TIMEOUT, event_consumers=EVENT_CONSUMERS
        )
        self.live = LiveApi(self, "Live", config=config)
        self.api_key_secret = secretsmanager.Secret(
            self,
            "ApiKeySecret",
            description="Kontex: HMAC key that hashes API keys (rotating it revokes every key)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=config.removal_policy,
        )
        layer = lambda_.LayerVersion(
            self,
            "CoreLayer",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="kontex package and its dependencies (layers/build.py)",
        )
        functions_sg = ec2.SecurityGroup(
            self,
            "FunctionsSecurityGroup",
            vpc=network.vpc,
            description="Kontex functions: may reach the RDS Proxy; egress through NAT",
            allow_all_outbound=True,
        )
        self.database.allow_from(functions_sg)

        factory = FunctionFactory(
            config=config,
            layers=[layer],
            vpc=network.vpc,
            subnets=network.app_subnets,
            security_group=functions_sg,
            wiring=Wiring(
                database=self.database,
                bundles=self.storage.bundles,
                queues=self.messaging.queues,
                api_key_secret=self.api_key_secret,
                topic=self.messaging.topic,
                websocket_api=self.live.api,
                websocket_stage=self.live.stage,
            ),
        )
        self.api = Api(self, "Api", config=config, factory=factory)
        self.workers = Workers(
            self, "Workers", config=config, factory=factory, messaging=self.messaging
        )
        self.live.serve(factory)
        self.sweeper = Sweeper(self, "Outbox", factory=factory)
        # search: the embed queue (subscribed to the events topic), its worker
        # with the search layer, and the API's GET /v1/search
        self.search = Search(
            self, "Search", config=config, factory=factory, layer_dir=search_layer_dir(layer_dir)
        )
        self.search.serve(self.api.api_function)
        if self.search.worker is not None:  # a consumer only where a vector store is named
            self.messaging.subscribe("embed", self.search.queue)
        self.migrations = Migrations(self, "Migrations", factory=factory, database=self.database)
        self.search.reindex_from(self.migrations.function)
        self.retention = (
            Retention(self, "Retention", config=config, factory=factory)
            if config.retention_days
            else None
        )
        self.functions = factory.created
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            config=config,
            site_dir=dashboard_dir,
            http_api=self.api.http_api,
            live_url=self.live.url,
        )
        self.observability = Observability(
            self,
            "Observability",
            stage=config.name,
            functions=list(self.functions),
            # every pipeline's queue: the embed queue even where nothing consumes it yet
            queues={**self.messaging.queues, "embed": self.search.queue},
            live=self.live,
            api_function=self.api.api_function,
        )

        url = self.api.url
        CfnOutput(self, "ApiUrl", value=url, description="REST API base (/v1, /health)")
        CfnOutput(
            self,
            "OtlpTracesEndpoint",
            value=f"{url}ingest/v1/traces",
            description="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for OpenTelemetry exporters",
        )
        CfnOutput(
            self,
            "McpUrl",
            value=f"{url}mcp",
            description="MCP tools (streamable HTTP) for agents, with an Authorization header",
        )
        CfnOutput(
            self,
            "AnthropicBaseUrl",
            value=f"{self.api.proxy_url.url}proxy",
            description="base_url for Anthropic SDKs (a streaming function URL; they append "
            "/v1/messages)",
        )
        CfnOutput(
            self,
            "OpenAIBaseUrl",
            value=f"{self.api.proxy_url.url}proxy/openai/v1",
            description="base_url for OpenAI SDKs (the same function URL; they append "
            "/chat/completions or /responses)",
        )
        CfnOutput(
            self,
            "MigrateFunctionName",
            value=self.migrations.function.function_name,
            description='invoke with {"create_key": {"label": ...}} for the first API key',
        )
        CfnOutput(
            self,
            "LiveUrl",
            value=self.live.url,
            description="the live feed's WebSocket URL (wss://; first frame "
            '{"authorization": "<key>"})',
        )
        CfnOutput(self, "BundleBucketName", value=self.storage.bundles.bucket_name)
        CfnOutput(
            self,
            "DashboardUrl",
            value=self.dashboard.url,
            description="the dashboard (sign in with an API key); /v1/* on it reaches the API",
        )
        self._suppress()

    def _suppress(self) -> None:
        NagSuppressions.add_resource_suppressions(
            self.api_key_secret,
            [
                NagPackSuppression(
                    id="AwsSolutions-SMG4",
                    reason="This is the HMAC key API keys are stored under; rotating it would "
                    "invalidate every issued key, so it is rotated only by a deliberate re-key.",
                )
            ],
        )
