"""The one function factory: every Kontex Lambda is made here, the same way.

It fixes the runtime and architecture (matching what `layers/build.py` builds), JSON logs into
a log group with retention, X-Ray tracing, the shared layer, the Powertools environment and the
VPC placement. What a function may touch is declared as an ``Access``; the factory sets the
environment variable the library reads (names equal settings fields) and grants the matching
IAM permission together, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import CfnResource, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from infra.config import ROOT, StageConfig
from infra.database import Database
from infra.messaging import WorkQueue

RUNTIME = lambda_.Runtime.PYTHON_3_12  # the layer's wheels are cp312 (layers/build.py)
ARCHITECTURE = lambda_.Architecture.ARM_64  # ... for manylinux aarch64
ARCH_NAME = "arm64"  # the same, as layer names spell it
FUNCTIONS_DIR = ROOT / "functions"
METRICS_NAMESPACE = "Kontex"


CLAIMS_PREFIX = "claims/"  # kontex.adapters.claim_check.PREFIX
EVENT_CLAIMS_PREFIX = "claims/events/"  # kontex.adapters.sns_events.CLAIMS


@dataclass(frozen=True)
class Access:
    """What one function may touch, beyond the database every function uses."""

    # "delete": list and delete only, for the purge of whole sessions (retention);
    # "read_write_purge": read and put, plus list and delete for DELETE ?purge=true (the API)
    bundles: Literal["none", "read", "read_write", "read_write_purge", "delete"] = "none"
    sends_to: tuple[str, ...] = ()  # work queue names: "spans", "captures"
    # claim-check payloads under claims/ (adapters/claim_check.py): "put" for the functions
    # that queue (ingest, proxy), "take" (read, then delete) for the workers that consume
    claims: Literal["none", "put", "take"] = "none"
    api_keys: bool = True  # the HMAC secret that hashes presented API keys
    # the events topic: "publish" for the functions whose writes put events in the outbox (and
    # the sweeper), "consume" for the event consumers' workers; an event too large for SNS
    # travels by claim check under claims/events/ (adapters/sns_events.py): put, or read only
    # ("consume_publish": both, the embed worker announces snapshot.embedded)
    events: Literal["none", "publish", "consume", "consume_publish"] = "none"
    # post to (and close) WebSocket connections through the API Gateway Management API
    connections: bool = False
    # the read units of GET requests go to the RDS Proxy's read-only endpoint, when the stage
    # has readers (KONTEX_DATABASE_READER_HOST; the writer's secret): the API only
    reads_on_readers: bool = False


@dataclass(frozen=True)
class Wiring:
    """The shared resources functions are wired to."""

    database: Database
    bundles: s3.IBucket
    queues: dict[str, WorkQueue]
    api_key_secret: secretsmanager.ISecret
    topic: sns.ITopic
    websocket_api: apigwv2.WebSocketApi
    websocket_stage: apigwv2.WebSocketStage


class FunctionFactory:
    def __init__(
        self,
        *,
        config: StageConfig,
        layers: list[lambda_.ILayerVersion],
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        wiring: Wiring,
    ) -> None:
        self.config = config
        self.layers = layers
        self.vpc = vpc
        self.subnets = subnets
        self.security_group = security_group
        self.wiring = wiring
        self.created: list[lambda_.Function] = []

    def create(
        self,
        scope: Construct,
        id: str,
        *,
        folder: str,
        handler: str,
        timeout: Duration,
        access: Access,
        description: str,
        memory_size: int = 1024,
        environment: dict[str, str] | None = None,
        extra_layers: list[lambda_.ILayerVersion] | None = None,
    ) -> lambda_.Function:
        """A function whose code is ``functions/<folder>`` and whose entry is ``handler``."""
        service = f"kontex-{id.lower()}"
        log_level = self.config.log_level
        function = lambda_.Function(
            scope,
            id,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(
                str(FUNCTIONS_DIR / folder), exclude=["__pycache__", "*.pyc"]
            ),
            handler=handler,
            layers=[*self.layers, *(extra_layers or [])],
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=getattr(lambda_.ApplicationLogLevel, log_level),
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=logs.LogGroup(
                scope,
                f"{id}Logs",
                retention=self.config.log_retention,
                removal_policy=self.config.removal_policy,
            ),
            vpc=self.vpc,
            vpc_subnets=self.subnets,
            security_groups=[self.security_group],
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_LOG_LEVEL": log_level,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                # no pydantic plugin is in the layer: without this, pydantic scans every
                # installed package's entry points when the first model is built, on every cold
                # start (docs/benchmarks.md, "Cold start, third round (issue 25)")
                "PYDANTIC_DISABLE_PLUGINS": "__all__",
                **(environment or {}),
            },
        )
        self._wire(function, access)
        self._acknowledge(function, access)
        self.created.append(function)
        return function

    def _wire(self, function: lambda_.Function, access: Access) -> None:
        wiring = self.wiring
        function.add_environment("KONTEX_DATABASE_HOST", wiring.database.endpoint)
        function.add_environment("KONTEX_DATABASE_SECRET_ARN", wiring.database.secret.secret_arn)
        wiring.database.secret.grant_read(function)
        if access.reads_on_readers and wiring.database.reader_endpoint is not None:
            function.add_environment("KONTEX_DATABASE_READER_HOST", wiring.database.reader_endpoint)
        if access.api_keys:
            function.add_environment("KONTEX_API_KEY_SECRET_ARN", wiring.api_key_secret.secret_arn)
            wiring.api_key_secret.grant_read(function)
        if access.bundles == "delete":
            function.add_environment("KONTEX_BUNDLE_BUCKET", wiring.bundles.bucket_name)
            wiring.bundles.grant_delete(function)  # a purged session's objects
            function.add_to_role_policy(  # ... found by listing its prefix
                iam.PolicyStatement(
                    actions=["s3:ListBucket"], resources=[wiring.bundles.bucket_arn]
                )
            )
        elif access.bundles != "none":
            function.add_environment("KONTEX_BUNDLE_BUCKET", wiring.bundles.bucket_name)
            wiring.bundles.grant_read(function)
            if access.bundles in ("read_write", "read_write_purge"):
                wiring.bundles.grant_put(function)  # written once, never overwritten
            if access.bundles == "read_write_purge":
                wiring.bundles.grant_delete(function)  # only by the purge of a whole session
        if access.claims != "none":
            function.add_environment("KONTEX_BUNDLE_BUCKET", wiring.bundles.bucket_name)
            if access.claims == "put":
                wiring.bundles.grant_put(function, f"{CLAIMS_PREFIX}*")
            else:
                wiring.bundles.grant_read(function, f"{CLAIMS_PREFIX}*")
                wiring.bundles.grant_delete(function, f"{CLAIMS_PREFIX}*")
        for name in access.sends_to:
            queue = wiring.queues[name].queue
            function.add_environment(f"KONTEX_{name.upper()}_QUEUE_URL", queue.queue_url)
            queue.grant_send_messages(function)
        publishes = access.events in ("publish", "consume_publish")
        if publishes:
            function.add_environment("KONTEX_EVENTS_TOPIC_ARN", wiring.topic.topic_arn)
            wiring.topic.grant_publish(function)
        if access.events != "none":
            function.add_environment("KONTEX_BUNDLE_BUCKET", wiring.bundles.bucket_name)
            if publishes:
                wiring.bundles.grant_put(function, f"{EVENT_CLAIMS_PREFIX}*")
            if access.events != "publish":
                # read only: every consumer reads the same object; the lifecycle rule expires it
                wiring.bundles.grant_read(function, f"{EVENT_CLAIMS_PREFIX}*")
        if access.connections:
            function.add_environment(
                "KONTEX_WEBSOCKET_ENDPOINT", wiring.websocket_stage.callback_url
            )
            wiring.websocket_api.grant_manage_connections(function)

    def _acknowledge(self, function: lambda_.Function, access: Access) -> None:
        """cdk-nag findings every function made here has, each with its reason."""
        managed = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        suppressions = [
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="AWS's minimal managed policies for a Lambda in a VPC: write its own "
                "CloudWatch logs, and manage the ENIs that place it in the VPC.",
                applies_to=[
                    f"{managed}AWSLambdaBasicExecutionRole",
                    f"{managed}AWSLambdaVPCAccessExecutionRole",
                ],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Active X-Ray tracing: xray:PutTraceSegments and PutTelemetryRecords "
                "support no resource-level permissions.",
                applies_to=["Resource::*"],
            ),
            NagPackSuppression(
                id="AwsSolutions-L1",
                reason="Pinned to python3.12 on purpose: the layer's compiled wheels "
                "(pydantic-core, psycopg-binary, tiktoken) are cp312, built by layers/build.py; "
                "bump both together.",
            ),
        ]
        if access.bundles != "none":
            bucket = self.wiring.bundles.node.default_child
            assert isinstance(bucket, CfnResource)
            stack = Stack.of(bucket)
            logical_id = stack.resolve(stack.get_logical_id(bucket))
        if access.bundles == "delete":
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Retention purges whole sessions, whose objects are any keys under "
                    "the session's prefix in the stack's one bundle bucket: object-level delete "
                    "on its keys, from grant_delete (no read, no put).",
                    applies_to=[f"Resource::<{logical_id}.Arn>/*", "Action::s3:DeleteObject*"],
                )
            )
        elif access.bundles != "none":
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Bundles are content-addressed objects of the stack's one bundle "
                    "bucket: object-level read (and put; delete only for the API's purge of a "
                    "whole session) on its keys, from grant_read/grant_put/grant_delete.",
                    applies_to=[
                        f"Resource::<{logical_id}.Arn>/*",
                        "Action::s3:GetBucket*",
                        "Action::s3:GetObject*",
                        "Action::s3:List*",
                        *(["Action::s3:Abort*"] if "write" in access.bundles else []),
                        *(
                            ["Action::s3:DeleteObject*"]
                            if access.bundles == "read_write_purge"
                            else []
                        ),
                    ],
                )
            )
        if access.claims != "none":
            bucket = self.wiring.bundles.node.default_child
            assert isinstance(bucket, CfnResource)
            stack = Stack.of(bucket)
            claims_id = stack.resolve(stack.get_logical_id(bucket))
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Claim-check payloads are objects with fresh random keys under "
                    "claims/ in the stack's bundle bucket: put for the function that queues "
                    "them, read and delete for the worker that consumes them, on that prefix "
                    "only.",
                    applies_to=[
                        f"Resource::<{claims_id}.Arn>/{CLAIMS_PREFIX}*",
                        "Action::s3:Abort*",
                        "Action::s3:GetBucket*",
                        "Action::s3:GetObject*",
                        "Action::s3:List*",
                        "Action::s3:DeleteObject*",
                    ],
                )
            )
        if access.events != "none":
            bucket = self.wiring.bundles.node.default_child
            assert isinstance(bucket, CfnResource)
            stack = Stack.of(bucket)
            events_id = stack.resolve(stack.get_logical_id(bucket))
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Events too large for SNS travel as objects named by their event id "
                    "under claims/events/ in the stack's bundle bucket: put for the functions "
                    "that publish events, read for the consumers, on that prefix only.",
                    applies_to=[
                        f"Resource::<{events_id}.Arn>/{EVENT_CLAIMS_PREFIX}*",
                        "Action::s3:Abort*",
                        "Action::s3:GetBucket*",
                        "Action::s3:GetObject*",
                        "Action::s3:List*",
                    ],
                )
            )
        if access.events in ("publish", "consume_publish"):
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="The events topic is encrypted with SNS's AWS-managed key; grant_publish"
                    " names it by alias (any key id, on condition kms:ResourceAliases = "
                    "alias/aws/sns), and GenerateDataKey* is the pair SNS encryption needs.",
                    applies_to=[
                        "Action::kms:GenerateDataKey*",
                        RegexAppliesTo(regex=r"/^Resource::arn:[^:]+:kms:[^:]+:[^:]+:key\/\*$/"),
                    ],
                )
            )
        if access.connections:
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="execute-api:ManageConnections on the stack's one WebSocket API, its "
                    "connections only (grant_manage_connections): connection ids are made by "
                    "API Gateway at run time.",
                    applies_to=[
                        RegexAppliesTo(
                            regex=r"/^Resource::arn:[^:]+:execute-api:[^:]+:[^:]+:"
                            r"<[A-Za-z0-9]+>\/\*\/\*\/@connections\/\*$/"
                        )
                    ],
                )
            )
        NagSuppressions.add_resource_suppressions(function, suppressions, apply_to_children=True)
