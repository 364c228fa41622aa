"""`kontex dev` serves the built dashboard (web/dist) for GET paths no function claims, with
the right content types and caching, and never in place of an API, ingest, proxy, MCP, live
feed or health answer."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from kontex.local.server import AsgiApp
from kontex.local.static import RESERVED, StaticSite


class FakeStack:
    """Claims /v1/ and /health as the api function does; answers 200 JSON from it."""

    def function_for(self, path: str) -> str | None:
        return "api" if path.startswith("/v1/") or path == "/health" else None

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}

    def asgi_app(self, name: str) -> Any:
        return None  # no function of this stack is an ASGI app of its own (the proxy is)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=root></div>")
    (root / "assets" / "index-abc123.js").write_text("console.log(1)")
    (root / "assets" / "index-abc123.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


def request(app: AsgiApp, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 1),
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def app(dist: Path) -> Any:
    made = AsgiApp(FakeStack(), site=StaticSite(dist))  # type: ignore[arg-type]
    yield made
    made.close()


def test_the_page_and_its_assets_have_their_types_and_caching(app: AsgiApp) -> None:
    status, head, body = request(app, "GET", "/")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert head["content-type"] == "text/html; charset=utf-8"
    assert head["cache-control"] == "no-cache"  # a new build is seen at once
    status, head, body = request(app, "GET", "/assets/index-abc123.js")
    assert (status, body) == (200, b"console.log(1)")
    assert head["content-type"] == "text/javascript; charset=utf-8"
    assert "immutable" in head["cache-control"]  # hashed names never change
    assert request(app, "GET", "/assets/index-abc123.css")[1]["content-type"].startswith("text/css")
    status, head, body = request(app, "HEAD", "/")
    assert status == 200 and body == b"" and head["content-length"] != "0"


def test_client_routes_fall_back_to_the_page_and_missing_files_are_404(app: AsgiApp) -> None:
    status, head, body = request(app, "GET", "/sessions/sess_1")
    assert status == 200 and body.startswith(b"<!doctype html>")
    status, head, body = request(app, "GET", "/assets/gone.js")
    assert status == 404 and json.loads(body)["error"] == "not_found"
    for escape in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        status, _, body = request(app, "GET", escape)
        assert b"not for the web" not in body


def test_config_json_is_the_local_origin_unless_the_build_has_one(app: AsgiApp, dist: Path) -> None:
    # no 404 on every load (issue 24): the API and the live feed are this origin
    status, head, body = request(app, "GET", "/config.json")
    assert (status, json.loads(body)) == (200, {"api_url": ""})
    assert head["content-type"] == "application/json" and head["cache-control"] == "no-cache"
    (dist / "config.json").write_text('{"api_url": "https://api.example", "live_url": null}')
    assert json.loads(request(app, "GET", "/config.json")[2])["live_url"] is None


def test_the_page_never_shadows_a_function_or_a_reserved_path(app: AsgiApp) -> None:
    status, head, body = request(app, "GET", "/v1/sessions")
    assert (status, body) == (200, b"{}") and head["content-type"] == "application/json"
    for prefix in RESERVED:
        for path in (prefix, prefix + "/anything"):
            if FakeStack().function_for(path):
                continue
            status, head, body = request(app, "GET", path)
            assert status == 404 and json.loads(body)["error"] == "not_found", path
    status, _, body = request(app, "POST", "/")
    assert status == 404 and json.loads(body)["error"] == "not_found"


def test_files_are_cached_with_an_etag_and_reread_after_a_rebuild(app: AsgiApp, dist: Path) -> None:
    status, head, _ = request(app, "GET", "/")
    etag = head["etag"]
    status, _, body = request(app, "GET", "/", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    index = dist / "index.html"
    index.write_text("<!doctype html><p>rebuilt</p>")
    stat = index.stat()
    os.utime(index, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    status, head, body = request(app, "GET", "/", {"If-None-Match": etag})
    assert status == 200 and b"rebuilt" in body and head["etag"] != etag


def test_an_unbuilt_page_says_how_to_build_it(tmp_path: Path) -> None:
    app = AsgiApp(FakeStack(), site=StaticSite(tmp_path / "nothing"))  # type: ignore[arg-type]
    status, _, body = request(app, "GET", "/")
    app.close()
    assert status == 404 and "make dev" in json.loads(body)["message"]


def test_the_page_sends_a_csp_without_inline_script_and_is_never_framed(app: AsgiApp) -> None:
    for path in ("/", "/assets/index-abc123.js", "/sessions/sess_1"):
        head = request(app, "GET", path)[1]
        policy = {
            d.strip().split(" ")[0]: d.strip() for d in head["content-security-policy"].split(";")
        }
        assert policy["script-src"] == "script-src 'self'"  # no 'unsafe-inline', no other origin
        assert policy["frame-ancestors"] == "frame-ancestors 'none'"
        assert policy["object-src"] == "object-src 'none'"
        assert head["x-frame-options"] == "DENY" and head["referrer-policy"] == "same-origin"
