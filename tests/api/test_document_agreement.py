"""What schemathesis found where the API and its OpenAPI document disagreed (issue 22, defect
4), one regression test each, on SQLite and PostgreSQL: either the answer changed (it was
wrong) or the document now says what the API does (it was silent)."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.api.conftest import Client
from tests.api.test_routes import make_session, make_snapshot, make_task


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    [found] = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    return found


def _cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def test_delete_removes_the_session_and_later_reads_are_404(alice: Client) -> None:
    s = make_session(alice)
    task = make_task(alice, s["id"])
    make_snapshot(alice, task["id"], "a", 1)
    # without purge=true nothing is removed (what a client written for the old meaning sends)
    kept = alice.delete(f"/v1/sessions/{s['id']}")
    assert kept.status == 400 and kept.body["error"] == "validation_error"
    assert alice.get(f"/v1/sessions/{s['id']}/tasks").status == 200
    assert alice.delete(f"/v1/sessions/{s['id']}?purge=false").status == 400
    gone = alice.delete(f"/v1/sessions/{s['id']}?purge=true")
    assert gone.status == 204
    for path in ("", "/tasks", "/snapshots", "/stats", "/graph", "/snapshots/timeline"):
        reply = alice.get(f"/v1/sessions/{s['id']}{path}")
        assert reply.status == 404 and reply.body["error"] == "not_found", path
    assert alice.get(f"/v1/tasks/{task['id']}").status == 404
    assert alice.delete(f"/v1/sessions/{s['id']}?purge=true").status == 404
    document = alice.get("/v1/openapi.json").body
    delete = document["paths"]["/v1/sessions/{session_id}"]["delete"]
    assert set(delete["responses"]) & {"200", "204"} == {"204"}
    purge = _parameter(document, "/v1/sessions/{session_id}", "delete", "purge")
    assert purge["required"] is True and purge["schema"]["const"] is True


def test_an_empty_time_range_is_an_empty_page(alice: Client) -> None:
    s = make_session(alice)
    make_snapshot(alice, make_task(alice, s["id"])["id"], "a", 2)
    when = "2000-01-01T00:00:00Z"
    for path in ("/v1/messages", "/v1/tool-calls"):
        same = alice.get(f"{path}?created_after={when}&created_before={when}")
        assert same.status == 200 and same.body == {"data": [], "next_cursor": None}
        later = "2030-01-01T00:00:00Z"
        inverted = alice.get(f"{path}?created_after={later}&created_before={when}")
        assert inverted.status == 200 and inverted.body["data"] == []
    assert alice.get("/v1/messages").body["data"]  # the messages are there


def test_values_of_another_type_are_refused_not_converted(alice: Client) -> None:
    s = make_session(alice)
    task = make_task(alice, s["id"])
    head = make_snapshot(alice, task["id"], "a", 1)
    thread = {"thread_id": "t1", "checkpoint_id": "c1"}
    bad_bodies: list[tuple[str, dict[str, Any]]] = [
        ("/v1/checkpoints/writes", {**thread, "writes": [], "replace": 0}),
        (
            "/v1/checkpoints/writes",
            {**thread, "writes": [{"task_id": "x", "idx": "3", "channel": "c", "value": 1}]},
        ),
        (
            f"/v1/tasks/{task['id']}/snapshots",
            {"label": "x", "bundle": {"messages": [], "captured_at": 0}},
        ),
        (
            f"/v1/tasks/{task['id']}/snapshots",
            {
                "label": "x",
                "bundle": {"messages": []},
                "base": {"snapshot_id": head["id"], "if_head": 0},
            },
        ),
        (
            f"/v1/tasks/{task['id']}/snapshots",
            {"label": "x", "bundle": {"messages": [], "token_total": True}},
        ),
    ]
    for path, body in bad_bodies:
        reply = alice.post(path, body)
        assert reply.status == 400 and reply.body["error"] == "validation_error", (path, body)
    assert alice.get("/v1/messages?created_before=0.5").status == 400  # not a Unix time
    assert alice.get("/v1/tool-calls?created_after=1700000000").status == 400
    # what JSON Schema calls an integer is one: 3.0
    ok = {**thread, "writes": [{"task_id": "x", "idx": 3.0, "channel": "c", "value": 1}]}
    assert alice.post("/v1/checkpoints/writes", ok).status == 204


def test_a_reference_outside_the_session_is_not_found(alice: Client) -> None:
    s, other = make_session(alice), make_session(alice, "other")
    mine, theirs = make_task(alice, s["id"]), make_task(alice, other["id"])
    a = make_snapshot(alice, mine["id"], "a", 1)
    b = make_snapshot(alice, theirs["id"], "b", 1)
    parent = alice.post(f"/v1/sessions/{s['id']}/tasks", {"name": "x", "parent_task_id": ""})
    assert parent.status == 404 and parent.body["error"] == "not_found"
    base = alice.post(
        f"/v1/tasks/{mine['id']}/snapshots",
        {"label": "x", "bundle": {"messages": []}, "base": {"snapshot_id": b["id"]}},
    )
    assert base.status == 404 and base.body["error"] == "not_found"
    diff = alice.get(f"/v1/sessions/{s['id']}/diff?from={a['id']}&to={b['id']}")
    assert diff.status == 404 and diff.body["error"] == "not_found"


def test_numbers_beyond_what_every_reader_holds_are_refused(alice: Client) -> None:
    s = make_session(alice)
    task = make_task(alice, s["id"])
    for big in (2**53, 1e20, -(2**60)):
        reply = alice.patch(f"/v1/sessions/{s['id']}", {"metadata": {"n": big}})
        assert reply.status == 400 and "2^53" in reply.body["message"], big
    fits = alice.patch(f"/v1/sessions/{s['id']}", {"metadata": {"n": 2**53 - 1, "f": 1.5e15}})
    assert fits.status == 200 and fits.body["metadata"] == {"n": 2**53 - 1, "f": 1.5e15}
    many = {"label": "x", "bundle": {"messages": [], "token_total": 10**12 + 1}}
    assert alice.post(f"/v1/tasks/{task['id']}/snapshots", many).status == 400
    make_snapshot(alice, task["id"], "max", 0, token_total=10**12)
    assert alice.get("/v1/usage").status == 200
    huge = alice.get(f"/v1/snapshots/{make_snapshot(alice, task['id'], 'b', 0)['id']}/bundle")
    assert huge.status == 200
    assert alice.get(f"/v1/snapshots/x/bundle?revision={2**63}").status == 400  # not a 500


def test_a_file_token_count_fits_its_column(alice: Client) -> None:
    """A file's token count is an INTEGER column on PostgreSQL: beyond it was a 500 there."""
    task = make_task(alice, make_session(alice)["id"])
    file = {"path": "a.py", "content": "x"}
    for count, status in ((2**31, 400), ("7", 400), (2**31 - 1, 201)):
        bundle = {"messages": [], "files": [{**file, "token_count": count}]}
        reply = alice.post(f"/v1/tasks/{task['id']}/snapshots", {"label": "f", "bundle": bundle})
        assert reply.status == status, (count, reply.body)


def test_a_cursor_out_of_range_is_a_400_not_a_500(alice: Client) -> None:
    make_session(alice)
    for position in ("99999999999999999999", "-1", "x"):
        cursor = _cursor("2026-01-01T00:00:00+00:00", f"{position}:00")
        for path in ("/v1/messages", "/v1/tool-calls"):
            reply = alice.get(f"{path}?cursor={cursor}")
            assert reply.status == 400 and reply.body["error"] == "validation_error", path
    well_formed = _cursor("2026-01-01T00:00:00+00:00", "5:" + "ab" * 32)
    assert alice.get(f"/v1/messages?cursor={well_formed}").status == 200
    assert (
        alice.get(f"/v1/sessions?cursor={_cursor('2026-01-01T00:00:00+00:00', 'x')}").status == 200
    )
    lone = _cursor("2026-01-01T00:00:00+00:00", "\ud800")  # no stored id holds one
    assert alice.get(f"/v1/sessions?cursor={lone}").status == 400


def test_the_document_says_what_the_api_refuses(alice: Client) -> None:
    document = alice.get("/v1/openapi.json").body
    schemas = document["components"]["schemas"]
    # strings: no NUL; numbers: within ±(2^53-1); free-form values: JsonValue
    name = schemas["CreateSession"]["properties"]["name"]
    assert name["pattern"] == "^[^\\x00]*$"
    [metadata, _] = schemas["CreateSession"]["properties"]["metadata"]["anyOf"]
    assert metadata["propertyNames"] == {"pattern": "^[^\\x00]*$"}
    assert metadata["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}
    value = schemas["JsonValue"]
    assert value["maximum"] == 2**53 - 1 and value["minimum"] == -(2**53 - 1)
    assert value["pattern"] == "^[^\\x00]*$"
    assert schemas["WriteIn"]["properties"]["value"]["$ref"] == "#/components/schemas/JsonValue"
    # an all-zero trace id is no trace
    assert schemas["LinkTrace"]["properties"]["trace_id"]["not"] == {"pattern": "^0+$"}
    # a log event needs a message or a type
    assert {tuple(o["required"]) for o in schemas["LogEvent"]["anyOf"]} == {("message",), ("type",)}
    # a thread id is never empty
    for path, method in (("/v1/checkpoints/tuple", "get"), ("/v1/checkpoints", "delete")):
        assert _parameter(document, path, method, "thread_id")["schema"]["minLength"] == 1
        assert alice.call(method.upper(), f"{path}?thread_id=").status == 400
    # a cursor is a page's next_cursor, in its listing's format; a filter is a JSON object
    formats = {
        "/v1/sessions": "cursor",
        "/v1/sessions/{session_id}/snapshots": "cursor",
        "/v1/messages": "object-cursor",
        "/v1/tool-calls": "object-cursor",
        "/v1/checkpoints": "checkpoint-cursor",
    }
    for path, kind in formats.items():
        cursor = _parameter(document, path, "get", "cursor")["schema"]
        assert cursor["format"] == kind and cursor["pattern"] == "^[A-Za-z0-9_-]*$", path
    filter_ = _parameter(document, "/v1/checkpoints", "get", "filter")
    assert filter_["content"]["application/json"]["schema"]["type"] == "object"
    # links: what a create answers leads to the operations that take it
    created = document["paths"]["/v1/sessions"]["post"]["responses"]["201"]["links"]
    assert created["DeleteSession"]["parameters"] == {
        "session_id": "$response.body#/id",
        "purge": True,
    }
    assert (
        "GetTask"
        in document["paths"]["/v1/sessions/{session_id}/tasks"]["post"]["responses"]["201"]["links"]
    )
