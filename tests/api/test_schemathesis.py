"""Property-based run of the REST API against its own OpenAPI document (schemathesis, seeded,
bounded): no 5xx, no status code the document does not list, every error in the error shape.
In process: a WSGI wrapper turns each request into the API Gateway event of the real handler.

One run serves both databases. It used to run once per database, and being derandomized it
sent the same cases twice (45-80 s each). Now the cases of each operation alternate between
SQLite and PostgreSQL: every operation still runs on both databases with the same checks, the
cases per operation are as many as before (25) and as varied, and no case is sent twice (an
operation with a single possible case is replayed on the other database)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kontex import bootstrap
from kontex.adapters.sqlite_store import SqliteStore
from kontex.http.apigw import LocalContext, http_api_event, response_parts
from kontex.local.server import load_handler
from kontex.services import keys
from tests.api.conftest import new_container
from tests.conftest import PG_POOLED, Clock, _postgres_schema_url

_handler = load_handler("api")
EXAMPLES = 25
SEEN: dict[int, int] = {}  # status -> responses, for the report below


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = [
        (k[5:].replace("_", "-").lower(), v) for k, v in environ.items() if k.startswith("HTTP_")
    ]
    if environ.get("CONTENT_TYPE"):
        headers.append(("content-type", environ["CONTENT_TYPE"]))
    path = environ.get("RAW_URI") or (
        environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    )
    query = environ.get("QUERY_STRING", "")
    target = path + (f"?{query}" if query else "")
    event = http_api_event(environ["REQUEST_METHOD"], target, headers, body)
    status, reply_headers, reply = response_parts(
        _handler(event, LocalContext(function_name="kontex-api"))
    )
    SEEN[status] = SEEN.get(status, 0) + 1
    start_response(f"{status} X", [(k, v) for k, v in reply_headers])
    return [reply]


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "message", "details"}, body
        assert isinstance(body["error"], str) and isinstance(body["message"], str)
    return None


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_shape,
]


@pytest.fixture
def backends(tmp_path: Path, clock: Clock) -> Iterator[dict[str, tuple[Any, str]]]:
    """Both databases behind the handler, each with alice's key: name -> (container, key).
    Without a PostgreSQL server (and none required: CI requires it) SQLite alone."""
    sqlite = SqliteStore(tmp_path / "kontex.db")
    sqlite.migrate()
    made = {"sqlite": new_container(sqlite, tmp_path / "sqlite", clock)}
    schemas = _postgres_schema_url(optional=True)
    url = next(schemas, None)
    postgres = None
    if url:
        from kontex.adapters.postgres_store import PostgresStore

        postgres = PostgresStore(url, max_size=4, pooled=PG_POOLED)
        postgres.migrate()
        made["postgres"] = new_container(postgres, tmp_path / "postgres", clock)
    try:
        yield {name: (c, keys.create_key(c.deps, "alice")[1]) for name, c in made.items()}
    finally:
        bootstrap.configure(None)
        if postgres is not None:
            postgres.close()
        schemas.close()  # drops the schema
        sqlite.close()


def check_operation(operation: Any, backends: dict[str, tuple[Any, str]]) -> tuple[str, list[str]]:
    """Run the operation's cases, alternating between the databases; returns the failure ("" if
    none) and the database of each case, in order."""
    names = list(backends)
    ran: list[str] = []
    only: list[str] = []  # set: replay on that database alone

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # seeded: the same cases every run
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        name = only[0] if only else names[len(ran) % len(names)]
        ran.append(name)
        container, key = backends[name]
        bootstrap.configure(container)
        # both key headers, so generated security values never replace the valid key
        headers = {"Authorization": f"Bearer {key}", "X-Kontex-Api-Key": key}
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
        for name in names:
            if name not in ran:  # fewer distinct cases than databases
                only[:] = [name]
                run()
    except Exception as error:
        return f"on {ran[-1] if ran else '?'}: {error}", ran
    return "", ran


@pytest.mark.postgres
def test_the_api_keeps_its_document(backends: dict[str, tuple[Any, str]]) -> None:
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", wsgi_app).include(
        path_regex="^/v1/"
    )
    SEEN.clear()
    failures: list[str] = []  # every operation's failure, reported together
    uncovered: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        label = f"{operation.method.upper()} {operation.path}"
        failure, ran = check_operation(operation, backends)
        if failure:
            failures.append(f"{label} {failure}"[:2000])
        uncovered += [f"{label} on {name}" for name in backends if name not in ran]
    print(f"{operations} operations, responses by status: {dict(sorted(SEEN.items()))}")
    assert operations >= 30
    assert sum(SEEN.values()) >= operations * 10  # the cases did run
    assert not failures, "\n\n".join(failures)
    assert not uncovered  # every operation ran on every database


def test_document_lists_real_codes_errors_and_constraints(alice: Any) -> None:
    document = alice.get("/v1/openapi.json").body
    create = document["paths"]["/v1/sessions"]["post"]
    assert "201" in create["responses"] and "422" not in create["responses"]
    assert create["summary"] == "Create session"
    for code in ("400", "401", "404", "409", "413", "429", "503"):
        assert create["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert "Retry-After" in create["responses"]["503"]["headers"]
    assert "204" in document["paths"]["/v1/threads/{thread_id}/state"]["delete"]["responses"]
    [thread] = document["paths"]["/v1/threads/{thread_id}/state"]["get"]["parameters"]
    assert thread["schema"]["pattern"].startswith("^thrd_")
    name = document["components"]["schemas"]["CreateSession"]["properties"]["name"]
    assert name["maxLength"] == 200 and name["minLength"] == 1
    assert {"/ingest/v1/traces", "/proxy/v1/messages"} <= set(document["paths"])
    assert all(op.get("summary") for ops in document["paths"].values() for op in ops.values())
