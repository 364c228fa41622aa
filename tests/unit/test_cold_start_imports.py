"""Issue 25, cold start: a function imports only what it uses. The ingest, proxy and worker
paths load no REST routers, no Powertools resolver or OpenAPI models, no search code, and no
X-Ray SDK unless an invocation is traced (kontex.observability). The REST function loads its
routers, their models, the OpenAPI document's code and the search code only with the first
request that needs them (kontex.api.rest; tests/api/test_lazy_routers.py: each still answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
{before}
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


# The store's repositories (kontex.adapters.sql) that GET /v1/sessions does not use: it reads
# the key (keys) and the page (sessions)
UNUSED_REPOSITORIES = (
    "archive",
    "checkpoints",
    "connections",
    "content",
    "outbox",
    "queries",
    "search",
    "snapshots",
    "spans",
    "tasks",
    "threads",
    "traces",
    "upgrade",
)

# What the REST function must not import before a request asks for it
API_LAZY = (
    "kontex.api.keys",
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
    # the session routes' archive, snapshot and view services, with the bundle code and
    # tiktoken behind them: a session listing needs none of them (issue 25, third round)
    "kontex.services.archive",
    "kontex.services.bundles",
    "kontex.services.snapshots",
    "kontex.services.views",
    "kontex.tokens",
    "tiktoken",
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
    # the ports' value types no first request uses, and the repositories a session listing
    # does not touch (with the snapshot sealing behind them): issue 25, fourth round
    "kontex.port_values",
    "kontex.api.checkpoint_shapes",
    *(f"kontex.adapters.sql.{name}" for name in UNUSED_REPOSITORIES),
    # the other routers' bodies and answers and the live feed's event (issue 25, fifth round)
    "kontex.api.resource_shapes",
    "kontex.domain.seal",
    # the session archive's routes and models: a session listing needs neither (issue 25,
    # sixth round)
    "kontex.api.session_archive",
    "kontex.domain.archive",
    # the snapshot listing's and the views' routes and answers, with a snapshot's content
    # models behind them (issue 25, sixth round)
    "kontex.api.session_views",
    "kontex.api.session_view_shapes",
    "kontex.domain.snapshot_content",
    # the other session routes, with their bodies and their task and trace answers: a session
    # listing is a router of its own (issue 25, seventh round)
    "kontex.api.sessions",
    "kontex.api.session_shapes",
    "kontex.api.session_listing",
    # an event, the proxy's upstream request and answer and a pipeline's lag: a read makes none
    # of them (the same round)
    "kontex.port_transport",
)


def loaded(
    path: str,
    then: str = "",
    heavy: tuple[str, ...] = HEAVY,
    env: dict[str, str] | None = None,
    before: str = "",
) -> list[str]:
    file = functions_dir() / path
    code = PROBE.format(
        folder=str(file.parent), path=str(file), then=then, heavy=heavy, before=before
    )
    env = {"POWERTOOLS_SERVICE_NAME": "t", "AWS_REGION": "eu-west-1", "PATH": "", **(env or {})}
    if "PYTHONPATH" in os.environ:  # the kontex under test (a worktree's, not the venv's)
        env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
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
    assert found == ["kontex.api.session_shapes", "kontex.api.sessions", "kontex.api.shapes"]


# A real first answer of the REST function, as bench/coldstart.py times it: GET /v1/sessions
# with a key, through lambda_handler, as in Lambda
FIRST_ANSWER = """
class Context:
    function_name = "kontex-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:kontex-api"
    aws_request_id = "t"
event = {{"version": "2.0", "routeKey": "$default", "rawPath": "/v1/sessions",
    "rawQueryString": "", "headers": {{"authorization": "Bearer {key}", "host": "localhost"}},
    "requestContext": {{"accountId": "0", "apiId": "t", "domainName": "localhost",
        "http": {{"method": "GET", "path": "/v1/sessions", "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1", "userAgent": "t"}},
        "requestId": "t", "routeKey": "$default", "stage": "$default",
        "time": "04/Dec/2026:00:00:00 +0000", "timeEpoch": 0}},
    "body": "", "isBase64Encoded": False}}
answer = module.lambda_handler(event, Context())
assert answer["statusCode"] == 200, answer
"""


def test_the_api_functions_first_answer_loads_only_the_session_listing(tmp_path: Path) -> None:
    """GET /v1/sessions, answered for real: the store is opened and the key checked, and of
    the list above only the session listing's router and the shapes of its answer are loaded:
    not the other session routes (kontex.api.sessions) nor their bodies and answers
    (kontex.api.session_shapes), which kontex.api.shapes does not create either."""
    env = {"KONTEX_DATA_DIR": str(tmp_path), "KONTEX_API_KEY_SECRET": "cold-start"}
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from kontex.bootstrap import container\n"
            "from kontex.services import keys\n"
            "container().migrate()\n"
            "print(keys.create_key(container().deps, 't')[1])",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    key = made.stdout.strip().splitlines()[-1]
    env["AWS_LAMBDA_FUNCTION_NAME"] = "kontex-api"
    # nor does it create the checkpoint routes' shapes (kontex.api.checkpoint_shapes), nor the
    # other routers' (kontex.api.resource_shapes)
    then = FIRST_ANSWER.format(key=key) + (
        "import kontex.api.shapes as shapes\n"
        "made = sorted(set(vars(shapes)) & {'PutCheckpoint', 'PutWrites', 'CheckpointOut',"
        " 'CheckpointPage', 'WriteIn', 'Removed', 'BundleIn', 'CreateSnapshot', 'Bundle',"
        " 'SnapshotWithBundle', 'ApiKeyOut', 'MessageRecordPage', 'LiveEvent', 'Fork',"
        " 'SnapshotOut', 'SnapshotPage', 'Timeline', 'Diff', 'Graph', 'SessionStats',"
        " 'CreateSession', 'PatchSession', 'LinkTrace', 'CreateTask', 'TaskOut', 'TaskNode',"
        " 'TaskTree', 'LinkedTrace'})\n"
        "assert not made, made\n"
        "assert sorted(module.app.included) == ['session_listing'], module.app.included\n"
    )
    found = loaded("api/handler.py", then=then, heavy=API_LAZY, env=env)
    assert found == ["kontex.api.session_listing", "kontex.api.shapes"]


def test_the_api_function_loads_the_archive_routes_with_a_request_to_them() -> None:
    """An export or import request includes the archive's router (with kontex.domain.archive)
    beside the session routes, a snapshot listing's or a view's the views' router; no other
    request under /v1/sessions includes either."""
    for path in ("/v1/sessions/s1/export", "/v1/sessions/import", "/v1/sessions/import/"):
        then = f"module.app.include(*kontex.api.rest.routers_of({path!r}))"
        found = loaded("api/handler.py", then="import kontex.api.rest\n" + then, heavy=API_LAZY)
        assert found == [
            "kontex.api.session_archive",
            "kontex.api.session_shapes",
            "kontex.api.sessions",
            "kontex.api.shapes",
            "kontex.domain.archive",
            "kontex.domain.snapshot_content",  # (the archive's snapshot rows: Usage)
        ], path
    for path in ("/v1/sessions/s1/stats", "/v1/sessions/s1/snapshots/timeline"):
        then = f"module.app.include(*kontex.api.rest.routers_of({path!r}))"
        found = loaded("api/handler.py", then="import kontex.api.rest\n" + then, heavy=API_LAZY)
        assert found == [
            "kontex.api.session_shapes",
            "kontex.api.session_view_shapes",
            "kontex.api.session_views",
            "kontex.api.sessions",
            "kontex.api.shapes",
            "kontex.domain.snapshot_content",
        ], path
    from kontex.api.rest import routers_of

    for path in ("/v1/sessions/import-x", "/v1/sessions/s1/exports"):
        assert routers_of(path) == ("sessions",), path
    for path in ("/v1/sessions/s1/tasks/export", "/v1/sessions/s1/tasks", "/v1/sessions/s1"):
        assert routers_of(path) == ("sessions",), path
    for path in ("/v1/sessions/s1/snapshots", "/v1/sessions/s1/diff", "/v1/sessions/s1/graph"):
        assert routers_of(path) == ("sessions", "session_views"), path


def test_a_session_listing_needs_only_its_own_router() -> None:
    """``GET /v1/sessions`` includes the listing's router alone; any other method on that path
    (or the path with a slash after it) the session routes too, so each answers as before."""
    from kontex.api.rest import routers_of

    assert routers_of("/v1/sessions", "GET") == ("session_listing",)
    assert routers_of("/v1/sessions", "get") == ("session_listing",)
    for method in ("POST", "PUT", "DELETE", ""):
        assert routers_of("/v1/sessions", method) == ("sessions", "session_listing"), method
    assert routers_of("/v1/sessions/", "GET") == ("sessions", "session_listing")
    for path in ("/v1/sessions/s1", "/v1/sessions/s1/tasks"):
        assert routers_of(path, "GET") == ("sessions",), path
    then = "module.app.include(*kontex.api.rest.routers_of('/v1/sessions', 'GET'))"
    found = loaded("api/handler.py", then="import kontex.api.rest\n" + then, heavy=API_LAZY)
    assert found == ["kontex.api.session_listing", "kontex.api.shapes"]


def test_the_session_shapes_are_still_given_by_kontex_api_shapes() -> None:
    """The session routes' bodies and answers moved to kontex.api.session_shapes; every
    ``from kontex.api.shapes import ...`` of them still works, and gives the same object."""
    from kontex.api import session_shapes, shapes

    for name in shapes.LATER_SESSIONS:
        assert getattr(shapes, name) is getattr(session_shapes, name), name
    assert shapes.TaskTree.model_fields["data"].annotation == list[shapes.TaskNode]


# Every function's first module, as its runtime loads it (the proxy's process is server.py, which
# imports handler.py; `kontex dev` mounts handler.py's app): each loads without the collector
FUNCTION_MODULES = sorted(
    str(path.relative_to(functions_dir())) for path in functions_dir().glob("*/*.py")
)


def test_every_function_module_is_checked_for_its_collector() -> None:
    assert "api/handler.py" in FUNCTION_MODULES and "proxy/server.py" in FUNCTION_MODULES
    assert "workers/feed.py" in FUNCTION_MODULES and len(FUNCTION_MODULES) >= 12


@pytest.mark.parametrize("path", FUNCTION_MODULES)
def test_each_function_loads_without_the_garbage_collector(path: str) -> None:
    """Its import runs with the cyclic collector off (kontex.startup.loading), freezes what it
    made out of later collections and turns the collector on again (off again if it was off
    before)."""
    # What runs before ``loading()`` can start, with the collector on, is not the block's: the
    # handler module's own source compiled (its bytecode cached here), and ``kontex.startup``
    # imported (the handler's first line). In a clean checkout, with no __pycache__ yet, the
    # compiler's allocations left the youngest generation's count near its threshold, and the
    # handler's first lines started a collection. So those first, then the count from zero.
    handler = str(functions_dir() / path)
    before = (
        "import gc\n"
        f"importlib.util.spec_from_file_location('handler_under_test', {handler!r})"
        ".loader.get_code('handler_under_test')\n"
        "import kontex.startup\n"
        "gc.collect()\n"
        "seen = []\n"
        "gc.callbacks.append(lambda phase, info: seen.append(phase))\n"
        "assert gc.get_freeze_count() == 0\n"
    )
    then = (
        "assert gc.isenabled()\n"
        "assert seen == [], seen\n"  # no collection while it loaded
        "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
    )
    xray = ("aws_xray_sdk",)
    assert loaded(path, before=before, then=then, heavy=xray) == []
    off = "import gc\ngc.disable()\n"
    then = "assert not gc.isenabled()\n"
    assert loaded(path, before=off, then=then, heavy=xray) == []


def test_a_failed_load_freezes_nothing_and_leaves_the_collector_as_found() -> None:
    """The block raises: the collector is on again (it was), nothing frozen; nested, the inner
    block leaves it off and the outer one turns it on."""
    code = (
        "import gc\n"
        "from kontex.startup import loading\n"
        "try:\n"
        "    with loading():\n"
        "        assert not gc.isenabled()\n"
        "        raise ValueError('a module that does not import')\n"
        "except ValueError:\n"
        "    pass\n"
        "assert gc.isenabled() and gc.get_freeze_count() == 0\n"
        "with loading():\n"
        "    with loading():\n"
        "        made = [[] for _ in range(100)]\n"
        "    assert not gc.isenabled()\n"
        "    frozen = gc.get_freeze_count()\n"
        "    assert frozen > 100, frozen\n"
        "assert gc.isenabled()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_kontex_ports_still_gives_the_transport_values() -> None:
    """An event and the proxy's upstream request and answer moved to kontex.port_transport (a
    pipeline's lag, there until the ninth round, to kontex.port_values);
    ``from kontex.ports import ...`` still gives each, the same object, and the outbox's events
    are of it."""
    import kontex.port_transport
    import kontex.ports

    for name in kontex.ports.LATER_TRANSPORT:
        assert getattr(kontex.ports, name) is getattr(kontex.port_transport, name), name
    from kontex.ports import UpstreamRequest

    sent = UpstreamRequest("https://u/", "GET", "/v1/x", "a=1", {}, b"", 1.0)
    assert sent.url == "https://u/v1/x?a=1"
    from datetime import UTC, datetime

    from kontex.ports import Event
    from kontex.services import outbox

    made = outbox.event("session.updated", "acc", "ses", {}, datetime.now(UTC))
    assert type(made) is Event and made.id.startswith("evt")


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


BATCH = ("aws_lambda_powertools.utilities.batch", "kontex.adapters.sqs_batch")


@pytest.mark.parametrize("path", ["workers/capture.py", "workers/spans.py", "workers/embed.py"])
def test_the_capture_span_and_embed_workers_load_the_batch_processor_only_when_asked(
    path: str,
) -> None:
    """Their batch goes to the use case at once; Powertools' batch processor only reports (or
    retries record by record) a batch of which something failed, so it loads then (or when
    `kontex dev` asks for ``processor``), and it is one processor for the module."""
    assert loaded(path, heavy=BATCH) == []
    then = (
        "made = module.processor\n"
        "assert type(made).__name__ == 'RetryingBatchProcessor', made\n"
        "assert module.processor is made and module._processor() is made\n"
    )
    assert "kontex.adapters.sqs_batch" in loaded(path, then=then, heavy=BATCH)


def test_the_span_worker_loads_no_otlp_decoding() -> None:
    """It stores spans ingest already decoded (JSON on the queue): no protobuf."""
    otlp = ("kontex.services.ingest", "kontex.otlp.decode", "google.protobuf", "opentelemetry")
    assert loaded("workers/spans.py", heavy=otlp) == []


def test_the_proxy_loads_no_snapshot_code() -> None:
    """It makes and queues capture jobs (kontex.domain.captures); turning them into snapshots,
    with the bundle code and tiktoken, is the capture worker's."""
    snapshot_code = (
        "kontex.services.capture",
        "kontex.services.snapshots",
        "kontex.services.bundles",
        "kontex.tokens",
        "tiktoken",
    )
    assert loaded("proxy/server.py", then=PROXY_FIRST_REQUEST, heavy=snapshot_code) == []


def test_the_proxy_makes_none_of_the_ports_later_value_types() -> None:
    """The checkpoint, content and search rows (kontex.port_values) are made with their first
    use: after the proxy's first request kontex.ports holds none of them yet."""
    then = (
        PROXY_FIRST_REQUEST
        + "\nimport kontex.ports\n"
        + "made = sorted(set(vars(kontex.ports)) & {'ItemRow', 'CheckpointRow', 'Revision',"
        + " 'SearchChange', 'Point', 'IndexQuery', 'LiveConnection', 'ObjectFilter'})\n"
        + "assert not made, made"
    )
    later = ("kontex.port_values", "kontex.adapters.sql")
    assert loaded("proxy/server.py", then=then, heavy=later) == []


def test_the_ports_still_give_every_value_type() -> None:
    """``from kontex.ports import X`` works for the types kept in kontex.port_values."""
    import kontex.port_values
    import kontex.ports

    for name in sorted(kontex.ports.LATER):
        assert getattr(kontex.ports, name) is getattr(kontex.port_values, name)
    from kontex.ports import Revision

    assert Revision is kontex.port_values.Revision
    with pytest.raises(AttributeError):
        kontex.ports.NoSuchThing  # noqa: B018


def test_a_unit_of_work_makes_each_repository_once_when_first_used(tmp_path: Path) -> None:
    """The repositories hang off the unit as before (the UnitOfWork port), made on first use:
    the same object for the whole unit, a fresh one per unit."""
    from kontex.adapters.sql.keys import SqlKeys
    from kontex.adapters.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path / "kontex.db")
    store.migrate()
    with store.unit(write=False) as uow:
        assert "keys" not in vars(uow)
        first = uow.keys
        assert isinstance(first, SqlKeys) and uow.keys is first
        assert "sessions" not in vars(uow)
    with store.unit(write=False) as other:
        assert other.keys is not first


def test_the_proxy_makes_no_snapshot_content_model() -> None:
    """A snapshot's content models (kontex.domain.snapshot_content) are created with their
    first use: after the proxy's first request kontex.domain.models holds none of them."""
    then = (
        PROXY_FIRST_REQUEST
        + "\nimport kontex.domain.models as models\n"
        + "made = sorted(set(vars(models)) & {'Snapshot', 'ContextBundle', 'Message', 'ToolCall',"
        + " 'ContextFile', 'LogEvent', 'Usage', 'ThreadState'})\n"
        + "assert not made, made"
    )
    later = ("kontex.domain.snapshot_content",)
    assert loaded("proxy/server.py", then=then, heavy=later) == []


def test_the_domain_models_still_give_the_snapshot_content_models() -> None:
    import kontex.domain.models as models
    import kontex.domain.snapshot_content as content

    for name in sorted(models.LATER):
        assert getattr(models, name) is getattr(content, name)
    from kontex.domain.models import ContextBundle, Snapshot

    assert Snapshot is content.Snapshot and ContextBundle is content.ContextBundle
    assert Snapshot.__mro__[1] is models._Record
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018


def test_the_api_shapes_still_give_the_checkpoint_shapes() -> None:
    import kontex.api.checkpoint_shapes as checkpoint_shapes
    import kontex.api.shapes as shapes

    for name in sorted(shapes.LATER):
        assert getattr(shapes, name) is getattr(checkpoint_shapes, name)
    from kontex.api.shapes import CheckpointOut

    assert CheckpointOut is checkpoint_shapes.CheckpointOut
    assert issubclass(CheckpointOut, shapes.Out)
    with pytest.raises(AttributeError):
        shapes.NoSuchShape  # noqa: B018


# uvicorn's command line (uvicorn.main: click, the reload and multiprocess supervisors), which
# the proxy's server, started from code, never uses
UVICORN_CLI = ("uvicorn.main", "uvicorn.supervisors", "click", "multiprocessing")


def test_the_proxys_server_loads_no_uvicorn_command_line() -> None:
    """functions/proxy/server.py takes uvicorn's Config and Server without the package's
    ``__init__`` (which imports uvicorn.main); they are uvicorn's own, and the rest of the
    package still answers (its real ``__init__`` runs when asked for anything else)."""
    then = (
        PROXY_FIRST_REQUEST + "\nimport uvicorn, uvicorn.config, uvicorn.server\n"
        "assert module.Config is uvicorn.Config is uvicorn.config.Config\n"
        "assert module.Server is uvicorn.Server is uvicorn.server.Server\n"
        "assert uvicorn.__version__\n"
        "made = module.config()\n"
        "made.load()\n"  # the protocols and the lifespan (`from uvicorn import Config`)
        "assert type(made.lifespan_class(made)).__name__ == 'LifespanOn'\n"
    )
    assert loaded("proxy/server.py", then=then, heavy=UVICORN_CLI) == []
    then += "assert callable(uvicorn.run) and uvicorn.main.name == 'main'\n"
    # (the probe names a package's modules by the package)
    found = loaded("proxy/server.py", then=then, heavy=UVICORN_CLI)
    assert found == ["click", "multiprocessing", "uvicorn"]


def test_the_proxys_server_imports_a_uvicorn_of_another_layout_whole() -> None:
    """A uvicorn whose ``uvicorn.server`` gives no ``Server`` is imported as ``import uvicorn``
    does (never a server that does not start): here a stand-in hides it, and is dropped."""
    before = "import types\nsys.modules['uvicorn.server'] = types.ModuleType('uvicorn.server')\n"
    then = (
        "import uvicorn, uvicorn.server\n"
        "assert module.Server is uvicorn.Server is uvicorn.server.Server\n"
        "assert 'uvicorn.main' in sys.modules\n"
    )
    found = loaded("proxy/server.py", then=then, heavy=UVICORN_CLI, before=before)
    assert found == ["click", "multiprocessing", "uvicorn"]


def test_the_api_shapes_still_give_the_other_routers_shapes() -> None:
    """The keys, tasks, snapshots, threads and queries routes' shapes and the live feed's event
    (kontex.api.resource_shapes) are still names of kontex.api.shapes, the same objects."""
    import kontex.api.resource_shapes as resource_shapes
    import kontex.api.shapes as shapes

    for name in sorted(shapes.LATER_RESOURCES):
        assert getattr(shapes, name) is getattr(resource_shapes, name)
    from kontex.api.shapes import Bundle, CreateSnapshot, LiveEvent

    assert Bundle is resource_shapes.Bundle and LiveEvent is resource_shapes.LiveEvent
    assert CreateSnapshot.model_fields["bundle"].annotation is shapes.BundleIn
    assert not shapes.LATER & shapes.LATER_RESOURCES


def test_the_api_shapes_still_give_the_session_views_shapes() -> None:
    """The snapshot listing's and the views' answers (kontex.api.session_view_shapes) are still
    names of kontex.api.shapes, the same objects."""
    import kontex.api.session_view_shapes as view_shapes
    import kontex.api.shapes as shapes

    for name in sorted(shapes.LATER_SESSION_VIEWS):
        assert getattr(shapes, name) is getattr(view_shapes, name)
    from kontex.api.shapes import Diff, SnapshotOut, Timeline

    assert Diff is view_shapes.Diff and issubclass(SnapshotOut, shapes.Out)
    assert Timeline.model_fields["data"].annotation == list[view_shapes.TimelineEntry]
    assert not shapes.LATER_SESSION_VIEWS & (shapes.LATER | shapes.LATER_RESOURCES)


@pytest.mark.parametrize("path", ["workers/feed.py", "live/handler.py", "sweeper/handler.py"])
def test_the_live_feed_functions_load_no_snapshot_content(path: str) -> None:
    """kontex.services.live imports kontex.services.threads, which names a thread's state
    (kontex.domain.snapshot_content) for its annotations only: the feed worker, the WebSocket
    function and the sweeper create none of a snapshot's content models while they load
    (issue 25, ninth round)."""
    then = (
        "import kontex.domain.models as models\n"
        "assert not set(vars(models)) & {'ThreadState', 'Snapshot', 'Message'}"
    )
    assert loaded(path, then=then, heavy=("kontex.domain.snapshot_content",)) == []


def test_kontex_ports_still_gives_a_page_and_a_session_listing() -> None:
    """Both moved to kontex.port_pages, and a pipeline's lag to kontex.port_values (issue 25,
    ninth round): ``from kontex.ports import ...`` still gives each, the same object, and a
    session listing's page is of it."""
    import kontex.port_pages
    import kontex.port_values
    import kontex.ports
    from kontex.ports import Page, PipelineLag, SessionListing
    from kontex.services import sessions

    assert {"Page", "SessionListing"} == kontex.ports.LATER_PAGES
    assert Page is kontex.port_pages.Page and SessionListing is kontex.port_pages.SessionListing
    assert PipelineLag is kontex.port_values.PipelineLag and "PipelineLag" in kontex.ports.LATER
    assert type(sessions.page_of([], 10)) is Page


@pytest.mark.parametrize("path", [p for p in FUNCTION_MODULES if p != "api/handler.py"])
def test_only_the_api_makes_a_page_while_it_loads(path: str) -> None:
    """No function but the api (whose first answer is a page of sessions) creates the page and
    session listing classes (kontex.port_pages) while it loads; the proxy not with its first
    request's modules either, nor a pipeline's lag; the feed worker, which reads events and
    makes none, not kontex.port_transport (issue 25, ninth round)."""
    then = (PROXY_FIRST_REQUEST if path == "proxy/server.py" else "") + (
        "\nimport kontex.ports, sys\n"
        "made = {'Page', 'SessionListing', 'PipelineLag'} & (set(vars(kontex.ports))"
        " | set(vars(sys.modules.get('kontex.port_transport', kontex.ports))))\n"
        "assert not made, made\n"
    )
    later = ("kontex.port_pages",)
    if path == "workers/feed.py":
        later += ("kontex.port_transport",)
    assert loaded(path, then=then, heavy=later) == []


def test_the_api_makes_its_first_page_of_kontex_port_pages() -> None:
    then = "from kontex.services import sessions\nsessions.page_of([], 1)"
    assert loaded("api/handler.py", then=then, heavy=("kontex.port_pages",)) == [
        "kontex.port_pages"
    ]
