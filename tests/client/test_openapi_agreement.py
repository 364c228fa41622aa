"""The client and the server's OpenAPI document name the same routes: every path + method of
``/v1/openapi.json`` has a client method (on ``Kontex`` and on ``AsyncKontex``), and every
client method calls a route the document has."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from kontex_client import AsyncKontex, Kontex
from tests.e2e.stack import DevStack

pytestmark = pytest.mark.e2e


def client_routes(client: Any) -> set[tuple[str, str]]:
    """Every (METHOD, path) a client method is marked with, on the client and its resources."""
    found: set[tuple[str, str]] = set()
    for owner in [client, *vars(client).values()]:
        for _, method in inspect.getmembers(type(owner), inspect.isfunction):
            route = getattr(method, "__kontex_route__", None)
            if route:
                found.add(route)
    return found


def server_routes(stack: DevStack) -> set[tuple[str, str]]:
    status, document = stack.get("/v1/openapi.json")
    assert status == 200
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


@pytest.mark.parametrize("kind", [Kontex, AsyncKontex])
def test_every_documented_route_has_a_client_method(stack: DevStack, kind: type) -> None:
    missing = server_routes(stack) - client_routes(kind(stack.base, "k"))
    assert not missing, f"routes without a client method: {sorted(missing)}"


@pytest.mark.parametrize("kind", [Kontex, AsyncKontex])
def test_every_client_method_calls_a_documented_route(stack: DevStack, kind: type) -> None:
    unknown = client_routes(kind(stack.base, "k")) - server_routes(stack)
    assert not unknown, f"client methods for routes the server does not document: {unknown}"


def test_sync_and_async_clients_have_the_same_methods() -> None:
    sync, asyn = Kontex("http://x", "k"), AsyncKontex("http://x", "k")
    assert client_routes(sync) == client_routes(asyn)
    for name, resource in vars(sync).items():
        if name.startswith("_"):
            continue
        twin = getattr(asyn, name)
        public = {n for n in dir(resource) if not n.startswith("_")}
        assert public == {n for n in dir(twin) if not n.startswith("_")}, name
