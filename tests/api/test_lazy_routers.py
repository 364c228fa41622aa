"""The REST function includes each resource's router on the first request under its prefix
(kontex.api.rest, cold start): every resource still answers, a method a not-yet-loaded resource
does not take is still a 405, and the OpenAPI document does not depend on which resource was
asked for first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kontex.api import rest
from kontex.http.apigw import LocalContext, http_api_event
from tests.api.conftest import Client

# One request per router; each answers without a row to find (or with a 404 of the resource,
# never the resolver's "no such route")
FIRST = {
    "keys": ("GET", "/v1/keys"),
    "session_listing": ("GET", "/v1/sessions"),
    "sessions": ("GET", "/v1/sessions/nope"),
    # (with the session routes, loaded above: kontex.api.rest.routers_of)
    "session_archive": ("GET", "/v1/sessions/nope/export"),
    "session_views": ("GET", "/v1/sessions/nope/stats"),
    "tasks": ("GET", "/v1/tasks/nope"),
    "snapshots": ("GET", "/v1/snapshots/nope"),
    "queries": ("GET", "/v1/usage"),
    "threads": ("GET", "/v1/threads/thrd_" + "a" * 27 + "/state"),
    "checkpoints": ("GET", "/v1/checkpoints?thread_id=t"),
    "search": ("GET", "/v1/search?q=x"),
}


def call(app: rest.RestResolver, method: str, path: str, key: str | None) -> tuple[int, Any]:
    headers = [("content-type", "application/json")]
    if key:
        headers.append(("authorization", f"Bearer {key}"))
    event = http_api_event(method, path, headers, b"")
    answer = rest.handle(app, event, LocalContext(function_name="kontex-api"))
    return answer["statusCode"], json.loads(answer["body"] or "null")


def test_a_fresh_resolver_has_no_router_and_no_swagger_page() -> None:
    app = rest.build_resolver()
    assert app.included == set()
    paths = {route.path for route in [*app._static_routes, *app._dynamic_routes]}
    assert paths == {"/health", "/v1/openapi.json"}


def test_each_resource_loads_its_router_on_its_first_request(alice: Client) -> None:
    app = rest.build_resolver()
    loaded: set[str] = set()
    for name, (method, path) in FIRST.items():
        status, body = call(app, method, path, alice.key)
        loaded.add(name)
        assert app.included == loaded, path  # its own router, no other
        assert body is None or body.get("message") != "no such route", (path, body)
        assert status in (200, 404), (path, status, body)


def test_a_wrong_method_on_a_resource_not_yet_loaded_is_a_405(alice: Client) -> None:
    app = rest.build_resolver()
    status, body = call(app, "PUT", "/v1/sessions", alice.key)
    assert status == 405 and body["error"] == "method_not_allowed"
    assert app.included == {"sessions", "session_listing"}
    status, body = call(app, "GET", "/v1/nothing-here", alice.key)
    assert status == 404 and body["error"] == "not_found"


def test_a_session_listing_loads_its_router_alone(alice: Client) -> None:
    """``GET /v1/sessions`` includes only the listing's router; the other methods on that path
    then still answer as before (a create, a 405 with the methods the path takes)."""
    app = rest.build_resolver()
    status, body = call(app, "GET", "/v1/sessions", alice.key)
    assert status == 200 and body == {"data": [], "next_cursor": None}
    assert app.included == {"session_listing"}
    status, body = call(app, "PUT", "/v1/sessions", alice.key)
    assert status == 405 and body["error"] == "method_not_allowed"
    assert app.included == {"session_listing", "sessions"}
    app = rest.build_resolver()
    call(app, "GET", "/v1/sessions", alice.key)
    event = http_api_event(
        "POST", "/v1/sessions", [("authorization", f"Bearer {alice.key}")], b'{"name": "s"}'
    )
    answer = rest.handle(app, event, LocalContext(function_name="kontex-api"))
    assert answer["statusCode"] == 201 and json.loads(answer["body"])["name"] == "s"
    status, body = call(app, "GET", "/v1/sessions", alice.key)
    assert status == 200 and [s["name"] for s in body["data"]] == ["s"]


@pytest.mark.parametrize("order", [list(FIRST), list(reversed(FIRST))])
def test_the_document_does_not_depend_on_the_first_resource(
    alice: Client, order: list[str]
) -> None:
    eager = rest.build_resolver()
    eager.include_all()
    expected = rest.openapi_json(eager)
    app = rest.build_resolver()
    for name in order[:3]:
        call(app, *FIRST[name], alice.key)
    assert rest.openapi_json(app) == expected
    status, document = call(app, "GET", "/v1/openapi.json", None)
    assert status == 200 and document == json.loads(expected)


def test_the_archive_routes_keep_their_place_in_the_document(alice: Client) -> None:
    """kontex.api.session_archive's routes sit among the session routes, as when they were
    one router, whichever is loaded first; every session route is placed."""
    eager = rest.build_resolver()
    eager.include_all()
    expected = rest.openapi_json(eager)
    session_routes = [
        route.func.__name__
        for route in [*eager._static_routes, *eager._dynamic_routes]
        if rest.router_of(route.path) == "sessions"
    ]
    assert sorted(session_routes) == sorted(rest.SESSION_ROUTES)
    paths = list(json.loads(expected)["paths"])
    at = paths.index("/v1/sessions/{session_id}/export")
    assert paths[at - 1 : at + 2] == [
        "/v1/sessions/{session_id}",
        "/v1/sessions/{session_id}/export",
        "/v1/sessions/{session_id}/link-trace",
    ]
    app = rest.build_resolver()
    status, body = call(app, "GET", "/v1/sessions/nope/export", alice.key)
    assert status == 404 and app.included == {"sessions", "session_archive"}
    call(app, *FIRST["tasks"], alice.key)
    assert rest.openapi_json(app) == expected


def test_the_swagger_page_loads_with_its_first_request(anonymous: Client) -> None:
    app = rest.build_resolver()
    answer = rest.handle(
        app,
        http_api_event("GET", rest.DOCS_PATH, [], b""),
        LocalContext(function_name="kontex-api"),
    )
    assert answer["statusCode"] == 200 and "swagger" in answer["body"].lower()
    assert app.included == set(rest.ROUTERS)
