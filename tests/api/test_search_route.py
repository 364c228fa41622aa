"""GET /v1/search through the real API handler: answers, tenancy, validation, 503."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kontex.adapters.offline_embedder import OfflineEmbedder
from kontex.adapters.qdrant_index import QdrantIndex
from kontex.domain.errors import Transient
from kontex.services import search
from tests.api.conftest import Client

EMBEDDER = OfflineEmbedder()  # loaded on first use, once for the module


@pytest.fixture
def searchable(container: Any) -> Any:
    container.embedder = EMBEDDER
    index = QdrantIndex("api", EMBEDDER.dimensions, path=":memory:")  # type: ignore[arg-type]
    container.index = index
    yield container
    index.close()


def _snapshot(client: Client, container: Any, label: str, text: str) -> dict[str, Any]:
    session = client.post("/v1/sessions", {"name": "s"}).body
    task = client.post(f"/v1/sessions/{session['id']}/tasks", {"name": "t"}).body
    snap = client.post(
        f"/v1/tasks/{task['id']}/snapshots",
        {"label": label, "bundle": {"messages": [{"role": "user", "content": text}]}},
    ).body
    account = _account(container, session["id"])
    search.embed_snapshot(container.deps, account, snap["id"])
    return snap  # type: ignore[no-any-return]


def _account(container: Any, session_id: str) -> str:
    """The session's account, as the worker reads it from the event."""
    with container.deps.store.unit(write=False) as uow:
        rows = uow.sessions.inactive(datetime(3000, 1, 1, tzinfo=UTC), None, 1000)
    return next(str(r["account_id"]) for r in rows if r["session_id"] == session_id)


def test_search_answers_the_callers_snapshots(searchable: Any, alice: Client, bob: Client) -> None:
    snap = _snapshot(alice, searchable, "migrate users", "MongoError E11000 duplicate key")
    _snapshot(bob, searchable, "bob's", "MongoError E11000 duplicate key in bob's run")

    reply = alice.get("/v1/search?q=E11000&limit=5")
    assert reply.status == 200, reply.body
    results = reply.body["results"]
    assert [r["snapshot_id"] for r in results] == [snap["id"]]
    hit = results[0]
    assert set(hit) == {
        "snapshot_id", "session_id", "task_id", "label", "score", "created_at", "snippet"
    }  # fmt: skip
    assert hit["label"] == "migrate users"
    assert hit["session_id"] == snap["session_id"] and hit["task_id"] == snap["task_id"]
    assert hit["created_at"].endswith("Z") or hit["created_at"].endswith("+00:00")
    assert set(hit["snippet"]) == {"text", "role", "position", "source"}

    in_session = alice.get(f"/v1/search?q=E11000&session_id={snap['session_id']}")
    assert [r["snapshot_id"] for r in in_session.body["results"]] == [snap["id"]]
    # bob asking for alice's session reads like an empty one
    assert bob.get(f"/v1/search?q=E11000&session_id={snap['session_id']}").body == {"results": []}
    labels = alice.get("/v1/search?q=migrate&source=label").body["results"]
    assert labels[0]["snippet"]["source"] == "label"


def test_an_empty_index_answers_an_empty_list(searchable: Any, alice: Client) -> None:
    reply = alice.get("/v1/search?q=anything")
    assert (reply.status, reply.body) == (200, {"results": []})


@pytest.mark.parametrize(
    "query",
    ["", "?q=", "?q=x&limit=0", "?q=x&limit=51", "?q=x&limit=ten", "?q=x&source=everything"],
)
def test_bad_queries_are_400(searchable: Any, alice: Client, query: str) -> None:
    reply = alice.get(f"/v1/search{query}")
    assert reply.status == 400, reply.body
    assert reply.body["error"] == "validation_error"


def test_no_key_is_401(searchable: Any, anonymous: Client) -> None:
    assert anonymous.get("/v1/search?q=x").status == 401


def test_an_unavailable_vector_store_is_503_with_retry_after(
    searchable: Any, alice: Client
) -> None:
    class Down:
        def query(self, *args: Any, **kwargs: Any) -> Any:
            raise Transient("the vector store is unavailable: ConnectError")

        upsert = existing = delete = count = query

    searchable.index = Down()
    reply = alice.get("/v1/search?q=anything")
    assert reply.status == 503
    assert reply.body["error"] == "unavailable"
    assert int(reply.headers["retry-after"]) > 0


def test_the_route_is_in_the_openapi_document(searchable: Any, alice: Client) -> None:
    document = alice.get("/v1/openapi.json").body
    operation = document["paths"]["/v1/search"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"q", "session_id", "task_id", "source", "limit"} <= names
    assert {"200", "400", "401", "503"} <= set(operation["responses"])
