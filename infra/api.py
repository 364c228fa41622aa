"""API: one HTTP API (payload 2.0) in front of the api, ingest and proxy functions.

Routes: `ANY /v1/{proxy+}`, `GET /v1/openapi.json` and `GET /health` to the api
function; `POST /ingest/v1/{traces,logs,metrics}` to ingest; `POST /proxy/v1/messages` to the proxy.
Authentication is the library's (API keys, HMAC-hashed), not API Gateway's. The `$default`
stage is throttled and writes JSON access logs.

The proxy relays model calls that can be long. An HTTP API waits at most 30 s for an
integration (CDK accepts up to 29 s), so the proxy's integration timeout is set to 29 s and the
function's to 28 s: the function is always stopped before API Gateway gives up on it, and a
model call (streamed or not, API Gateway buffers it) must finish within that. The library's
upstream timeout (KONTEX_PROXY_TIMEOUT_SECONDS) is 25 s, so a slow upstream gets the proxy's
own error answer rather than a Lambda timeout. Longer calls
cannot go through API Gateway (docs/deploy.md).
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.config import StageConfig
from infra.functions import Access, FunctionFactory

API_TIMEOUT = Duration.seconds(15)
INGEST_TIMEOUT = Duration.seconds(15)
HTTP_API_MAX_INTEGRATION_TIMEOUT = Duration.seconds(29)  # the most CDK accepts (AWS: 30 s)
PROXY_TIMEOUT = Duration.seconds(28)  # below the integration's
PROXY_UPSTREAM_TIMEOUT = Duration.seconds(25)  # the proxy answers a clean error before its own
ANTHROPIC_API_URL = "https://api.anthropic.com"

M = apigwv2.HttpMethod


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(
            '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
            '"requestTime":"$context.requestTime","method":"$context.httpMethod",'
            '"routeKey":"$context.routeKey","status":"$context.status",'
            '"responseLength":"$context.responseLength",'
            '"integrationLatency":"$context.integrationLatency",'
            '"integrationError":"$context.integrationErrorMessage"}'
        )


class Api(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: StageConfig, factory: FunctionFactory
    ) -> None:
        super().__init__(scope, id)
        self.api_function = factory.create(
            self,
            "Api",
            folder="api",
            handler="handler.lambda_handler",
            timeout=API_TIMEOUT,
            access=Access(bundles="read_write_purge", sends_to=("events",)),
            description="Kontex REST API (/v1, /health)",
        )
        self.ingest_function = factory.create(
            self,
            "Ingest",
            folder="ingest",
            handler="handler.lambda_handler",
            timeout=INGEST_TIMEOUT,
            access=Access(sends_to=("spans",)),
            description="Kontex OTLP/HTTP ingest (traces, logs, metrics)",
        )
        self.proxy_function = factory.create(
            self,
            "Proxy",
            folder="proxy",
            handler="handler.lambda_handler",
            timeout=PROXY_TIMEOUT,
            access=Access(sends_to=("captures",)),
            description="Kontex Anthropic Messages proxy",
            environment={
                "ANTHROPIC_API_URL": ANTHROPIC_API_URL,
                "KONTEX_PROXY_TIMEOUT_SECONDS": str(int(PROXY_UPSTREAM_TIMEOUT.to_seconds())),
            },
        )

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"kontex-{config.name}",
            description="Kontex: REST, OTLP ingest, Anthropic proxy",
            create_default_stage=False,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit
            ),
            access_log_settings=_AccessLogs(
                logs.LogGroup(
                    self,
                    "AccessLogs",
                    retention=config.log_retention,
                    removal_policy=config.removal_policy,
                )
            ),
        )
        self.url = self.stage.url  # https://<id>.execute-api.<region>.amazonaws.com/

        rest = self._integration("ApiIntegration", self.api_function)
        self._route("/v1/{proxy+}", [M.ANY], rest)
        self._route("/v1/openapi.json", [M.GET], rest)
        self._route("/health", [M.GET], rest)
        ingest = self._integration("IngestIntegration", self.ingest_function)
        for signal in ("traces", "logs", "metrics"):
            self._route(f"/ingest/v1/{signal}", [M.POST], ingest)
        self._route(
            "/proxy/v1/messages",
            [M.POST],
            self._integration(
                "ProxyIntegration", self.proxy_function, HTTP_API_MAX_INTEGRATION_TIMEOUT
            ),
        )
        NagSuppressions.add_resource_suppressions(
            self.http_api,
            [
                NagPackSuppression(
                    id="AwsSolutions-APIG4",
                    reason="Every route authenticates in the function with a Kontex API key "
                    "(HMAC-hashed in the database, revocable at once); /health is public.",
                ),
            ],
            apply_to_children=True,
        )

    def _integration(
        self, id: str, function: lambda_.IFunction, timeout: Duration | None = None
    ) -> integrations.HttpLambdaIntegration:
        return integrations.HttpLambdaIntegration(
            id,
            function,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            timeout=timeout,
        )

    def _route(
        self,
        path: str,
        methods: list[apigwv2.HttpMethod],
        integration: apigwv2.HttpRouteIntegration,
    ) -> None:
        self.http_api.add_routes(path=path, methods=methods, integration=integration)
