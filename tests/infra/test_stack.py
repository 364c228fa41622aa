"""The synthesized CloudFormation has the properties the design depends on.

Each stage is synthesized once per module (about 10 s each) from the same `infra.app.build`
that `app.py` runs, with cdk.json's context, so the offline-synth settings are tested too.
The layer is a tiny stand-in folder: these tests never need `make build`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

if shutil.which("node") is None:  # jsii runs the CDK in node
    pytest.skip("the CDK needs node on PATH", allow_module_level=True)

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Annotations, Match, Template  # noqa: E402

from infra.app import build  # noqa: E402
from infra.messaging import MAX_RECEIVE_COUNT, VISIBILITY_FACTOR  # noqa: E402
from kontex.domain.retry import QUEUE_RETRY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synth:
    template: Template
    resources: dict[str, dict[str, Any]]
    annotations: Annotations

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == type_}

    def bundle_buckets(self) -> dict[str, dict[str, Any]]:
        """The bundle bucket(s) (infra/storage.py): the dashboard's site bucket is apart."""
        return {k: r for k, r in self.of_type("AWS::S3::Bucket").items() if k.startswith("Storage")}

    def kontex_functions(self) -> dict[str, dict[str, Any]]:
        """Our functions (made by the factory), not CDK's own custom-resource handlers."""
        return {
            k: r
            for k, r in self.of_type("AWS::Lambda::Function").items()
            if "POWERTOOLS_SERVICE_NAME"
            in r["Properties"].get("Environment", {}).get("Variables", {})
        }

    def function(self, service: str) -> tuple[str, dict[str, Any]]:
        for key, res in self.kontex_functions().items():
            if res["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == service:
                return key, res["Properties"]
        raise AssertionError(f"no function {service}")


def _synth(stage: str, layer_dir: Path, **context: Any) -> Synth:
    site = layer_dir.parent / "dashboard"  # a stand-in page: these tests never need vite
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("<!doctype html>")
    context.setdefault("dashboard_dir", str(site))
    app = cdk.App(context={**CDK_CONTEXT, "stage": stage, "layer_dir": str(layer_dir), **context})
    stack = build(app)
    template = Template.from_stack(stack)
    return Synth(template, template.to_json()["Resources"], Annotations.from_stack(stack))


@pytest.fixture(scope="module")
def layer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    layers = tmp_path_factory.mktemp("layers")  # as `make build` lays them out
    layer = layers / "core"
    (layer / "python" / "kontex").mkdir(parents=True)
    (layer / "python" / "kontex" / "__init__.py").write_text("")
    for name in ("search", "voyage", "minilm"):
        (layers / name / "python").mkdir(parents=True)
    return layer


@pytest.fixture(scope="module")
def dev(layer_dir: Path) -> Synth:
    return _synth("dev", layer_dir)


@pytest.fixture(scope="module")
def prod(layer_dir: Path) -> Synth:
    return _synth("prod", layer_dir)


@pytest.fixture(scope="module")
def retained(layer_dir: Path) -> Synth:
    """dev with retention switched on, as `cdk deploy -c retention_days=30` does."""
    return _synth("dev", layer_dir, retention_days=30)


def _ref(value: Any) -> str:
    """The logical id behind a Ref or Fn::GetAtt."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


# --- messaging ---------------------------------------------------------------------------


def test_every_work_queue_has_a_dlq_with_max_receive_count(dev: Synth) -> None:
    queues = dev.of_type("AWS::SQS::Queue")
    with_redrive = {k: q for k, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    dlqs = {
        _ref(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]) for q in with_redrive.values()
    }

    # spans, captures, and the event consumers' queues: the feed's and search's embed
    assert len(with_redrive) == 4
    assert len(dlqs) == 4 and dlqs <= queues.keys()  # each its own DLQ
    assert set(queues) == set(with_redrive) | dlqs  # no queue is neither
    for queue in with_redrive.values():
        assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT


def test_every_dlq_has_an_alarm_on_its_depth(dev: Synth) -> None:
    alarms = dev.template.find_resources("AWS::CloudWatch::Alarm")
    on_dlqs = {
        json.dumps(a["Properties"]["Dimensions"][0]["Value"]): a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    dlqs = [
        name
        for name, queue in dev.template.find_resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" not in queue["Properties"]
    ]
    assert len(dlqs) == 4  # spans, captures, events, embed
    assert {json.dumps({"Fn::GetAtt": [d, "QueueName"]}) for d in dlqs} == set(on_dlqs)
    for alarm in on_dlqs.values():
        assert alarm["Threshold"] == 1 and alarm["EvaluationPeriods"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 60


def test_every_queue_is_sse_encrypted_and_tls_only(dev: Synth) -> None:
    queues = dev.of_type("AWS::SQS::Queue")
    assert all(q["Properties"].get("SqsManagedSseEnabled") is True for q in queues.values())
    tls_only: set[str] = set()
    for policy in dev.of_type("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                tls_only.update(_ref(q) for q in policy["Properties"]["Queues"])
    assert tls_only == set(queues)


def test_workers_report_batch_item_failures_and_queues_outlast_them(dev: Synth) -> None:
    queues = dev.of_type("AWS::SQS::Queue")
    functions = dev.of_type("AWS::Lambda::Function")
    mappings = dev.of_type("AWS::Lambda::EventSourceMapping")
    handlers = set()

    assert len(mappings) == 3  # spans, captures, and the feed (one queue per event consumer)
    for mapping in mappings.values():
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        queue = queues[_ref(props["EventSourceArn"])]["Properties"]
        function = functions[_ref(props["FunctionName"])]["Properties"]
        assert "RedrivePolicy" in queue  # a worker never reads a DLQ
        assert queue["VisibilityTimeout"] >= VISIBILITY_FACTOR * function["Timeout"]
        handlers.add(function["Handler"])
    assert handlers == {"spans.lambda_handler", "capture.lambda_handler", "feed.lambda_handler"}


def test_the_capture_worker_waits_a_second_for_a_fuller_batch(dev: Synth) -> None:
    """Captures arrive one proxied call at a time; Lambda hands the capture worker a batch
    once it holds ten or a second has passed (the span and feed workers: at once)."""
    functions = dev.of_type("AWS::Lambda::Function")
    windows = {}
    for mapping in dev.of_type("AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        handler = functions[_ref(props["FunctionName"])]["Properties"]["Handler"]
        windows[handler] = props.get("MaximumBatchingWindowInSeconds", 0)
    assert windows == {
        "spans.lambda_handler": 0,
        "capture.lambda_handler": 1,
        "feed.lambda_handler": 0,
    }


def assert_worker_retries_by_kind(synth: Synth, mapping: dict[str, Any]) -> None:
    """The worker of an event source mapping sends what fails for good to its queue's own DLQ
    (the URL in its environment, sqs:SendMessage on it), and its queue's receive budget rides
    out a database outage of well over a minute (kontex.domain.retry, adapters/sqs_batch.py)."""
    queue = synth.resources[_ref(mapping["EventSourceArn"])]["Properties"]
    function = synth.resources[_ref(mapping["FunctionName"])]["Properties"]
    dlq = _ref(queue["RedrivePolicy"]["deadLetterTargetArn"])
    assert function["Environment"]["Variables"]["KONTEX_DEAD_LETTER_QUEUE_URL"] == {"Ref": dlq}
    sends_to = set()
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": _ref(function["Role"])} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if "sqs:SendMessage" in (actions if isinstance(actions, list) else [actions]):
                resources = statement["Resource"]
                resources = resources if isinstance(resources, list) else [resources]
                sends_to |= {_ref(r) for r in resources}
    assert dlq in sends_to
    receives = queue["RedrivePolicy"]["maxReceiveCount"]
    # the worker's backoff (ChangeMessageVisibility) over every receive: about ten minutes
    assert receives == QUEUE_RETRY.max_receives
    assert QUEUE_RETRY.budget() >= 5 * 60
    # a worker that could not set its backoff: the visibility timeout between receives
    assert (receives - 1) * queue["VisibilityTimeout"] >= QUEUE_RETRY.budget()


def test_every_worker_dead_letters_what_fails_for_good_and_rides_out_an_outage(
    dev: Synth,
) -> None:
    mappings = dev.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 3  # spans, captures, feed (embed: tests/infra/test_search.py)
    for mapping in mappings.values():
        assert_worker_retries_by_kind(dev, mapping["Properties"])


def test_producers_get_their_queue_url_and_send_permission(dev: Synth) -> None:
    expected = {
        "kontex-ingest": "KONTEX_SPANS_QUEUE_URL",
        "kontex-proxy": "KONTEX_CAPTURES_QUEUE_URL",
    }
    for service, variable in expected.items():
        key, props = dev.function(service)
        queue = _ref(props["Environment"]["Variables"][variable])
        dev.template.has_resource_properties(
            "AWS::IAM::Policy",
            {
                "Roles": [{"Ref": _ref(props["Role"])}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Action": Match.array_with(["sqs:SendMessage"]),
                                    "Resource": {"Fn::GetAtt": [queue, "Arn"]},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_every_pipeline_has_a_lag_alarm_and_the_api_reads_its_lag(dev: Synth) -> None:
    """Issue 23, lag: an alarm on each work queue's ApproximateAgeOfOldestMessage, and the
    API function told where every queue and DLQ is (KONTEX_PIPELINES) with the rights to
    read their depth and CloudWatch's age (GET /health?detail=true)."""
    from infra.observability import LAG_ALARM_MINUTES, LAG_ALARM_SECONDS

    alarms = dev.template.find_resources("AWS::CloudWatch::Alarm")
    on_age = [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
    ]
    work = [
        name
        for name, queue in dev.template.find_resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" in queue["Properties"]
    ]
    assert len(on_age) == len(work) == 4
    watched = {json.dumps(a["Dimensions"][0]["Value"]) for a in on_age}
    assert watched == {json.dumps({"Fn::GetAtt": [w, "QueueName"]}) for w in work}
    for alarm in on_age:
        assert alarm["Threshold"] == LAG_ALARM_SECONDS
        assert alarm["EvaluationPeriods"] == LAG_ALARM_MINUTES
        assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 60
    _, props = dev.function("kontex-api")
    pipelines = json.dumps(props["Environment"]["Variables"]["KONTEX_PIPELINES"])
    for name in ("spans", "capture", "feed", "embed"):
        assert f'\\"{name}\\"' in pipelines
    policies = json.dumps(
        [
            p["Properties"]["PolicyDocument"]
            for p in dev.template.find_resources("AWS::IAM::Policy").values()
            if {"Ref": _ref(props["Role"])} in p["Properties"]["Roles"]
        ]
    )
    assert "sqs:GetQueueAttributes" in policies and "cloudwatch:GetMetricData" in policies


# --- storage -----------------------------------------------------------------------------


def test_bundle_bucket_is_private_encrypted_versioned_and_tls_only(dev: Synth) -> None:
    (key, bucket), *others = dev.bundle_buckets().items()
    props = bucket["Properties"]

    assert not others
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    dev.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": key},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


# --- data --------------------------------------------------------------------------------


def test_aurora_serverless_v2_is_encrypted_with_generated_credentials(dev: Synth) -> None:
    (_, cluster), *others = dev.of_type("AWS::RDS::DBCluster").items()
    props = cluster["Properties"]

    assert not others
    assert props["Engine"] == "aurora-postgresql"
    assert props["StorageEncrypted"] is True
    assert "ServerlessV2ScalingConfiguration" in props
    assert "{{resolve:secretsmanager:" in json.dumps(props["MasterUserPassword"])
    # the secret the functions read names the database (the library's default is "postgres")
    (secret,) = [
        s["Properties"]["GenerateSecretString"]
        for s in dev.of_type("AWS::SecretsManager::Secret").values()
        if "username" in s["Properties"]["GenerateSecretString"].get("SecretStringTemplate", "")
    ]
    assert json.loads(secret["SecretStringTemplate"]) == {"username": "kontex", "dbname": "kontex"}
    dev.template.has_resource_properties(
        "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless"}
    )


def test_functions_reach_the_database_through_the_rds_proxy(dev: Synth) -> None:
    (proxy_key, proxy), *others = dev.of_type("AWS::RDS::DBProxy").items()
    assert not others
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    (attachment,) = dev.of_type("AWS::SecretsManager::SecretTargetAttachment")

    functions = dev.kontex_functions()
    assert len(functions) == 9  # api, ingest, proxy, live, 3 workers, sweeper, migrate
    for fn in functions.values():
        variables = fn["Properties"]["Environment"]["Variables"]
        assert variables["KONTEX_DATABASE_HOST"] == {"Fn::GetAtt": [proxy_key, "Endpoint"]}
        assert variables["KONTEX_DATABASE_SECRET_ARN"] == {"Ref": attachment}
        assert "KONTEX_DATABASE_URL" not in variables
    # the functions' security group may open the proxy's port, and nothing else may
    (ingress,) = [
        r["Properties"]
        for r in dev.of_type("AWS::EC2::SecurityGroupIngress").values()
        if "Proxy" in json.dumps(r["Properties"]["GroupId"])
    ]
    assert ingress["FromPort"] == ingress["ToPort"] == 5432
    assert "FunctionsSecurityGroup" in _ref(ingress["SourceSecurityGroupId"])


def test_the_api_reads_on_the_readers_own_proxy_endpoint(dev: Synth, prod: Synth) -> None:
    """prod has a reader: a READ_ONLY endpoint of the one proxy, on the proxy's subnets and
    security group; the API function (its GET requests) is the only one told of it. dev has
    no reader: no endpoint, and every function reads from the writer."""
    (proxy_key,) = prod.of_type("AWS::RDS::DBProxy")
    (endpoint_key, endpoint), *others = prod.of_type("AWS::RDS::DBProxyEndpoint").items()
    assert not others
    properties = endpoint["Properties"]
    assert properties["TargetRole"] == "READ_ONLY"
    assert properties["DBProxyName"] == {"Ref": proxy_key}
    proxy = prod.resources[proxy_key]["Properties"]
    assert properties["VpcSubnetIds"] == proxy["VpcSubnetIds"]
    assert properties["VpcSecurityGroupIds"] == proxy["VpcSecurityGroupIds"]

    readers = {
        key
        for key, fn in prod.kontex_functions().items()
        if "KONTEX_DATABASE_READER_HOST" in fn["Properties"]["Environment"]["Variables"]
    }
    api_key, api = prod.function("kontex-api")
    assert readers == {api_key}
    variables = api["Environment"]["Variables"]
    assert variables["KONTEX_DATABASE_READER_HOST"] == {"Fn::GetAtt": [endpoint_key, "Endpoint"]}

    assert not dev.of_type("AWS::RDS::DBProxyEndpoint")
    for fn in dev.kontex_functions().values():
        assert "KONTEX_DATABASE_READER_HOST" not in fn["Properties"]["Environment"]["Variables"]


def test_migrations_run_on_deploy_after_the_database(dev: Synth) -> None:
    (trigger,) = dev.of_type("Custom::Trigger").values()
    migrate_key, _ = dev.function("kontex-migrate")
    version = dev.resources[_ref(trigger["Properties"]["HandlerArn"])]

    assert version["Type"] == "AWS::Lambda::Version"
    assert _ref(version["Properties"]["FunctionName"]) == migrate_key
    assert trigger["Properties"]["InvocationType"] == "RequestResponse"  # failure fails deploy
    depends = set(trigger["DependsOn"])
    for type_ in ("AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::RDS::DBProxy"):
        assert set(dev.of_type(type_)) <= depends, type_


def test_dev_is_disposable(dev: Synth) -> None:
    (cluster,) = dev.of_type("AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["DeletionProtection"] is False
    assert cluster["DeletionPolicy"] == "Delete"


def test_prod_has_deletion_protection_backups_and_retention(prod: Synth) -> None:
    (cluster,) = prod.of_type("AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["DeletionProtection"] is True
    assert cluster["Properties"]["BackupRetentionPeriod"] >= 7
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert len(prod.of_type("AWS::RDS::DBInstance")) == 2  # writer + reader in another AZ
    (bucket,) = prod.bundle_buckets().values()
    assert bucket["DeletionPolicy"] == "Retain"
    for secret in prod.of_type("AWS::SecretsManager::Secret").values():  # DB and API-key
        assert secret["DeletionPolicy"] == "Retain"
    assert not prod.of_type("Custom::S3AutoDeleteObjects")


# --- api ---------------------------------------------------------------------------------


def test_http_api_routes_go_to_their_functions(dev: Synth) -> None:
    integrations = dev.of_type("AWS::ApiGatewayV2::Integration")
    (http_api,) = [
        k
        for k, api in dev.of_type("AWS::ApiGatewayV2::Api").items()
        if api["Properties"]["ProtocolType"] == "HTTP"
    ]
    routes: dict[str, str] = {}
    for route in dev.of_type("AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        if props["ApiId"] != {"Ref": http_api}:
            continue  # the WebSocket API's (test_live_websocket_api_...)
        target = props["Target"]["Fn::Join"][1][1]["Ref"]  # "integrations/<ref>"
        uri = integrations[target]["Properties"]["IntegrationUri"]
        routes[props["RouteKey"]] = _ref(uri)
        assert props.get("AuthorizationType", "NONE") == "NONE"  # the function authenticates

    def fn(service: str) -> str:
        return dev.function(service)[0]

    assert routes["POST /ingest/v1/traces"] == fn("kontex-ingest")
    assert not [r for r in routes if "/proxy/" in r]  # the proxy streams from its function URL
    assert routes["POST /ingest/v1/logs"] == fn("kontex-ingest")
    assert routes["POST /ingest/v1/metrics"] == fn("kontex-ingest")
    assert routes["GET /health"] == fn("kontex-api")
    assert routes["ANY /v1/{proxy+}"] == fn("kontex-api")
    assert routes["GET /v1/openapi.json"] == fn("kontex-api")
    for method in ("POST", "GET", "DELETE"):  # MCP: the function answers GET/DELETE (405)
        assert routes[f"{method} /mcp"] == fn("kontex-api")
    for integration in integrations.values():
        if integration["Properties"]["ApiId"] == {"Ref": http_api}:
            assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_mcp_accepts_the_host_of_its_own_api_only(dev: Synth) -> None:
    # the MCP SDK answers 421 to a Host header it was not told about (DNS rebinding protection)
    _, api = dev.function("kontex-api")
    hosts = api["Environment"]["Variables"]["KONTEX_MCP_ALLOWED_HOSTS"]
    parts = hosts["Fn::Join"][1]
    (http_api,) = (
        k
        for k, a in dev.of_type("AWS::ApiGatewayV2::Api").items()
        if a["Properties"]["ProtocolType"] == "HTTP"
    )
    assert parts[0] == {"Ref": http_api}
    assert parts[1:] == [".execute-api.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]


def test_proxy_streams_from_a_function_url_for_up_to_15_minutes(dev: Synth) -> None:
    key, proxy = dev.function("kontex-proxy")
    # a function URL in RESPONSE_STREAM mode, not API Gateway's buffered 30 s
    (url,) = dev.of_type("AWS::Lambda::Url").values()
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    assert url["Properties"]["AuthType"] == "NONE"  # the function checks the Kontex key
    assert url["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0] == key
    # Python streams through the Lambda Web Adapter: AWS's public layer, its wrapper, run.sh
    variables = proxy["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert proxy["Handler"] == "run.sh"
    adapter = [
        json.dumps(layer) for layer in proxy["Layers"] if "LambdaAdapterLayer" in json.dumps(layer)
    ]
    assert len(adapter) == 1
    assert ":753240598075:layer:LambdaAdapterLayerArm64:" in adapter[0]
    assert "AWS::Region" in adapter[0]  # the layer of the stack's own region
    # the function may run 15 minutes; the upstream timeout answers first
    upstream = float(variables["KONTEX_PROXY_TIMEOUT_SECONDS"])
    assert proxy["Timeout"] == 900 and 600 <= upstream < proxy["Timeout"]
    assert variables["ANTHROPIC_API_URL"] == "https://api.anthropic.com"
    assert variables["OPENAI_API_URL"] == "https://api.openai.com"
    assert variables["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    outputs = dev.template.to_json()["Outputs"]
    assert "FunctionUrl" in json.dumps(outputs["AnthropicBaseUrl"]["Value"])
    assert "proxy/openai/v1" in json.dumps(outputs["OpenAIBaseUrl"]["Value"])


def test_the_proxy_function_is_the_asgi_app_on_uvicorn() -> None:
    """What the adapter starts (run.sh) runs uvicorn on the ASGI app ``kontex dev`` mounts: no
    HTTP server or framing of our own (tests/proxy/test_web_adapter_server.py runs it)."""
    import ast

    folder = Path(__file__).resolve().parents[2] / "functions" / "proxy"
    assert 'exec python3 "$LAMBDA_TASK_ROOT/server.py"' in (folder / "run.sh").read_text()
    server = ast.parse((folder / "server.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(server)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {node.module for node in ast.walk(server) if isinstance(node, ast.ImportFrom)}
    assert "uvicorn" in imported and "app" in imported
    assert not {"http.server", "socketserver"} & imported
    port = next(
        node
        for node in ast.walk(server)
        if isinstance(node, ast.Constant) and node.value == "AWS_LWA_PORT"
    )
    assert port is not None  # uvicorn listens where the adapter looks (AWS_LWA_PORT)
    handler = (folder / "handler.py").read_text()
    assert "from kontex.proxy.app import ProxyApp" in handler and "app = ProxyApp()" in handler


def test_large_queue_messages_travel_by_claim_check(dev: Synth) -> None:
    policies = json.dumps(dev.of_type("AWS::IAM::Policy"))
    for service in ("kontex-ingest", "kontex-proxy", "kontex-spansworker", "kontex-captureworker"):
        _, props = dev.function(service)
        assert "KONTEX_BUNDLE_BUCKET" in props["Environment"]["Variables"], service
    assert policies.count("/claims/*") >= 4
    (bucket,) = dev.bundle_buckets().values()
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("Prefix") == "claims/" and r.get("ExpirationInDays") for r in rules)


def test_stage_is_throttled_and_logged_and_urls_are_output(dev: Synth) -> None:
    stages = dev.of_type("AWS::ApiGatewayV2::Stage").values()
    assert len(stages) == 2  # the HTTP API's and the WebSocket API's
    for stage in stages:
        settings = stage["Properties"]["DefaultRouteSettings"]
        assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
        assert "DestinationArn" in stage["Properties"]["AccessLogSettings"]
    outputs = dev.template.to_json()["Outputs"]
    assert {
        "ApiUrl",
        "OtlpTracesEndpoint",
        "AnthropicBaseUrl",
        "MigrateFunctionName",
        "LiveUrl",
    } <= set(outputs)
    assert outputs["OtlpTracesEndpoint"]["Value"]["Fn::Join"][1][-1].endswith("/ingest/v1/traces")
    assert outputs["McpUrl"]["Value"]["Fn::Join"][1][-1].endswith("/mcp")


# --- functions ---------------------------------------------------------------------------


def test_every_function_is_arm64_python312_traced_json_logged_in_the_vpc(dev: Synth) -> None:
    (layer,) = (k for k in dev.of_type("AWS::Lambda::LayerVersion") if k.startswith("CoreLayer"))
    log_groups = dev.of_type("AWS::Logs::LogGroup")
    for key, fn in dev.kontex_functions().items():
        props = fn["Properties"]
        runtime = re.fullmatch(r"python(\d+)\.(\d+)", props["Runtime"])
        assert runtime and tuple(map(int, runtime.groups())) >= (3, 12), key
        assert props["Architectures"] == ["arm64"], key
        assert props["TracingConfig"] == {"Mode": "Active"}, key
        assert props["LoggingConfig"]["LogFormat"] == "JSON", key
        assert (
            "RetentionInDays" in log_groups[_ref(props["LoggingConfig"]["LogGroup"])]["Properties"]
        )
        assert {"Ref": layer} in props["Layers"], key  # the proxy also has the web adapter's
        assert props["VpcConfig"]["SubnetIds"], key
        variables = props["Environment"]["Variables"]
        assert {
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_LOG_LEVEL",
            "POWERTOOLS_METRICS_NAMESPACE",
        } <= set(variables)
        # no pydantic plugin discovery at each cold start (bench/coldstart.py runs so too)
        assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__", key


def test_layer_is_built_for_the_functions_runtime_and_architecture() -> None:
    spec = importlib.util.spec_from_file_location("layer_build", ROOT / "layers" / "build.py")
    assert spec and spec.loader
    layer_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layer_build)
    from infra.functions import ARCHITECTURE, RUNTIME

    assert RUNTIME.name == f"python{layer_build.PYTHON_VERSION}"
    assert ARCHITECTURE.name == layer_build.ARCH
    command = layer_build.pip_command(Path("/t"), ["x"], "3.12", "arm64")
    assert "--only-binary=:all:" in command and "manylinux2014_aarch64" in command


def test_no_wildcard_actions_in_any_policy(dev: Synth) -> None:
    for key, policy in dev.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                assert action != "*" and not action.endswith(":*"), (key, action)


def test_cdk_nag_finds_no_unsuppressed_errors_or_warnings(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        pattern = Match.string_like_regexp("AwsSolutions-.*")
        assert synth.annotations.find_error("*", pattern) == []
        assert synth.annotations.find_warning("*", pattern) == []


def test_only_functions_that_see_api_keys_can_read_the_key_secret(dev: Synth) -> None:
    for service in ("kontex-api", "kontex-ingest", "kontex-proxy"):
        _, props = dev.function(service)
        assert "KONTEX_API_KEY_SECRET_ARN" in props["Environment"]["Variables"], service
    for service in ("kontex-spansworker", "kontex-captureworker"):
        _, props = dev.function(service)
        assert "KONTEX_API_KEY_SECRET_ARN" not in props["Environment"]["Variables"], service


# --- retention ---------------------------------------------------------------------------


def _prune_rules(synth: Synth) -> list[dict[str, Any]]:
    return [
        rule
        for rule in synth.of_type("AWS::Events::Rule").values()
        if "purge" in rule["Properties"].get("Description", "")
    ]


def test_retention_is_off_by_default(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        assert not _prune_rules(synth)
        services = {
            fn["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            for fn in synth.kontex_functions().values()
        }
        assert "kontex-prune" not in services


def test_retention_schedules_the_prune_function_with_the_stages_days(retained: Synth) -> None:
    key, props = retained.function("kontex-prune")
    (rule,) = _prune_rules(retained)
    (target,) = rule["Properties"]["Targets"]

    assert props["Handler"] == "handler.lambda_handler"
    assert rule["Properties"]["State"] == "ENABLED"
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert _ref(target["Arn"]) == key
    assert json.loads(target["Input"]) == {"older_than_days": 30, "limit": 500}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    retained.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [key, "Arn"]},
        },
    )
    assert len(retained.kontex_functions()) == 10  # the nine of every stack, and prune


def test_prune_function_may_list_and_delete_bundles_and_nothing_more(retained: Synth) -> None:
    _, props = retained.function("kontex-prune")
    variables = props["Environment"]["Variables"]
    (bucket,) = retained.bundle_buckets()
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in retained.of_type("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": _ref(props["Role"])}]
    ]
    s3_grants = {
        (action, json.dumps(statement["Resource"], sort_keys=True))
        for statement in policy
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else [])
        + (statement["Action"] if isinstance(statement["Action"], list) else [])
        if action.startswith("s3:")
    }

    assert variables["KONTEX_BUNDLE_BUCKET"] == {"Ref": bucket}
    assert "KONTEX_API_KEY_SECRET_ARN" not in variables  # it never sees an API key
    assert not any(v.endswith("_QUEUE_URL") for v in variables)
    bucket_arn = json.dumps({"Fn::GetAtt": [bucket, "Arn"]}, sort_keys=True)
    objects = json.dumps(
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}, sort_keys=True
    )
    # it publishes session.purged; an event too large for SNS could be put under claims/events/
    assert variables["KONTEX_EVENTS_TOPIC_ARN"] == {"Ref": _topic(retained)}
    claims = json.dumps(
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/claims/events/*"]]}, sort_keys=True
    )
    puts = {(action, resource) for action, resource in s3_grants if resource == claims}
    assert {action for action, _ in puts} == {
        "s3:Abort*",
        "s3:PutObject",
        "s3:PutObjectLegalHold",
        "s3:PutObjectRetention",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
    }
    assert s3_grants - puts == {("s3:DeleteObject*", objects), ("s3:ListBucket", bucket_arn)}


def _topic(synth: Synth) -> str:
    (topic,) = synth.of_type("AWS::SNS::Topic")
    return topic


def _s3_actions(synth: Synth, function_name: str) -> set[str]:
    _, props = synth.function(function_name)
    statements = [
        statement
        for p in synth.of_type("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": _ref(props["Role"])}]
        for statement in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    return {
        action
        for statement in statements
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
        if action.startswith("s3:")
    }


def test_only_the_api_may_delete_bundles_for_a_purge(dev: Synth) -> None:
    # DELETE /v1/sessions/{id}?purge=true removes the session's large file bodies
    assert {"s3:DeleteObject*", "s3:PutObject", "s3:GetObject*"} <= _s3_actions(dev, "kontex-api")
    for name in ("kontex-captureworker", "kontex-spansworker"):
        # workers delete only the claim-check payloads they consumed (claims/*)
        _, props = dev.function(name)
        for policy in dev.of_type("AWS::IAM::Policy").values():
            if policy["Properties"]["Roles"] != [{"Ref": _ref(props["Role"])}]:
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                if "s3:DeleteObject*" in (actions if isinstance(actions, list) else [actions]):
                    assert json.dumps(statement["Resource"]).endswith('/claims/*"]]}'), statement


def test_retention_stack_passes_cdk_nag_and_has_no_wildcard_actions(retained: Synth) -> None:
    pattern = Match.string_like_regexp("AwsSolutions-.*")
    assert retained.annotations.find_error("*", pattern) == []
    assert retained.annotations.find_warning("*", pattern) == []
    test_no_wildcard_actions_in_any_policy(retained)


def test_retention_days_from_context_must_be_whole_days() -> None:
    from infra.config import stage_config, with_context

    dev = stage_config("dev")
    for value, expected in (("30", 30), (7, 7), ("0", None)):
        app = cdk.App(context={"retention_days": value})
        assert with_context(dev, app).retention_days == expected
    with pytest.raises(ValueError, match="retention_days"):
        with_context(dev, cdk.App(context={"retention_days": "30d"}))
    assert with_context(dev, cdk.App()) is dev


def test_a_dashboard_and_an_error_alarm_per_function(dev: Synth) -> None:
    dashboards = dev.of_type("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    (dashboard,) = dashboards.values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "EventsPosted",
        "SpansAccepted",
        "SnapshotsWritten",
        "UpstreamLatency",
        "IntegrityErrors",
        "EventsSwept",
        "ConnectCount",
    ):
        assert metric in body, metric
    assert "ApproximateAgeOfOldestMessage" in body
    alarms = dev.of_type("AWS::CloudWatch::Alarm").values()
    rates = [a for a in alarms if "errors above" in a["Properties"].get("AlarmDescription", "")]
    assert len(rates) == len(dev.kontex_functions())  # every function, the migrator included
    assert any("failed its hash" in a["Properties"].get("AlarmDescription", "") for a in alarms)


def test_every_function_flushes_metrics_and_traces() -> None:
    root = Path(__file__).resolve().parents[2] / "functions"
    for handler in [*root.glob("*/handler.py"), *root.glob("workers/*.py")]:
        text = handler.read_text("utf-8")
        if handler.parent.name == "proxy":  # an ASGI app, not a Lambda handler: it flushes
            app = root.parent / "layers" / "core" / "kontex" / "proxy" / "app.py"
            assert "observability.flush()" in app.read_text("utf-8")  # after each call
            continue
        assert "@tracer.capture_lambda_handler" in text, handler
        if handler.parent.name != "migrate":
            assert "@metrics.log_metrics" in text, handler


# --- events and the live feed ------------------------------------------------------------

PUBLISHERS = ("kontex-api", "kontex-spansworker", "kontex-captureworker", "kontex-sweeper")


def _statements(synth: Synth, service: str) -> list[dict[str, Any]]:
    _, props = synth.function(service)
    return [
        statement
        for p in synth.of_type("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": _ref(props["Role"])}]
        for statement in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def test_events_go_to_an_encrypted_tls_only_topic_not_a_queue(dev: Synth) -> None:
    (topic_key, topic), *others = dev.of_type("AWS::SNS::Topic").items()
    assert not others
    assert "alias/aws/sns" in json.dumps(topic["Properties"]["KmsMasterKeyId"])
    (policy,) = dev.of_type("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_key}]
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_key},
        "Sid": "AllowPublishThroughSSLOnly",
    } in policy["Properties"]["PolicyDocument"]["Statement"]
    # the single events queue is gone: no function is told of one
    for fn in dev.kontex_functions().values():
        assert "KONTEX_EVENTS_QUEUE_URL" not in fn["Properties"]["Environment"]["Variables"]


def test_publishers_get_the_topic_arn_and_publish_permission(dev: Synth) -> None:
    (topic_key,) = dev.of_type("AWS::SNS::Topic")
    for fn in dev.kontex_functions().values():
        variables = fn["Properties"]["Environment"]["Variables"]
        service = variables["POWERTOOLS_SERVICE_NAME"]
        publishes = [s for s in _statements(dev, service) if "sns:Publish" in _actions(s)]
        if service in PUBLISHERS:
            assert variables["KONTEX_EVENTS_TOPIC_ARN"] == {"Ref": topic_key}, service
            assert [s["Resource"] for s in publishes] == [{"Ref": topic_key}], service
            # an event too large for SNS goes by claim check: put under claims/events/ only
            puts = [s for s in _statements(dev, service) if "s3:PutObject" in _actions(s)]
            assert any('"/claims/events/*"' in json.dumps(s["Resource"]) for s in puts), service
            assert "KONTEX_BUNDLE_BUCKET" in variables
        else:
            assert "KONTEX_EVENTS_TOPIC_ARN" not in variables, service
            assert not publishes, service


def test_each_event_consumer_has_its_queue_subscribed_with_raw_delivery(dev: Synth) -> None:
    from infra.workers import EVENT_CONSUMERS

    (topic_key,) = dev.of_type("AWS::SNS::Topic")
    queues = dev.of_type("AWS::SQS::Queue")
    subscriptions = dev.of_type("AWS::SNS::Subscription").values()
    subscribed = {_ref(s["Properties"]["Endpoint"]) for s in subscriptions}

    assert EVENT_CONSUMERS == ("feed",)
    assert len(subscriptions) == len(EVENT_CONSUMERS)
    for sub in subscriptions:
        props = sub["Properties"]
        assert props["Protocol"] == "sqs" and props["RawMessageDelivery"] is True
        assert props["TopicArn"] == {"Ref": topic_key}
        # the queue's DLQ also takes what SNS could not deliver to it
        dlq = queues[_ref(props["Endpoint"])]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
        assert props["RedrivePolicy"] == {"deadLetterTargetArn": dlq}
    # the feed worker reads its own subscribed queue, reporting partial failures
    feed_key, _ = dev.function("kontex-feedworker")
    (mapping,) = [
        m["Properties"]
        for m in dev.of_type("AWS::Lambda::EventSourceMapping").values()
        if _ref(m["Properties"]["FunctionName"]) == feed_key
    ]
    assert _ref(mapping["EventSourceArn"]) in subscribed
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # SNS may deliver into that queue, for this topic only
    dev.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": _ref(mapping["EventSourceArn"])}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Effect": "Allow",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": topic_key}}},
                            }
                        )
                    ]
                )
            },
        },
    )
    # consumers read shared event claims and never delete them (the lifecycle rule does)
    feed = _statements(dev, "kontex-feedworker")
    reads = [s for s in feed if "s3:GetObject*" in _actions(s)]
    assert reads and all('"/claims/events/*"' in json.dumps(s["Resource"]) for s in reads)
    assert not [s for s in feed if any(a.startswith("s3:Delete") for a in _actions(s))]


def test_live_websocket_api_routes_go_to_the_live_function(dev: Synth) -> None:
    (api_key, api), *others = [
        (k, a)
        for k, a in dev.of_type("AWS::ApiGatewayV2::Api").items()
        if a["Properties"]["ProtocolType"] == "WEBSOCKET"
    ]
    assert not others
    assert api["Properties"]["RouteSelectionExpression"] == "$request.body.action"
    live_key, live = dev.function("kontex-live")
    assert live["Handler"] == "handler.lambda_handler"
    integrations = dev.of_type("AWS::ApiGatewayV2::Integration")
    routes = {}
    for route in dev.of_type("AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        if props["ApiId"] != {"Ref": api_key}:
            continue
        target = integrations[props["Target"]["Fn::Join"][1][1]["Ref"]]["Properties"]
        assert target["IntegrationType"] == "AWS_PROXY"
        assert json.dumps({"Fn::GetAtt": [live_key, "Arn"]}) in json.dumps(target["IntegrationUri"])
        assert "RouteResponseSelectionExpression" not in props  # answers go by the Management API
        routes[props["RouteKey"]] = props
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    # API Gateway may invoke the function for those routes
    permissions = [
        p["Properties"]
        for p in dev.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [live_key, "Arn"]}
    ]
    assert len(permissions) == 3
    assert {p["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    # its stage deploys itself, is throttled and logged (through the account's CloudWatch role)
    (stage,) = [
        s["Properties"]
        for s in dev.of_type("AWS::ApiGatewayV2::Stage").values()
        if s["Properties"]["ApiId"] == {"Ref": api_key}
    ]
    assert stage["StageName"] == "live" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert '"connectionId":"$context.connectionId"' in stage["AccessLogSettings"]["Format"]
    (account,) = dev.of_type("AWS::ApiGateway::Account").values()
    assert account["DeletionPolicy"] == "Retain"
    # clients get the wss:// URL of that stage
    live_url = dev.template.to_json()["Outputs"]["LiveUrl"]["Value"]["Fn::Join"][1]
    assert live_url[0] == "wss://" and live_url[1] == {"Ref": api_key}
    assert live_url[-1] == "/live"


def test_live_and_feed_may_post_to_connections_and_nothing_else_may(dev: Synth) -> None:
    (api_key,) = [
        k
        for k, a in dev.of_type("AWS::ApiGatewayV2::Api").items()
        if a["Properties"]["ProtocolType"] == "WEBSOCKET"
    ]
    for fn in dev.kontex_functions().values():
        variables = fn["Properties"]["Environment"]["Variables"]
        service = variables["POWERTOOLS_SERVICE_NAME"]
        grants = [
            s for s in _statements(dev, service) if "execute-api:ManageConnections" in _actions(s)
        ]
        if service in ("kontex-live", "kontex-feedworker"):
            endpoint = variables["KONTEX_WEBSOCKET_ENDPOINT"]["Fn::Join"][1]
            assert endpoint[0] == "https://" and endpoint[1] == {"Ref": api_key}, service
            assert endpoint[-1] == "/live", service
            (grant,) = grants
            resource = grant["Resource"]["Fn::Join"][1]
            assert {"Ref": api_key} in resource and resource[-1] == "/*/*/@connections/*"
        else:
            assert "KONTEX_WEBSOCKET_ENDPOINT" not in variables, service
            assert not grants, service
    # the live function authenticates first frames; the feed worker never sees a key
    _, live = dev.function("kontex-live")
    _, feed = dev.function("kontex-feedworker")
    assert "KONTEX_API_KEY_SECRET_ARN" in live["Environment"]["Variables"]
    assert "KONTEX_API_KEY_SECRET_ARN" not in feed["Environment"]["Variables"]


def test_the_sweeper_runs_every_minute_and_never_overlaps_itself(dev: Synth) -> None:
    key, props = dev.function("kontex-sweeper")
    (rule,) = [
        r["Properties"]
        for r in dev.of_type("AWS::Events::Rule").values()
        if _ref(r["Properties"]["Targets"][0]["Arn"]) == key
    ]
    assert props["Handler"] == "handler.lambda_handler"
    assert rule["ScheduleExpression"] == "rate(1 minute)" and rule["State"] == "ENABLED"
    assert props["Timeout"] < 60
    dev.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [key, "Arn"]},
        },
    )


# --- dashboard ---------------------------------------------------------------------------


def test_dashboard_is_a_private_bucket_behind_cloudfront_with_the_api_on_v1(dev: Synth) -> None:
    (distribution,) = dev.of_type("AWS::CloudFront::Distribution").values()
    conf = distribution["Properties"]["DistributionConfig"]
    assert conf["DefaultRootObject"] == "index.html"
    # the page from S3 through an Origin Access Control, HTTPS only
    (oac,) = dev.of_type("AWS::CloudFront::OriginAccessControl").values()
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    s3_origin = next(o for o in conf["Origins"] if "S3OriginConfig" in o)
    assert "OriginAccessControlId" in s3_origin
    assert conf["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    # the bucket holding it is private and TLS-only
    site = next(
        (k, r) for k, r in dev.of_type("AWS::S3::Bucket").items() if k.startswith("DashboardSite")
    )
    block = site[1]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(block[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"))
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in dev.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": site[0]}
    ]
    statements = [s for p in policies for s in p]
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in statements)
    (reader,) = (s for s in statements if s["Principal"] == {"Service": "cloudfront.amazonaws.com"})
    assert reader["Action"] == "s3:GetObject"  # CloudFront reads; nothing else is granted to it
    assert "AWS:SourceArn" in json.dumps(reader["Condition"])  # only this distribution
    # /v1/* goes to the HTTP API uncached, with the viewer's Authorization header
    (api_behavior,) = conf["CacheBehaviors"]
    assert api_behavior["PathPattern"] == "/v1/*"
    assert api_behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # disabled
    # AllViewerExceptHostHeader: API Gateway must see its own Host
    assert api_behavior["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert set(api_behavior["AllowedMethods"]) >= {"GET", "POST", "PATCH", "DELETE"}
    api_origin = next(o for o in conf["Origins"] if o["Id"] == api_behavior["TargetOriginId"])
    (http_api,) = (
        k
        for k, a in dev.of_type("AWS::ApiGatewayV2::Api").items()
        if a["Properties"]["ProtocolType"] == "HTTP"
    )
    assert http_api in json.dumps(api_origin["DomainName"])


def test_dashboard_is_deployed_with_its_config_and_url_output(dev: Synth) -> None:
    (deployment,) = dev.of_type("Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert len(props["SourceObjectKeys"]) == 2  # the built page and config.json
    assert json.dumps(props["DistributionPaths"]) == '["/*"]' and props["Prune"] is True
    outputs = dev.template.to_json()["Outputs"]
    url = json.dumps(outputs["DashboardUrl"]["Value"])
    assert "https://" in url and "DashboardDistribution" in url


def _csp_directives(policy: Any) -> dict[str, str]:
    """A policy's directives by name (a deployed one's tokens, region and URL suffix, as X)."""
    if isinstance(policy, dict):  # Fn::Join of text and tokens
        policy = "".join(p if isinstance(p, str) else "X" for p in policy["Fn::Join"][1])
    return {d.split(" ")[0]: d for d in (p.strip() for p in policy.split(";")) if d}


def test_the_dashboard_sends_a_csp_and_is_never_framed(dev: Synth) -> None:
    from kontex.local.static import content_security_policy

    (distribution,) = dev.of_type("AWS::CloudFront::Distribution").values()
    conf = distribution["Properties"]["DistributionConfig"]
    (key, policy), *_ = dev.of_type("AWS::CloudFront::ResponseHeadersPolicy").items()
    assert conf["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": key}
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "same-origin"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] == 365 * 86400
    deployed = _csp_directives(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    # the same policy as `kontex dev`'s, but for the live feed's origin on execute-api
    local = _csp_directives(content_security_policy())
    assert {k: v for k, v in deployed.items() if k != "connect-src"} == {
        k: v for k, v in local.items() if k != "connect-src"
    }
    assert "script-src 'self'" in local.values() and "frame-ancestors 'none'" in local.values()
    assert deployed["connect-src"] == "connect-src 'self' wss://*.execute-api.X.X"
