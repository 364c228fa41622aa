"""No bad input is a 500: each case answers a 4xx in the error shape, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.api.conftest import Client

DEEP = "[" * 1000 + "]" * 1000
THREAD = "thrd_" + "a" * 27


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# (method, path, raw body or JSON-able body, expected status)
CASES: dict[str, tuple[str, str, Any, int]] = {
    "body_not_utf8": ("POST", "/v1/sessions", b'{"name": "\xff\xfe"}', 400),
    "body_latin1": ("POST", "/v1/sessions", '{"name": "caf\xe9"}'.encode("latin-1"), 400),
    "nul_in_name": ("POST", "/v1/sessions", {"name": "a\u0000b"}, 400),
    "nul_in_metadata_key": ("POST", "/v1/sessions", {"name": "a", "metadata": {"\u0000": 1}}, 400),
    "nul_in_message": (
        "POST",
        "/v1/sessions",
        {"name": "x", "description": "\u0000"},
        400,
    ),
    "nan": ("POST", "/v1/sessions", b'{"name": "a", "metadata": {"v": NaN}}', 400),
    "infinity": ("POST", "/v1/sessions", b'{"name": "a", "metadata": {"v": Infinity}}', 400),
    "minus_infinity": ("POST", "/v1/sessions", b'{"name": "a", "metadata": {"v": -Infinity}}', 400),
    "int_beyond_bigint": ("POST", "/v1/sessions", {"name": "a", "metadata": {"n": 2**70}}, 400),
    "nested_1000": (
        "POST",
        "/v1/sessions",
        f'{{"name": "a", "metadata": {{"v": {DEEP}}}}}'.encode(),
        400,
    ),
    "nested_100": (
        "POST",
        "/v1/sessions",
        f'{{"name": "a", "metadata": {{"v": {"[" * 100 + "]" * 100}}}}}'.encode(),
        400,
    ),
    "name_too_long": ("POST", "/v1/sessions", {"name": "x" * 201}, 400),
    "limit_beyond_bigint": ("GET", f"/v1/sessions?limit={2**70}", None, 400),
    "cursor_garbage": ("GET", "/v1/sessions?cursor=%%%", None, 400),
    "cursor_not_json": ("GET", "/v1/sessions?cursor=bm90IGpzb24", None, 400),
    "cursor_nul": (
        "GET",
        "/v1/sessions?cursor=" + cursor(["2026-01-01T00:00:00+00:00", "a\u0000"]),
        None,
        400,
    ),
    "cursor_naive_date": (
        "GET",
        "/v1/sessions?cursor=" + cursor(["2026-01-01T00:00:00", "x"]),
        None,
        400,
    ),
    "cursor_year_9999": (
        "GET",
        "/v1/sessions?cursor=" + cursor(["9999-12-31T23:59:59+00:00", "x"]),
        None,
        200,
    ),
    "cursor_messages": ("GET", "/v1/messages?cursor=" + cursor(["x", "y"]), None, 400),
    "nul_in_query": ("GET", "/v1/messages?session_id=a%00b", None, 400),
    "nul_in_path": ("GET", "/v1/sessions/sess_%00", None, 400),
    "dates_mixed": (
        "GET",
        "/v1/messages?created_after=2026-01-01T00:00:00&created_before=2026-01-02T00:00:00Z",
        None,
        200,
    ),
    "year_9999": ("GET", "/v1/tool-calls?created_after=9999-12-31T23:59:59Z", None, 200),
    "year_9999_naive": ("GET", "/v1/messages?created_before=9999-12-31T23:59:59.999999", None, 200),
    "thread_id_bad": ("PUT", "/v1/threads/nope/state", {"user_data": "x"}, 400),
    "thread_nul_data": ("PUT", f"/v1/threads/{THREAD}/state", {"user_data": "a\u0000"}, 400),
    "body_array": ("POST", "/v1/sessions", [1, 2], 400),
    "body_empty": ("POST", "/v1/sessions", b"", 400),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_4xx_in_the_error_shape(alice: Client, case: str) -> None:
    method, path, body, expected = CASES[case]
    if isinstance(body, bytes):
        reply = alice.call(method, path, raw=body)
    else:
        reply = alice.call(method, path, body)
    assert reply.status == expected, reply.body
    if expected >= 400:
        assert set(reply.body) == {"error", "message", "details"}, reply.body
        assert reply.body["error"] == "validation_error"


def _closed_port() -> int:
    from tests.e2e.stack import free_port

    return free_port()  # bound and released: nothing listens there


def test_database_unreachable_is_a_quick_503_with_retry_after(tmp_path: Any) -> None:
    import time

    from kontex import bootstrap
    from kontex.adapters.local_blobs import LocalBlobs
    from kontex.adapters.postgres_store import PostgresStore
    from kontex.settings import Settings

    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{_closed_port()}/none", timeout=2)
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "s"}, kontex_data_dir=tmp_path)
    bootstrap.configure(bootstrap.Container(config, store=store, blobs=LocalBlobs(tmp_path)))
    try:
        started = time.monotonic()
        reply = Client("kontex_" + "x" * 40).get("/v1/sessions")
        took = time.monotonic() - started
    finally:
        bootstrap.configure(None)
    assert reply.status == 503 and reply.headers["retry-after"] == "5"
    assert reply.body["error"] == "unavailable" and set(reply.body) == {
        "error",
        "message",
        "details",
    }
    assert took < 5


def test_blob_store_unreachable_is_a_503_with_retry_after(alice: Client, container: Any) -> None:
    import boto3
    from botocore.config import Config

    from kontex.adapters.s3_blobs import S3Blobs

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
    )
    container.deps.blobs = S3Blobs("nowhere", client=client)
    session = alice.post("/v1/sessions", {"name": "s"}).body
    task = alice.post(f"/v1/sessions/{session['id']}/tasks", {"name": "t"}).body
    big = {"path": "big.py", "content": "x = 1\n" * 20_000}  # over the inline threshold: a blob
    reply = alice.post(
        f"/v1/tasks/{task['id']}/snapshots",
        {"label": "x", "bundle": {"messages": [], "files": [big]}},
    )
    assert reply.status == 503, reply.body
    assert reply.headers["retry-after"] == "5" and reply.body["error"] == "unavailable"


def test_missing_blob_is_an_integrity_error_without_its_key(
    alice: Client, container: Any, tmp_path: Any
) -> None:
    session = alice.post("/v1/sessions", {"name": "s"}).body
    task = alice.post(f"/v1/sessions/{session['id']}/tasks", {"name": "t"}).body
    big = {"path": "big.py", "content": "x = 1\n" * 20_000}
    snap = alice.post(
        f"/v1/tasks/{task['id']}/snapshots",
        {"label": "x", "bundle": {"messages": [], "files": [big]}},
    ).body
    for blob in (tmp_path / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()
    reply = alice.get(f"/v1/snapshots/{snap['id']}/bundle")
    assert reply.status == 500 and reply.body["error"] == "integrity_error"
    text = json.dumps(reply.body)
    assert session["id"] not in text and "blobs" not in text and "acct_" not in text


def test_ingest_wrong_method_is_405_method_not_allowed(container: Any) -> None:
    from kontex.http.apigw import LocalContext, http_api_event
    from kontex.local.server import load_handler

    ingest = load_handler("ingest")
    result = ingest(
        http_api_event("GET", "/ingest/v1/traces", [], b""), LocalContext(function_name="i")
    )
    assert result["statusCode"] == 405 and result["headers"]["Allow"] == "POST"
    body = json.loads(base64.b64decode(result["body"]))
    assert body["error"] == "method_not_allowed"
