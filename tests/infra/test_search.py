"""The search construct in the synthesized stack: the embed queue and worker, the layer, the
settings and secrets, and nothing to run when no vector store is configured."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.infra.test_stack import Synth, _ref, _synth, assert_worker_retries_by_kind  # noqa: E402

QDRANT_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:qdrant-AbCdEf"
VOYAGE_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:voyage-AbCdEf"


@pytest.fixture(scope="module")
def layer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    layers = tmp_path_factory.mktemp("layers")
    (layers / "core" / "python" / "kontex").mkdir(parents=True)
    (layers / "core" / "python" / "kontex" / "__init__.py").write_text("")
    for name in ("search", "voyage", "minilm"):
        (layers / name / "python").mkdir(parents=True)
    return layers / "core"


@pytest.fixture(scope="module")
def with_qdrant(layer_dir: Path) -> Synth:
    return _synth(
        "dev",
        layer_dir,
        qdrant_url="https://qdrant.example.com:6333",
        qdrant_api_key_secret_arn=QDRANT_SECRET,
        voyage_api_key_secret_arn=VOYAGE_SECRET,
    )


def _layers(synth: Synth) -> dict[str, str]:
    """Kontex's own layers (not the dashboard deployment's AWS CLI layer)."""
    return {
        k: r["Properties"]["Description"]
        for k, r in synth.of_type("AWS::Lambda::LayerVersion").items()
        if not k.startswith("DashboardDeploy")
    }


def test_the_embed_worker_consumes_its_queue_with_partial_failures(with_qdrant: Synth) -> None:
    _, worker = with_qdrant.function("kontex-embedworker")
    assert worker["Handler"] == "embed.lambda_handler"
    sources = [
        r["Properties"]
        for r in with_qdrant.of_type("AWS::Lambda::EventSourceMapping").values()
        if _ref(r["Properties"]["FunctionName"]) == with_qdrant.function("kontex-embedworker")[0]
    ]
    assert len(sources) == 1
    assert sources[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = with_qdrant.resources[_ref(sources[0]["EventSourceArn"])]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert_worker_retries_by_kind(with_qdrant, sources[0])
    # the queue is an event consumer's: subscribed to the events topic, raw delivery, SNS's
    # undeliverable messages to its DLQ
    (topic,) = with_qdrant.of_type("AWS::SNS::Topic")
    (subscription,) = [
        s["Properties"]
        for s in with_qdrant.of_type("AWS::SNS::Subscription").values()
        if _ref(s["Properties"]["Endpoint"]) == _ref(sources[0]["EventSourceArn"])
    ]
    assert subscription["TopicArn"] == {"Ref": topic} and subscription["RawMessageDelivery"]
    assert subscription["RedrivePolicy"] == {
        "deadLetterTargetArn": queue["RedrivePolicy"]["deadLetterTargetArn"]
    }
    # it reads claim-checked events and publishes snapshot.embedded
    assert worker["Environment"]["Variables"]["KONTEX_EVENTS_TOPIC_ARN"] == {"Ref": topic}


def test_the_worker_and_the_api_carry_the_search_layer_and_settings(with_qdrant: Synth) -> None:
    layers = _layers(with_qdrant)
    search_layer = next(k for k, d in layers.items() if d.endswith("qdrant-client"))
    voyage_layer = next(k for k, d in layers.items() if d.endswith("voyageai"))
    assert not any("onnxruntime" in d for d in layers.values())  # Voyage embeds here
    for service in ("kontex-embedworker", "kontex-api"):
        _, props = with_qdrant.function(service)
        assert {"Ref": search_layer} in props["Layers"], service
        assert {"Ref": voyage_layer} in props["Layers"], service
        variables = props["Environment"]["Variables"]
        assert variables["QDRANT_URL"] == "https://qdrant.example.com:6333"
        assert variables["KONTEX_QDRANT_API_KEY_SECRET_ARN"] == QDRANT_SECRET
        assert variables["KONTEX_VOYAGE_API_KEY_SECRET_ARN"] == VOYAGE_SECRET
        assert variables["KONTEX_VOYAGE_MODEL"] == "voyage-code-3"
    # the other functions stay on the core layer alone
    _, ingest = with_qdrant.function("kontex-ingest")
    assert {"Ref": search_layer} not in ingest["Layers"]
    # the migrate function may queue a reindex
    _, migrate = with_qdrant.function("kontex-migrate")
    assert "KONTEX_EMBED_QUEUE_URL" in migrate["Environment"]["Variables"]


def test_the_secrets_are_readable_by_the_functions_that_search(with_qdrant: Synth) -> None:
    granted: set[tuple[str, str]] = set()
    for policy in with_qdrant.of_type("AWS::IAM::Policy").values():
        roles = [_ref(r) for r in policy["Properties"]["Roles"]]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                if resource in (QDRANT_SECRET, VOYAGE_SECRET):
                    granted |= {(role, resource) for role in roles}
    roles = {_ref(with_qdrant.function(s)[1]["Role"]) for s in ("kontex-embedworker", "kontex-api")}
    assert granted == {(r, s) for r in roles for s in (QDRANT_SECRET, VOYAGE_SECRET)}


def test_without_a_vector_store_no_worker_runs(layer_dir: Path) -> None:
    plain = _synth("dev", layer_dir)
    services = {
        r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for r in plain.kontex_functions().values()
    }
    assert "kontex-embedworker" not in services
    _, api = plain.function("kontex-api")
    assert "QDRANT_URL" not in api["Environment"]["Variables"]
    assert len(api["Layers"]) == 1
    assert not _layers(plain).keys() - {_ref(api["Layers"][0])}  # no search layer uploaded


def test_without_a_voyage_key_the_offline_model_embeds(layer_dir: Path) -> None:
    offline = _synth("dev", layer_dir, qdrant_url="https://qdrant.example.com:6333")
    layers = _layers(offline)
    minilm = next(k for k, d in layers.items() if "onnxruntime" in d)
    assert not any(d.endswith("voyageai") for d in layers.values())
    _, worker = offline.function("kontex-embedworker")
    assert {"Ref": minilm} in worker["Layers"]
    assert "KONTEX_VOYAGE_API_KEY_SECRET_ARN" not in worker["Environment"]["Variables"]


def _bench_coldstart() -> Any:
    """bench/coldstart.py, loaded as a module (it is a script)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "coldstart.py"
    spec = importlib.util.spec_from_file_location("kontex_bench_coldstart", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


# bench/coldstart.py's row of a function, by its service name (the others: their own name)
BENCH_ROWS = {"kontex-embedworker": "workers/embed"}


def test_the_cold_start_bench_gives_each_function_its_layers(layer_dir: Path) -> None:
    """``bench/coldstart.py --layers`` puts on a function's path the layers the stack gives it
    (with a vector store and the offline embedder): the core layer for all, the search and
    minilm layers for the api and the embed worker, and no other Python (the proxy's second
    layer is AWS's Web Adapter, a binary named by ARN)."""
    bench = _bench_coldstart()
    synth = _synth("dev", layer_dir, qdrant_url="https://qdrant.example.com:6333")
    names = {}
    for key, description in _layers(synth).items():
        if description.startswith("kontex package"):
            names[key] = "core"
        elif description.endswith("qdrant-client"):
            names[key] = "search"
        elif "onnxruntime" in description:
            names[key] = "minilm"
    seen = set()
    for resource in synth.kontex_functions().values():
        props = resource["Properties"]
        service = props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        row = BENCH_ROWS.get(service, service.removeprefix("kontex-"))
        ours = [names[layer["Ref"]] for layer in props["Layers"] if "Ref" in layer]
        others = [layer for layer in props["Layers"] if "Ref" not in layer]
        # (as a set: a layer holds nothing a layer below it has, layers/build.py, so their
        # order changes nothing on the path)
        assert sorted(ours) == sorted(bench.layers_of(row, "minilm")), service
        assert len(others) == (1 if row == "proxy" else 0), service
        seen.add(row)
    assert {"api", "proxy", "ingest", "workers/embed"} <= seen
