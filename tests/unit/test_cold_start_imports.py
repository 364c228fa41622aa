"""Issue 25, cold start: a function imports only what it uses. The ingest, proxy and worker
paths load no REST routers, no Powertools resolver or OpenAPI models, no search code, and no
X-Ray SDK unless an invocation is traced (kontex.observability). The REST function loads its
routers, their models, the OpenAPI document's code and the search code only with the first
request that needs them (kontex.api.rest; tests/api/test_lazy_routers.py: each still answers)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kontex import observability
from kontex.functions import functions_dir

HEAVY = (
    "aws_xray_sdk",
    "kontex.api.rest",
    "kontex.api.errors",
    "aws_lambda_powertools.event_handler",
    "kontex.services.search",
    "qdrant_client",
    "onnxruntime",
    "voyageai",
    "mcp",
)
PROBE = """
import importlib.util, json, sys
sys.path.insert(0, {folder!r})
spec = importlib.util.spec_from_file_location("handler_under_test", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
{then}
found = {{m for m in sys.modules if m.startswith({heavy!r})}}
print(json.dumps(sorted({{m.split(".")[0] if "." in m and m.split(".")[0] != "kontex"
    and not m.startswith("aws_lambda") else m for m in found}})))
"""
# the proxy's first request also needs these: still none of the heavy ones
PROXY_FIRST_REQUEST = (
    "import kontex.bootstrap, kontex.services.proxy, kontex.services.limits, "
    "kontex.adapters.http_upstream, kontex.domain.model_calls.openai"
)


# What the REST function must not import before a request asks for it
API_LAZY = (
    "kontex.api.keys",
    "kontex.api.sessions",
    "kontex.api.tasks",
    "kontex.api.snapshots",
    "kontex.api.queries",
    "kontex.api.threads",
    "kontex.api.checkpoints",
    "kontex.api.search",
    "kontex.api.shapes",
    "kontex.api.openapi",
    "aws_lambda_powertools.event_handler.openapi.models",
    "aws_lambda_powertools.event_handler.openapi.swagger_ui",
    "kontex.services.search",
    "kontex.services.spans",
    "kontex.services.ingest",
    "kontex.otlp.decode",
    "google.protobuf",
    "opentelemetry",
    "qdrant_client",
    "onnxruntime",
    "voyageai",
    "mcp",
    "aws_xray_sdk",
    "boto3",
    "botocore.session",  # (Powertools imports the bare ``botocore`` package for its user agent)
    "botocore.client",
)


def loaded(path: str, then: str = "", heavy: tuple[str, ...] = HEAVY) -> list[str]:
    file = functions_dir() / path
    code = PROBE.format(folder=str(file.parent), path=str(file), then=then, heavy=heavy)
    env = {"POWERTOOLS_SERVICE_NAME": "t", "AWS_REGION": "eu-west-1", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "path", ["ingest/handler.py", "workers/capture.py", "workers/spans.py", "workers/feed.py"]
)
def test_ingest_and_workers_load_nothing_they_do_not_use(path: str) -> None:
    assert loaded(path) == []


def test_the_api_function_loads_no_router_before_a_request() -> None:
    assert loaded("api/handler.py", heavy=API_LAZY) == []


def test_the_api_function_loads_one_router_with_its_first_request() -> None:
    """The router of the request's resource, and nothing else of the list above."""
    then = "module.app.include(kontex.api.rest.router_of('/v1/sessions/s1/tasks'))"
    found = loaded("api/handler.py", then="import kontex.api.rest\n" + then, heavy=API_LAZY)
    assert found == ["kontex.api.sessions", "kontex.api.shapes"]


def test_the_proxy_loads_nothing_it_does_not_use() -> None:
    assert loaded("proxy/server.py", then=PROXY_FIRST_REQUEST) == []


def test_the_tracer_is_made_only_for_a_sampled_invocation_in_lambda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("POWERTOOLS_TRACE_DISABLED", "AWS_LAMBDA_FUNCTION_NAME", "_X_AMZN_TRACE_ID"):
        monkeypatch.delenv(name, raising=False)
    assert not observability.tracing_on()  # not in Lambda
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "kontex-ingest")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
    assert not observability.tracing_on()  # not sampled
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    assert observability.tracing_on()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not observability.tracing_on()

    lazy = observability.LazyTracer()
    calls = []

    @lazy.capture_lambda_handler
    def handler(event: dict, context: object) -> dict:
        calls.append(event)
        return {"ok": True}

    assert handler({"n": 1}, None) == {"ok": True} and calls == [{"n": 1}]
    assert lazy._tracer is None  # untraced: no Tracer made, aws_xray_sdk never imported
