"""The live feed: an API Gateway WebSocket API whose three routes go to `functions/live`.

Routes `$connect`, `$disconnect` and `$default` (every client frame: the `{"authorization"}`
frame, then `{"id", "action", "data"}` requests) invoke the Live function. It answers through
the Management API (as the feed worker posts events), so no route returns the function's
response. Clients authenticate in their first frame (docs/design.md, "Public contracts"), with the
library's API keys, not an API Gateway authorizer.

The stage `live` deploys itself, is throttled and writes JSON access logs. WebSocket (unlike
HTTP) APIs log through the account's API Gateway CloudWatch role, which is made here and kept
on stack deletion (other APIs of the account may use it: docs/deploy.md).

The API and its stage are made before the functions (`Wiring` hands them to the factory, which
sets `KONTEX_WEBSOCKET_ENDPOINT` and grants `execute-api:ManageConnections` for every
`Access(connections=True)`); `serve` then makes the Live function and its routes.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.access_logs import AccessLogs
from infra.config import StageConfig
from infra.functions import Access, FunctionFactory

LIVE_TIMEOUT = Duration.seconds(15)  # each frame is one short invocation (API GW waits 29 s)
STAGE_NAME = "live"
ROUTES = ("$connect", "$disconnect", "$default")


ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "connectionId": "$context.connectionId",
    "status": "$context.status",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
}


class LiveApi(Construct):
    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.api = apigwv2.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"kontex-live-{config.name}",
            description="Kontex live feed and thread state (WebSocket)",
        )
        account = self._logging_role(config)
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit
            ),
            access_log_settings=AccessLogs.for_stage(self, config, ACCESS_LOG_FIELDS),
        )
        self.stage.node.add_dependency(account)
        self.url = self.stage.url  # wss://<id>.execute-api.<region>.amazonaws.com/live
        self.callback_url = self.stage.callback_url  # https://... (the Management API)
        self.function: lambda_.Function | None = None

    def _logging_role(self, config: StageConfig) -> apigw.CfnAccount:
        """API Gateway's account-level CloudWatch role, which WebSocket access logs need."""
        role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="AWS's managed policy for API Gateway's account-level CloudWatch "
                    "role: it writes the access logs of any of the account's APIs.",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    ],
                )
            ],
        )
        return account

    def serve(self, factory: FunctionFactory) -> lambda_.Function:
        """The Live function, behind the three routes."""
        function = factory.create(
            self,
            "Live",
            folder="live",
            handler="handler.lambda_handler",
            timeout=LIVE_TIMEOUT,
            access=Access(connections=True),
            memory_size=512,
            description="Kontex live feed: WebSocket $connect, $disconnect, $default",
        )
        for route in ROUTES:
            name = route.strip("$").capitalize()
            self.api.add_route(
                route,
                integration=integrations.WebSocketLambdaIntegration(f"{name}Integration", function),
            )
        self.function = function
        NagSuppressions.add_resource_suppressions(
            self.api,
            [
                NagPackSuppression(
                    id="AwsSolutions-APIG4",
                    reason="A WebSocket client authenticates in its first frame with a Kontex "
                    "API key (docs/design.md: HMAC-hashed in the database, revocable at "
                    "once), checked by the function; nothing else is served before it.",
                ),
            ],
            apply_to_children=True,
        )
        return function
