"""The dashboard in a real Chromium (Debian's `chromium`, driven by Playwright) against a real
`kontex dev`: sign in, the session's graph and timeline, a snapshot, a diff, rollback and fork,
the live feed, how the page degrades without search or the live feed, the charts (context over
time, usage, timing, sparklines), honest numbers, and hostile text rendered as text.

CI (`.ci/run` sets KONTEX_REQUIRE_BROWSER=1 and installs the package) fails rather than skips
when the browser or the built page is missing. Screenshots of each view go to
KONTEX_TEST_OUTPUT/dashboard (default tests/output/dashboard, which git ignores).
"""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from opentelemetry import trace
from opentelemetry.trace import Tracer
from playwright.sync_api import expect, sync_playwright

from tests.e2e.stack import DevStack, Http, create_key, start_dev, stop_dev
from tests.otlp import spans as otlp

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


def shot(page: Any, name: str) -> None:
    """A screenshot kept as a test artifact (OUTPUT)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / name), full_page=True)


def no_script_ran(page: Any) -> None:
    """Hostile text stayed text: no payload ran, no element of theirs exists."""
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0


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
        "id => document.querySelector(`tr[data-session-id='${id}'] td:nth-child(5)`)"
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
    shot(page, "session.png")

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
    # a REST snapshot records no LLM call: said once, not as empty usage, latency and cost
    expect(page.get_by_test_id("snapshot-call")).to_have_text("none recorded")
    assert "Cost" not in page.locator("dl.facts").inner_text()
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
    added.first.wait_for()  # the line diff renders after the summary (a loaded machine: later)
    assert any("check_password(user)" in t for t in added.all_inner_texts())
    assert any("def login():" in t for t in page.locator(".line-diff .line.del").all_inner_texts())
    shot(page, "diff.png")


def centred(page: Any, locator: Any) -> None:
    """The box sits in the middle of the viewport (within 2 px), below the header."""
    box = locator.bounding_box()
    view = page.viewport_size
    assert abs(box["x"] + box["width"] / 2 - view["width"] / 2) <= 2, box
    assert abs(box["y"] + box["height"] / 2 - view["height"] / 2) <= 2, box
    header = page.locator("header.top").bounding_box()
    assert box["y"] > header["y"] + header["height"], (box, header)


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
    centred(page, dialog)  # a modal in the middle of the viewport, not over the header
    shot(page, "rollback-dialog.png")
    dialog.get_by_role("button", name="Cancel").click()  # cancel writes nothing
    assert len(api("GET", f"/v1/sessions/{ids['session']}/snapshots/timeline")[1]["data"]) == 2
    page.get_by_role("button", name="Roll back to this").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    result = page.get_by_test_id("action-result")
    result.wait_for()
    timeline = api("GET", f"/v1/sessions/{ids['session']}/snapshots/timeline")[1]["data"]
    forward = timeline[-1]
    assert forward["rollback_of"] == ids["a"] and forward["parent_snapshot_id"] == ids["b"]
    # the page is the new forward snapshot's, as the README says
    assert page.url.endswith(f"/snapshots/{forward['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Rollback to: read the code")
    assert forward["id"] in result.inner_text() and "read the code" in result.inner_text()
    result.get_by_role("link", name="Back to the session").click()
    row = page.locator(f"tr[data-snapshot-id='{forward['id']}']")
    row.wait_for()
    assert "rollback" in row.inner_text()


def test_fork_from_the_page_shows_the_new_task(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    api = Http(dev.base, key)
    ids = make_session(api, "fork run")
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{ids['session']}/snapshots/{ids['b']}")
    page.get_by_role("button", name="Fork from this").click()
    dialog = page.get_by_role("dialog")
    centred(page, dialog)
    name = page.get_by_label("Name of the new task")
    expect(name).to_have_value("Fork of: found it")  # proposed, and used as it stands
    shot(page, "fork-dialog.png")
    dialog.get_by_role("button", name="Fork").click()
    result = page.get_by_test_id("action-result")
    result.wait_for()
    tasks = api("GET", f"/v1/sessions/{ids['session']}/tasks")[1]["data"]
    fork = next(t for t in tasks[0]["children"] if t["name"] == "Fork of: found it")
    made = api("GET", f"/v1/tasks/{fork['id']}/snapshots/latest")[1]
    assert page.url.endswith(f"/snapshots/{made['id']}")  # the new task's first snapshot
    assert "Fork of: found it" in result.inner_text() and fork["id"] in result.inner_text()
    # a name typed instead is the one used
    page.get_by_role("button", name="Fork from this").click()
    page.get_by_label("Name of the new task").fill("try OAuth")
    page.get_by_role("dialog").get_by_role("button", name="Fork").click()
    page.get_by_test_id("action-result").filter(has_text="try OAuth").wait_for()
    page.get_by_test_id("action-result").get_by_role("link", name="Back to the session").click()
    expect(page.locator(".react-flow__node", has_text="try OAuth")).to_contain_text("1 snapshot")
    expect(page.locator(".react-flow__edge")).to_have_count(3)


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


# -- honest numbers, the fixed points of issue 24 -----------------------------------------------


def test_a_session_of_rest_snapshots_says_no_llm_calls_were_captured(
    stack: tuple[DevStack, str], page: Any
) -> None:
    dev, key = stack
    api = Http(dev.base, key)
    ids = make_session(api, "rest only")
    stats = api("GET", f"/v1/sessions/{ids['session']}/stats")[1]
    assert stats["llm_calls"] == 0 and stats["context_tokens"] > 0
    sign_in(page, dev.base, key)
    row = page.locator(f"tr[data-session-id='{ids['session']}']")
    expect(row.locator("td").nth(5)).to_have_text(f"{stats['context_tokens']:,}")
    expect(row.locator("td").nth(6)).to_have_text("none")  # LLM calls
    expect(row.locator("td").nth(7)).to_have_text("—")  # no cost, rather than $0.00
    row.get_by_role("link", name="rest only").click()
    numbers = page.get_by_test_id("session-numbers")
    expect(page.get_by_test_id("llm-calls")).to_have_text("none captured")
    expect(page.get_by_test_id("context-now")).to_have_text(f"{stats['context_tokens']:,} tokens")
    # nothing that contradicts the context size: no "Tokens used 0", no "Cost -", no $0.00
    expect(page.get_by_test_id("tokens-used")).to_have_count(0)
    expect(page.get_by_test_id("session-cost")).to_have_count(0)
    assert "Cost" not in numbers.inner_text()
    page.get_by_role("table", name="timeline").locator("tbody tr").first.wait_for()
    assert "$" not in page.locator("main").inner_text()
    assert "No LLM calls captured" in page.get_by_test_id("numbers-note").inner_text()
    expect(page.get_by_test_id("no-llm-calls")).to_be_visible()  # the usage chart says so too
    shot(page, "session-rest-numbers.png")


def test_a_missing_session_is_only_not_found(stack: tuple[DevStack, str], page: Any) -> None:
    dev, key = stack
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/sess_00000000000000000000000000")
    expect(page.get_by_role("heading", level=1)).to_have_text("Session not found")
    expect(page.get_by_role("alert")).to_contain_text("No session sess_0000")
    # not an empty session beside it
    assert page.get_by_text("No tasks yet").count() == 0
    assert page.get_by_role("table", name="timeline").count() == 0
    assert page.get_by_text("Compare two snapshots").count() == 0
    page.get_by_role("link", name="Back to the sessions").wait_for()


def test_a_load_logs_no_error_and_asks_nothing_that_fails(
    stack: tuple[DevStack, str], page: Any
) -> None:
    dev, key = stack
    ids = make_session(Http(dev.base, key), "quiet console")
    console: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    sign_in(page, dev.base, key)
    page.get_by_role("link", name="quiet console").click()
    page.get_by_test_id("context-chart").wait_for()
    page.goto(f"{dev.base}/#/sessions/{ids['session']}/snapshots/{ids['b']}")
    page.get_by_role("heading", name="found it").wait_for()
    assert not console, console  # /config.json is answered by kontex dev, not a 404
    assert not failed, failed


def test_the_search_and_filter_boxes_show_their_whole_placeholder(
    stack: tuple[DevStack, str], page: Any
) -> None:
    dev, key = stack
    sign_in(page, dev.base, key)
    for name in ("Search snapshot content", "Filter sessions by name"):
        box = page.get_by_role("searchbox", name=name)
        room, needed = box.evaluate(
            """el => {
              const style = getComputedStyle(el);
              const ctx = document.createElement("canvas").getContext("2d");
              ctx.font = style.font;
              const pad = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
              const room = el.clientWidth - pad;
              return [room, ctx.measureText(el.placeholder).width];
            }"""
        )
        assert needed <= room, (name, needed, room)


def test_the_default_pair_to_compare_is_two_snapshots_of_one_task(
    stack: tuple[DevStack, str], page: Any
) -> None:
    dev, key = stack
    api = Http(dev.base, key)
    ids = make_session(api, "pair run")
    # the newest snapshot is the only one of its task: A and B stay in "plan"
    _, other = api(
        "POST", f"/v1/tasks/{ids['edit']}/snapshots", {"label": "edited", "bundle": BEFORE}
    )
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{ids['session']}")
    timeline = page.get_by_role("table", name="timeline")
    expect(timeline.get_by_role("radio", name="A: read the code")).to_be_checked()
    expect(timeline.get_by_role("radio", name="B: found it")).to_be_checked()
    expect(timeline.get_by_role("radio", name="B: edited")).not_to_be_checked()
    page.get_by_role("button", name="Diff selected").click()
    assert page.url.endswith(f"/diff/{ids['a']}/{ids['b']}")
    assert other["task_id"] == ids["edit"]


# -- the charts ---------------------------------------------------------------------------------

# Names, labels and a model a user (or an instrumented agent) may send: text, never markup.
HOSTILE_TASK = '<img src=x onerror="window.__xss=1">planner'
HOSTILE_LABEL = "<script>window.__xss=2</script>slow call"
HOSTILE_SESSION = '"><svg onload="window.__xss=3">charted run'
SECOND = 1_000_000_000


def traced_run(
    tracer: Tracer, start_ns: int, planner_name: str = HOSTILE_TASK, slow_label: str = HOSTILE_LABEL
) -> None:
    """A workflow with two agents and three LLM calls of known latencies (1.2 s, 2.4 s the
    slowest, 0.8 s; the last on a model the price table does not know)."""

    def span(name: str, parent: Any, start: float, end: float, attributes: dict[str, Any]) -> Any:
        made = tracer.start_span(
            name,
            context=trace.set_span_in_context(parent) if parent is not None else None,
            start_time=start_ns + int(start * SECOND),
            attributes=attributes,
        )
        return made, start_ns + int(end * SECOND)

    def call(parent: Any, name: str, start: float, end: float, model: str, usage: dict) -> None:
        made, end_ns = span(
            name,
            parent,
            start,
            end,
            {
                "llm.request.type": "chat",
                "gen_ai.request.model": model,
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": f"question for {name}",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": f"answer of {name}",
                **{f"gen_ai.usage.{k}": v for k, v in usage.items()},
            },
        )
        made.end(end_time=end_ns)

    workflow, workflow_end = span(
        "run.workflow",
        None,
        0,
        6,
        {"traceloop.span.kind": "workflow", "traceloop.entity.name": "research"},
    )
    planner, planner_end = span(
        "planner.agent",
        workflow,
        0.1,
        3.9,
        {"traceloop.span.kind": "agent", "traceloop.entity.name": planner_name},
    )
    usage = {"input_tokens": 1000, "output_tokens": 200, "cache_read_input_tokens": 5000}
    call(planner, "first call", 0.2, 1.4, "claude-sonnet-4-5", usage)
    usage = {"input_tokens": 1200, "output_tokens": 300, "cache_creation_input_tokens": 800}
    call(planner, slow_label, 1.45, 3.85, "claude-sonnet-4-5", usage)
    planner.end(end_time=planner_end)
    writer, writer_end = span(
        "writer.agent",
        workflow,
        4.0,
        5.9,
        {"traceloop.span.kind": "agent", "traceloop.entity.name": "writer"},
    )
    call(writer, "draft", 4.1, 4.9, "my-private-model", {"input_tokens": 50, "output_tokens": 9})
    writer.end(end_time=writer_end)
    workflow.end(end_time=workflow_end)


def charted_session(
    dev: DevStack,
    key: str,
    name: str = HOSTILE_SESSION,
    planner_name: str = HOSTILE_TASK,
    slow_label: str = HOSTILE_LABEL,
) -> dict[str, Any]:
    """A session of three OTLP LLM calls, then a rollback and a fork made over REST."""
    api = Http(dev.base, key)
    _, session = api("POST", "/v1/sessions", {"name": name})
    sid = session["id"]
    start_ns = time.time_ns() - 7 * SECOND  # the run ended a second ago
    body = otlp.protobuf(
        otlp.record(lambda tracer: traced_run(tracer, start_ns, planner_name, slow_label))
    )
    request = urllib.request.Request(
        f"{dev.base}/ingest/v1/traces",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-protobuf",
            "X-Kontex-Api-Key": key,
            "X-Kontex-Session-Id": sid,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    deadline = time.monotonic() + 60
    timeline: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        timeline = api("GET", f"/v1/sessions/{sid}/snapshots/timeline")[1]["data"]
        if len([e for e in timeline if e["usage"]]) == 3:
            break
        time.sleep(0.3)
    calls = {e["label"]: e for e in timeline if e["usage"]}
    assert set(calls) == {"first call", slow_label, "draft"}, timeline
    status, rollback = api("POST", f"/v1/snapshots/{calls['first call']['id']}/rollback")
    assert status == 201, rollback
    status, fork = api("POST", f"/v1/snapshots/{calls[slow_label]['id']}/fork", {})
    assert status == 201, fork
    stats = api("GET", f"/v1/sessions/{sid}/stats")[1]
    timeline = api("GET", f"/v1/sessions/{sid}/snapshots/timeline")[1]["data"]
    return {
        "id": sid,
        "calls": calls,
        "rollback": rollback,
        "fork": fork,
        "stats": stats,
        "timeline": timeline,
    }


@pytest.fixture(scope="module")
def charted(stack: tuple[DevStack, str]) -> dict[str, Any]:
    return charted_session(*stack)


def test_the_numbers_of_a_session_with_llm_calls_agree(
    stack: tuple[DevStack, str], page: Any, charted: dict[str, Any]
) -> None:
    dev, key = stack
    stats = charted["stats"]
    usage = stats["usage"]
    assert stats["llm_calls"] == 3 and usage["unpriced_calls"] == 1
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{charted['id']}")
    expect(page.get_by_test_id("llm-calls")).to_have_text("3")
    expect(page.get_by_test_id("tokens-used")).to_have_text(f"{stats['total_tokens']:,}")
    cost = f"${usage['cost_usd']:.2f}"
    expect(page.get_by_test_id("session-cost")).to_have_text(f"{cost} + 1 unpriced")
    # one cost figure: the usage chart's cumulative cost is the session's cost
    expect(page.get_by_test_id("usage-total")).to_have_text(cost)
    total = float(page.get_by_test_id("cumulative-cost").get_attribute("data-total"))
    assert abs(total - usage["cost_usd"]) < 1e-6
    assert "Cost so far" not in page.get_by_role("table", name="timeline").inner_text()
    # a call's snapshot shows its usage; the fork that restates it records no call of its own
    slow = charted["calls"][HOSTILE_LABEL]
    page.goto(f"{dev.base}/#/sessions/{charted['id']}/snapshots/{slow['id']}")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Latency2.40 s")
    expect(facts).to_contain_text(f"Cost${slow['usage']['cost_usd']:.2f}")
    page.goto(
        f"{dev.base}/#/sessions/{charted['id']}/snapshots/{charted['fork']['snapshot']['id']}"
    )
    expect(page.get_by_test_id("snapshot-call")).to_have_text("none (it restates a snapshot)")


def test_context_over_time_marks_rollbacks_forks_and_the_limit(
    stack: tuple[DevStack, str], page: Any, charted: dict[str, Any]
) -> None:
    dev, key = stack
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{charted['id']}")
    chart = page.get_by_test_id("context-chart")
    chart.locator("svg[role=img]").wait_for()
    timeline = charted["timeline"]
    # one mark per snapshot; the rollback and the fork have their own
    expect(chart.locator("[data-snapshot-id]")).to_have_count(len(timeline))
    expect(chart.locator(".point-rollback")).to_have_count(1)
    expect(chart.locator(".point-fork")).to_have_count(1)
    rollback = chart.locator(f".point-rollback[data-snapshot-id='{charted['rollback']['id']}']")
    expect(rollback).to_have_count(1)
    expect(chart.locator(".link-rollback")).to_have_count(1)  # back to the snapshot it restores
    expect(chart.locator(".link-fork")).to_have_count(1)
    # one line per task that has snapshots (planner, writer, the fork)
    tasks = {e["task_id"] for e in timeline}
    expect(chart.locator("path.task-line")).to_have_count(len(tasks))
    # the model's limit: claude-sonnet-4-5's 200,000 tokens, noted; drawn to scale on request
    note = chart.get_by_test_id("context-limit-note")
    expect(note).to_contain_text("claude-sonnet-4-5")
    expect(note).to_contain_text("200,000")
    expect(chart.get_by_test_id("context-limit")).to_have_count(0)
    note.get_by_label("draw the limit to scale").check()
    expect(chart.get_by_test_id("context-limit")).to_have_count(1)
    expect(chart.get_by_test_id("context-limit")).to_contain_text("limit 200,000")
    # the legend names the tasks as text, and a point's tooltip says what it is
    expect(chart.locator(".chart-legend")).to_contain_text(HOSTILE_TASK)
    slow = charted["calls"][HOSTILE_LABEL]
    chart.locator(f"[data-snapshot-id='{slow['id']}']").hover()
    tip = chart.get_by_test_id("chart-tooltip")
    expect(tip).to_contain_text(HOSTILE_LABEL)
    expect(tip).to_contain_text(HOSTILE_TASK)
    expect(tip).to_contain_text(f"{slow['token_total']:,}")
    no_script_ran(page)
    shot(page, "chart-context.png")
    # a point opens its snapshot (by keyboard too)
    rollback.focus()
    page.keyboard.press("Enter")
    # the route changes on the next frame: wait for it (up to expect's timeout), not read at once
    expect(page).to_have_url(re.compile(rf".*/snapshots/{re.escape(charted['rollback']['id'])}$"))


def test_usage_over_time_stacks_each_calls_tokens_and_sums_the_cost(
    stack: tuple[DevStack, str], page: Any, charted: dict[str, Any]
) -> None:
    dev, key = stack
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{charted['id']}")
    chart = page.get_by_test_id("usage-chart")
    bars = chart.locator("g.call-bar")
    expect(bars).to_have_count(3)
    first = charted["calls"]["first call"]
    bar = chart.locator(f"g.call-bar[data-snapshot-id='{first['id']}']")
    # input, cache read and output for this call (no cache write): three stacked parts
    expect(bar.locator("rect.k-input")).to_have_count(1)
    expect(bar.locator("rect.k-cache-read")).to_have_count(1)
    expect(bar.locator("rect.k-cache-write")).to_have_count(0)
    expect(bar.locator("rect.k-output")).to_have_count(1)
    heights = {
        kind: bar.locator(f"rect.k-{kind}").bounding_box()["height"]
        for kind in ("input", "cache-read", "output")
    }
    assert abs(heights["cache-read"] / heights["input"] - 5) < 0.2  # 5000 vs 1000 tokens
    assert abs(heights["input"] / heights["output"] - 5) < 0.5  # 1000 vs 200
    # the unpriced call is marked, not counted as $0
    expect(chart.locator("text.unpriced")).to_have_count(1)
    expect(chart.locator(".chart-legend")).to_contain_text("1 unpriced call")
    slow = charted["calls"][HOSTILE_LABEL]
    chart.locator(f"g.call-bar[data-snapshot-id='{slow['id']}']").hover()
    tip = chart.get_by_test_id("chart-tooltip")
    expect(tip).to_contain_text(HOSTILE_LABEL)
    expect(tip).to_contain_text("cache write800")
    expect(tip).to_contain_text("latency2.40 s")
    no_script_ran(page)
    shot(page, "chart-usage.png")


def test_the_timing_waterfall_draws_tasks_and_calls_and_marks_the_slowest(
    stack: tuple[DevStack, str], page: Any, charted: dict[str, Any]
) -> None:
    dev, key = stack
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{charted['id']}")
    chart = page.get_by_test_id("waterfall")
    chart.get_by_role("table").wait_for()
    # four tasks (research, the planner, the writer, the fork) and three LLM calls
    expect(chart.locator(".wf-row.wf-task")).to_have_count(4)
    expect(chart.locator(".wf-row.wf-call")).to_have_count(3)
    calls = charted["calls"]
    slowest = chart.get_by_test_id("slowest-call")
    expect(slowest).to_have_attribute("data-snapshot-id", calls[HOSTILE_LABEL]["id"])
    expect(slowest).to_contain_text("slowest")
    expect(slowest).to_contain_text(HOSTILE_LABEL)
    expect(slowest.locator(".wf-duration")).to_have_text("2.40 s")
    expect(chart.locator("figcaption")).to_contain_text("Slowest call")

    def bar(label: str) -> dict[str, float]:
        row = chart.locator(f".wf-call[data-snapshot-id='{calls[label]['id']}']")
        return row.locator(".wf-bar").bounding_box()

    first, slow, draft = bar("first call"), bar(HOSTILE_LABEL), bar("draft")
    assert abs(slow["width"] / first["width"] - 2) < 0.05  # 2.4 s against 1.2 s
    assert abs(first["width"] / draft["width"] - 1.5) < 0.05  # 1.2 s against 0.8 s
    assert first["x"] < slow["x"] < draft["x"]  # in the order they ran
    assert first["x"] + first["width"] <= slow["x"] + 1  # one after the other
    # a task's bar spans its calls
    planner_id = calls["first call"]["task_id"]
    planner = chart.locator(f".wf-task[data-row-task='{planner_id}'] .wf-bar")
    expect(chart.locator(f".wf-task[data-row-task='{planner_id}']")).to_contain_text(HOSTILE_TASK)
    box = planner.bounding_box()
    assert box["x"] <= first["x"] + 1 and box["x"] + box["width"] >= slow["x"] + slow["width"] - 1
    chart.locator(f".wf-call[data-snapshot-id='{calls[HOSTILE_LABEL]['id']}'] .wf-bar").hover()
    tip = chart.get_by_test_id("chart-tooltip")
    expect(tip).to_contain_text(HOSTILE_LABEL)
    expect(tip).to_contain_text("latency2.40 s")
    no_script_ran(page)
    shot(page, "chart-timing.png")
    shot(page, "session-charts.png")


def test_sessions_have_sparklines_of_their_activity(
    stack: tuple[DevStack, str], page: Any, charted: dict[str, Any]
) -> None:
    dev, key = stack
    sign_in(page, dev.base, key)
    row = page.locator(f"tr[data-session-id='{charted['id']}']")
    expect(row.get_by_role("link")).to_have_text(HOSTILE_SESSION)  # the name, as text
    spark = row.get_by_test_id("sparkline")
    spark.wait_for()
    counts = [int(n) for n in spark.get_attribute("data-counts").split(",")]
    assert counts == charted_counts(Http(dev.base, key), charted["id"])
    assert sum(counts) == len(charted["timeline"])
    assert spark.locator("rect.spark-bar").count() == sum(1 for n in counts if n)
    assert f"{sum(counts)} snapshots from" in spark.get_attribute("aria-label")
    no_script_ran(page)
    shot(page, "sessions-sparklines.png")


def charted_counts(api: Http, session_id: str) -> list[int]:
    return list(api("GET", f"/v1/sessions/{session_id}/stats")[1]["activity"]["snapshots"])


def test_the_readme_screenshot_of_a_session_with_charts(
    stack: tuple[DevStack, str], page: Any
) -> None:
    """The charted run with plain names, for docs/dashboard-charts.png."""
    dev, key = stack
    run = charted_session(dev, key, "research agent", "planner", "plan the search")
    sign_in(page, dev.base, key)
    page.goto(f"{dev.base}/#/sessions/{run['id']}")
    page.get_by_test_id("slowest-call").wait_for()
    page.get_by_test_id("usage-chart").locator("g.call-bar").first.wait_for()
    shot(page, "readme-session-charts.png")


def test_screenshots_were_kept() -> None:
    """docs/ carries one of each; the README shows them."""
    readme = (ROOT / "README.md").read_text()
    for name in ("dashboard-session.png", "dashboard-diff.png", "dashboard-charts.png"):
        assert (ROOT / "docs" / name).exists() and f"docs/{name}" in readme
