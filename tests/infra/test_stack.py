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

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synth:
    template: Template
    resources: dict[str, dict[str, Any]]
    annotations: Annotations

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == type_}

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

    assert len(with_redrive) == 4  # spans, captures, events, embed (infra/search.py)
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

    assert len(mappings) == 2  # the events queue has no consumer yet (live feed, embeddings)
    for mapping in mappings.values():
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        queue = queues[_ref(props["EventSourceArn"])]["Properties"]
        function = functions[_ref(props["FunctionName"])]["Properties"]
        assert "RedrivePolicy" in queue  # a worker never reads a DLQ
        assert queue["VisibilityTimeout"] >= VISIBILITY_FACTOR * function["Timeout"]
        handlers.add(function["Handler"])
    assert handlers == {"spans.lambda_handler", "capture.lambda_handler"}


def test_producers_get_their_queue_url_and_send_permission(dev: Synth) -> None:
    expected = {
        "kontex-ingest": "KONTEX_SPANS_QUEUE_URL",
        "kontex-proxy": "KONTEX_CAPTURES_QUEUE_URL",
        "kontex-api": "KONTEX_EVENTS_QUEUE_URL",
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


# --- storage -----------------------------------------------------------------------------


def test_bundle_bucket_is_private_encrypted_versioned_and_tls_only(dev: Synth) -> None:
    (key, bucket), *others = dev.of_type("AWS::S3::Bucket").items()
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
    assert len(functions) == 6  # api, ingest, proxy, 2 workers, migrate
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
    (bucket,) = prod.of_type("AWS::S3::Bucket").values()
    assert bucket["DeletionPolicy"] == "Retain"
    for secret in prod.of_type("AWS::SecretsManager::Secret").values():  # DB and API-key
        assert secret["DeletionPolicy"] == "Retain"
    assert not prod.of_type("Custom::S3AutoDeleteObjects")


# --- api ---------------------------------------------------------------------------------


def test_http_api_routes_go_to_their_functions(dev: Synth) -> None:
    integrations = dev.of_type("AWS::ApiGatewayV2::Integration")
    routes: dict[str, str] = {}
    for route in dev.of_type("AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
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
    for integration in integrations.values():
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


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
    outputs = dev.template.to_json()["Outputs"]
    assert "FunctionUrl" in json.dumps(outputs["AnthropicBaseUrl"]["Value"])


def test_large_queue_messages_travel_by_claim_check(dev: Synth) -> None:
    policies = json.dumps(dev.of_type("AWS::IAM::Policy"))
    for service in ("kontex-ingest", "kontex-proxy", "kontex-spansworker", "kontex-captureworker"):
        _, props = dev.function(service)
        assert "KONTEX_BUNDLE_BUCKET" in props["Environment"]["Variables"], service
    assert policies.count("/claims/*") >= 4
    (bucket,) = dev.of_type("AWS::S3::Bucket").values()
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("Prefix") == "claims/" and r.get("ExpirationInDays") for r in rules)


def test_stage_is_throttled_and_logged_and_urls_are_output(dev: Synth) -> None:
    (stage,) = dev.of_type("AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    assert "DestinationArn" in stage["Properties"]["AccessLogSettings"]
    outputs = dev.template.to_json()["Outputs"]
    assert {"ApiUrl", "OtlpTracesEndpoint", "AnthropicBaseUrl", "MigrateFunctionName"} <= set(
        outputs
    )
    assert outputs["OtlpTracesEndpoint"]["Value"]["Fn::Join"][1][-1].endswith("/ingest/v1/traces")


# --- functions ---------------------------------------------------------------------------


def test_every_function_is_arm64_python312_traced_json_logged_in_the_vpc(dev: Synth) -> None:
    (layer,) = dev.of_type("AWS::Lambda::LayerVersion")
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


def test_retention_is_off_by_default(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        assert not synth.of_type("AWS::Events::Rule")
        services = {
            fn["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            for fn in synth.kontex_functions().values()
        }
        assert "kontex-prune" not in services


def test_retention_schedules_the_prune_function_with_the_stages_days(retained: Synth) -> None:
    key, props = retained.function("kontex-prune")
    (rule,) = retained.of_type("AWS::Events::Rule").values()
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
    assert len(retained.kontex_functions()) == 7  # the six of every stack, and prune


def test_prune_function_may_list_and_delete_bundles_and_nothing_more(retained: Synth) -> None:
    _, props = retained.function("kontex-prune")
    variables = props["Environment"]["Variables"]
    (bucket,) = retained.of_type("AWS::S3::Bucket")
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
    assert s3_grants == {("s3:DeleteObject*", objects), ("s3:ListBucket", bucket_arn)}


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
    for metric in ("SpansAccepted", "SnapshotsWritten", "UpstreamLatency", "IntegrityErrors"):
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
        assert "@tracer.capture_lambda_handler" in text, handler
        if handler.parent.name != "migrate":
            assert "@metrics.log_metrics" in text, handler
