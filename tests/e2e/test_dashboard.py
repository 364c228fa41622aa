"""The dashboard in a real Chromium (Debian's `chromium`, driven by Playwright) against a real
`kontex dev`: sign in, the session's graph and timeline, a snapshot, a diff, rollback, the
live feed, and how the page degrades without search or the live feed.

CI (`.ci/run` sets KONTEX_REQUIRE_BROWSER=1 and installs the package) fails rather than skips
when the browser or the built page is missing. Screenshots of the session and diff views go to
KONTEX_TEST_OUTPUT (default tests/output/dashboard).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("KONTEX_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(os.environ.get("KONTEX_TEST_OUTPUT", ROOT / "tests" / "output")) / "dashboard"
TIMEOUT_MS = 20_000


def _missing(reason: str) -> None:
    if os.environ.get("KONTEX_REQUIRE_BROWSER"):
        pytest.fail(f"browser tests required (KONTEX_REQUIRE_BROWSER) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if not (ROOT / "web" / "dist" / "index.html").exists():
        _missing("the dashboard is not built (make web)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevStack, str]]:
    data = tmp_path_factory.mktemp("dashboard") / "data"
    key = create_key(data, "dashboard")
    running = start_dev(data)
    yield running, key
    stop_dev(running)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(base + "/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Sessions").wait_for()


BEFORE = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "Where is login handled?"},
    ],
    "files": [{"path": "auth.py", "content": "def login():\n    pass\n"}],
}
AFTER = {
    "model": "claude-sonnet-4-5",
    "messages": [
        *BEFORE["messages"],
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "It must be in auth.py", "signature": "sig"},
                {"type": "text", "text": "Let me read auth.py."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "read_file",
                    "input": {"path": "auth.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": "def login(user): ...",
                }
            ],
        },
    ],
    "tool_calls": [
        {
            "id": "toolu_01",
            "tool": "read_file",
            "input": {"path": "auth.py"},
            "output": "def login(user): ...",
            "status": "success",
        }
    ],
    "files": [
        {"path": "auth.py", "content": "def login(user):\n    check_password(user)\n    pass\n"}
    ],
    "reasoning": "The login handler is the one in auth.py.",
    "log_events": [{"type": "tool.start", "message": "reading auth.py", "level": "info"}],
}


def make_session(api: Http, name: str) -> dict[str, str]:
    """A session made through the REST API: a task with a child, two snapshots in the first."""
    status, session = api("POST", "/v1/sessions", {"name": name})
    assert status == 201
    sid = session["id"]
    _, plan = api("POST", f"/v1/sessions/{sid}/tasks", {"name": "plan"})
    _, edit = api(
        "POST", f"/v1/sessions/{sid}/tasks", {"name": "edit", "parent_task_id": plan["id"]}
    )
    _, a = api(
        "POST", f"/v1/tasks/{plan['id']}/snapshots", {"label": "read the code", "bundle": BEFORE}
    )
    _, b = api("POST", f"/v1/tasks/{plan['id']}/snapshots", {"label": "found it", "bundle": AFTER})
    return {"session": sid, "plan": plan["id"], "edit": edit["id"], "a": a["id"], "b": b["id"]}


def test_a_wrong_key_shows_the_error_and_is_not_kept(
    stack: tuple[DevStack, str], page: Any
) -> None:
    dev, _ = stack
    page.goto(dev.base + "/")
    # keyboard only: the key field has focus (once the page has rendered), Enter submits
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type("kontex_not-a-real-key")
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "401" in alert.inner_text() and "refused" in alert.inner_text()
    assert page.evaluate("sessionStorage.getItem('kontex.apiKey')") is None
    # a kept key the API refuses later (revoked, say) signs out with the reason
    page.evaluate("sessionStorage.setItem('kontex.apiKey', 'kontex_revoked')")
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("401 unauthorized")
    assert page.evaluate("sessionStorage.getItem('kontex.apiKey')") is None


def test_session_graph_timeline_snapshot_and_diff(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    ids = make_session(Http(dev.base, key), "refactor auth")
    sign_in(page, dev.base, key)
    assert page.evaluate("sessionStorage.getItem('kontex.apiKey')") == key
    row = page.locator(f"tr[data-session-id='{ids['session']}']")
    row.get_by_text("active").wait_for()
    # the list's snapshot count comes from the session's stats
    page.wait_for_function(
        "id => document.querySelector(`tr[data-session-id='${id}'] td:nth-child(4)`)"
        "?.textContent === '2'",
        arg=ids["session"],
    )
    row.get_by_role("link", name="refactor auth").click()

    # the graph: both tasks, coloured by status, with their snapshot counts
    plan = page.locator(f"[data-task-id='{ids['plan']}']")
    expect(plan).to_contain_text("pending · 2 snapshots")
    expect(page.locator(f"[data-task-id='{ids['edit']}']")).to_contain_text("0 snapshots")
    expect(page.locator(".react-flow__node.status-pending")).to_have_count(2)
    expect(page.locator(".react-flow__edge")).to_have_count(1)
    # the timeline: both snapshots with token deltas
    timeline = page.get_by_role("table", name="timeline")
    first = timeline.locator(f"tr[data-snapshot-id='{ids['a']}']")
    second = timeline.locator(f"tr[data-snapshot-id='{ids['b']}']")
    expect(first).to_contain_text("read the code")
    expect(second).to_contain_text("found it")
    assert re.search(r"\+\d+", second.locator("td").nth(7).inner_text())
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "session.png"), full_page=True)

    # a snapshot: messages by role with their blocks, thinking collapsed, the tool call
    second.get_by_role("link", name="found it").click()
    page.get_by_role("heading", name="found it").wait_for()
    messages = page.locator("article.message")
    expect(messages).to_have_count(4)
    assert [messages.nth(i).locator("header .role").text_content() for i in range(4)] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    thinking = page.locator("details.thinking")
    assert thinking.count() == 1 and thinking.get_attribute("open") is None
    assert "tool_use read_file" in page.locator(".block.tool-use").inner_text()
    assert "def login(user): ..." in page.locator(".block.tool-result").inner_text()
    call = page.locator(".tool-call")
    assert "read_file" in call.inner_text() and "success" in call.inner_text()
    assert '"path": "auth.py"' in call.inner_text()
    page.get_by_text("auth.py", exact=True).first.click()
    assert "check_password(user)" in page.locator("pre.code").inner_text()
    assert (
        "reading auth.py" in page.get_by_role("region", name=re.compile("Log events")).inner_text()
    )

    # the diff with the previous snapshot: messages after the prefix, tool calls, a line diff
    page.get_by_role("link", name="Diff with previous").click()
    summary = page.get_by_test_id("diff-summary")
    summary.wait_for()
    _, diff = Http(dev.base, key)(
        "GET", f"/v1/sessions/{ids['session']}/diff?from={ids['a']}&to={ids['b']}"
    )
    text = summary.inner_text()
    assert f"+{diff['token_delta']} tokens" in text
    assert "2 messages in common" in text and "+2 messages" in text
    assert "tool calls +1 −0 ~0" in text and "files +0 −0 ~1" in text
    added = page.locator(".line-diff .line.add")
    assert "check_password(user)" in added.all_inner_texts()[-1] or any(
        "check_password(user)" in t for t in added.all_inner_texts()
    )
    assert any("def login():" in t for t in page.locator(".line-diff .line.del").all_inner_texts())
    page.screenshot(path=str(OUTPUT / "diff.png"), full_page=True)


def test_rollback_from_the_page_shows_the_forward_snapshot(
    stack: tuple[DevStack, str], page: Any
) -> None:
    dev, key = stack
    api = Http(dev.base, key)
    ids = make_session(api, "rollback run")
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{ids['session']}/snapshots/{ids['a']}")
    page.get_by_role("button", name="Roll back to this").click()
    dialog = page.get_by_role("dialog")
    assert "Nothing is deleted" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()  # cancel writes nothing
    assert len(api("GET", f"/v1/sessions/{ids['session']}/snapshots/timeline")[1]["data"]) == 2
    page.get_by_role("button", name="Roll back to this").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    result = page.get_by_test_id("action-result")
    result.wait_for()
    timeline = api("GET", f"/v1/sessions/{ids['session']}/snapshots/timeline")[1]["data"]
    forward = timeline[-1]
    assert forward["rollback_of"] == ids["a"] and forward["parent_snapshot_id"] == ids["b"]
    assert (
        forward["id"] in result.inner_text() and "Rollback to: read the code" in result.inner_text()
    )
    result.get_by_role("link", name="Back to the session").click()
    row = page.locator(f"tr[data-snapshot-id='{forward['id']}']")
    row.wait_for()
    assert "rollback" in row.inner_text()


def test_fork_from_the_page_shows_the_new_task(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    ids = make_session(Http(dev.base, key), "fork run")
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{ids['session']}/snapshots/{ids['b']}")
    page.get_by_role("button", name="Fork from this").click()
    page.get_by_label("Name of the new task (optional)").fill("try OAuth")
    page.get_by_role("dialog").get_by_role("button", name="Fork").click()
    result = page.get_by_test_id("action-result")
    result.wait_for()
    assert "try OAuth" in result.inner_text()
    result.get_by_role("link", name="Back to the session").click()
    expect(page.locator(".react-flow__node", has_text="try OAuth")).to_contain_text("1 snapshot")
    expect(page.locator(".react-flow__edge")).to_have_count(2)


def test_an_enriched_snapshot_shows_each_revision(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    api = Http(dev.base, key)
    ids = make_session(api, "enriched run")
    extra = {"role": "assistant", "content": "login() lives in auth.py."}
    status, _ = api(
        "POST", f"/v1/snapshots/{ids['b']}/enrich", {"messages": [*AFTER["messages"], extra]}
    )
    assert status == 200
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{ids['session']}/snapshots/{ids['b']}")
    expect(page.locator("article.message")).to_have_count(5)  # the latest state
    expect(page.locator("article.message").last).to_contain_text("login() lives in auth.py.")
    revision = page.get_by_label("revision")
    expect(revision.locator("option")).to_have_count(3)  # latest, 0 (original), 1
    revision.select_option("0")
    expect(page.locator("article.message")).to_have_count(4)
    assert "login() lives in auth.py." not in page.locator(".messages").inner_text()


def test_a_snapshot_made_over_rest_appears_live(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    api = Http(dev.base, key)
    ids = make_session(api, "live run")
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{ids['session']}")
    page.locator(".badge.live").wait_for()
    body = {"label": "made while watching", "bundle": BEFORE}
    status, made = api("POST", f"/v1/tasks/{ids['edit']}/snapshots", body)
    assert status == 201
    row = page.locator(f"tr[data-snapshot-id='{made['id']}']")
    row.wait_for()  # no reload: the live feed's snapshot.created brought it
    assert "made while watching" in row.inner_text() and "new" in row.inner_text()
    expect(page.locator(f"[data-task-id='{ids['edit']}']")).to_contain_text("1 snapshot")


def test_without_live_feed_or_search_the_page_degrades(
    stack: tuple[DevStack, str], page: Any
) -> None:
    dev, key = stack
    api = Http(dev.base, key)
    make_session(api, "degraded run")
    make_session(api, "another run")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nothing listens on
    live_url = f"ws://127.0.0.1:{closed.getsockname()[1]}/ws"
    page.route(
        "**/config.json",
        lambda route: route.fulfill(json={"api_url": "", "live_url": live_url}),
    )
    page.route(
        re.compile(r".*/v1/search\?.*"),
        lambda route: route.fulfill(
            status=404,
            json={"error": "not_found", "message": "no such route", "details": None},
        ),
    )
    sign_in(page, dev.base, key)
    page.get_by_role("searchbox", name="Search snapshot content").fill("degraded")
    page.get_by_role("button", name="Search").click()
    page.get_by_text(
        "Content search is not available on this server; filtering by name."
    ).wait_for()
    # the query became the name filter
    page.get_by_role("link", name="degraded run").wait_for()
    assert page.get_by_role("link", name="another run").count() == 0
    page.get_by_role("link", name="degraded run").click()
    badge = page.locator(".badge.off")
    badge.wait_for()
    assert "live off" in badge.inner_text()
    badge.get_by_role("button", name="retry").wait_for()
    closed.close()


def test_search_results_link_to_their_snapshots(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    ids = make_session(Http(dev.base, key), "searched run")
    hit = {
        "snapshot_id": ids["b"],
        "session_id": ids["session"],
        "task_id": ids["plan"],
        "label": "found it",
        "score": 0.91,
        "created_at": "2026-11-22T00:00:00Z",
        "snippet": {
            "text": "Let me read auth.py.",
            "role": "assistant",
            "position": 2,
            "source": "message",
        },
    }
    asked: list[str] = []

    def answer(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(json={"results": [hit]})

    # contract 5's GET /v1/search, answered here so the page is tested against its shape alone
    page.route(re.compile(r".*/v1/search\?.*"), answer)
    sign_in(page, dev.base, key)
    page.get_by_role("searchbox", name="Search snapshot content").fill("auth.py")
    page.keyboard.press("Enter")
    result = page.get_by_role("listitem").filter(has_text="Let me read auth.py.")
    result.wait_for()
    assert "q=auth.py" in asked[0]
    result.get_by_role("link", name="found it").click()
    page.get_by_role("heading", name="found it").wait_for()
    assert ids["b"] in page.url


def test_the_page_loads_nothing_from_another_origin(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, dev.base, key)
    page.get_by_role("heading", name="Sessions").wait_for()
    origins = {urlsplit(u).netloc for u in requests if u.startswith("http")}
    assert origins == {urlsplit(dev.base).netloc}, origins


def test_screenshots_were_kept() -> None:
    """docs/ carries one of each; the README shows them."""
    readme = (ROOT / "README.md").read_text()
    for name in ("dashboard-session.png", "dashboard-diff.png"):
        assert (ROOT / "docs" / name).exists() and f"docs/{name}" in readme
