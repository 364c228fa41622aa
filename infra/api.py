"""API: one HTTP API (payload 2.0) in front of the api and ingest functions; the proxy on its
own streaming function URL.

Routes: `ANY /v1/{proxy+}`, `GET /v1/openapi.json`, `POST|GET|DELETE /mcp` (MCP tools) and
`GET /health` to the api function; `POST /ingest/v1/{traces,logs,metrics}` to ingest (the
proxy is a streaming function URL of its own). Authentication is the library's (API keys,
HMAC-hashed), not API Gateway's. The `$default` stage is throttled and writes JSON access logs.

The proxy relays model calls that can be long and stream for minutes. An HTTP API buffers
answers and gives up after 30 s, so the proxy is not behind it: it has a Lambda function URL in
invoke mode RESPONSE_STREAM, and runs its ASGI app (``kontex.proxy.app``, the same app
``kontex dev`` mounts) on uvicorn behind the Lambda Web Adapter (AWS's public layer; Python has
no native streaming handler), which streams what uvicorn writes. The function may run 15
minutes; the upstream timeout is a little less, so a stalled upstream gets the proxy's own
error answer. The URL's auth type is NONE: every call is
authenticated in the function with a Kontex key, before anything is forwarded (docs/deploy.md).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.access_logs import AccessLogs
from infra.config import StageConfig
from infra.functions import ARCH_NAME as ARCH
from infra.functions import Access, FunctionFactory

API_TIMEOUT = Duration.seconds(15)
INGEST_TIMEOUT = Duration.seconds(15)
PROXY_TIMEOUT = Duration.minutes(15)  # Lambda's maximum: a streamed answer may last that long
PROXY_UPSTREAM_TIMEOUT = Duration.seconds(870)  # the proxy answers a clean error before its own
ANTHROPIC_API_URL = "https://api.anthropic.com"
OPENAI_API_URL = "https://api.openai.com"
# The Lambda Web Adapter's public layer (awslabs/aws-lambda-web-adapter, docs: zip packages),
# published by AWS in every commercial region; the architecture must match the functions'.
WEB_ADAPTER_ACCOUNT = "753240598075"
WEB_ADAPTER_LAYER = {"arm64": "LambdaAdapterLayerArm64", "x86_64": "LambdaAdapterLayerX86"}
WEB_ADAPTER_VERSION = 26
WEB_ADAPTER_PORT = "8080"

M = apigwv2.HttpMethod


ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "method": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}


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
            access=Access(bundles="read_write_purge", events="publish", reads_on_readers=True),
            description="Kontex REST API and MCP tools (/v1, /mcp, /health)",
        )
        self.ingest_function = factory.create(
            self,
            "Ingest",
            folder="ingest",
            handler="handler.lambda_handler",
            timeout=INGEST_TIMEOUT,
            access=Access(sends_to=("spans",), claims="put"),
            description="Kontex OTLP/HTTP ingest (traces, logs, metrics)",
        )
        web_adapter = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "WebAdapter",
            f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{WEB_ADAPTER_ACCOUNT}:layer:"
            f"{WEB_ADAPTER_LAYER[ARCH]}:{WEB_ADAPTER_VERSION}",
        )
        self.proxy_function = factory.create(
            self,
            "Proxy",
            folder="proxy",
            handler="run.sh",  # started by the web adapter (AWS_LAMBDA_EXEC_WRAPPER)
            timeout=PROXY_TIMEOUT,
            access=Access(sends_to=("captures",), claims="put"),
            description="Kontex proxy (Anthropic /proxy/v1/*, OpenAI /proxy/openai/v1/*): "
            "ASGI on uvicorn, streamed by the Lambda Web Adapter",
            environment={
                "ANTHROPIC_API_URL": ANTHROPIC_API_URL,
                "OPENAI_API_URL": OPENAI_API_URL,
                "KONTEX_PROXY_TIMEOUT_SECONDS": str(int(PROXY_UPSTREAM_TIMEOUT.to_seconds())),
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                "AWS_LWA_INVOKE_MODE": "response_stream",
                "AWS_LWA_PORT": WEB_ADAPTER_PORT,
                "AWS_LWA_READINESS_CHECK_PATH": "/health",
            },
            extra_layers=[web_adapter],
        )
        self.proxy_url = self.proxy_function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.RESPONSE_STREAM,
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
            access_log_settings=AccessLogs.for_stage(self, config, ACCESS_LOG_FIELDS),
        )
        self.url = self.stage.url  # https://<id>.execute-api.<region>.amazonaws.com/

        rest = self._integration("ApiIntegration", self.api_function)
        self._route("/v1/{proxy+}", [M.ANY], rest)
        self._route("/v1/openapi.json", [M.GET], rest)
        self._route("/health", [M.GET], rest)
        # MCP's streamable HTTP transport: POST carries JSON-RPC; GET (a stream) and DELETE (a
        # session) are answered 405 by the function, stateless, as on `kontex dev`
        self._route("/mcp", [M.POST, M.GET, M.DELETE], rest)
        # the SDK refuses other Host headers (DNS rebinding protection): this API's own host
        self.api_function.add_environment(
            "KONTEX_MCP_ALLOWED_HOSTS",
            f"{self.http_api.api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}",
        )
        ingest = self._integration("IngestIntegration", self.ingest_function)
        for signal in ("traces", "logs", "metrics"):
            self._route(f"/ingest/v1/{signal}", [M.POST], ingest)
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
