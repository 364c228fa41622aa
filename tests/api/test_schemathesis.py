"""Property-based run of the REST API against its own OpenAPI document (schemathesis, seeded,
bounded): no 5xx, no status code the document does not list, every error in the error shape.
In process: a WSGI wrapper turns each request into the API Gateway event of the real handler."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from kontex.http.apigw import LocalContext, http_api_event, response_parts
from kontex.local.server import load_handler

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


def test_the_api_keeps_its_document(alice: Any) -> None:
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", wsgi_app).include(
        path_regex="^/v1/"
    )
    # both key headers, so generated security values never replace the valid key
    headers = {"Authorization": f"Bearer {alice.key}", "X-Kontex-Api-Key": alice.key}
    SEEN.clear()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

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
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {error}"[:2000])
    print(f"{operations} operations, responses by status: {dict(sorted(SEEN.items()))}")
    assert operations >= 30
    assert sum(SEEN.values()) >= operations * 10  # the cases did run
    assert not failures, "\n\n".join(failures)


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
