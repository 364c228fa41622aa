"""The proxy's admission from what its process knows (services/admission.py), on SQLite and
PostgreSQL: a key is trusted for the cache's time (a revoked one is refused after it), the
rate limit still answers 429 with the error shape while the uses are counted in the store
after the answer (exactly), and the session and task lookups are kept, bounded and aged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kontex.adapters.sql.keys import SqlKeys
from kontex.adapters.sqlite_store import SqliteStore
from kontex.proxy.app import ProxyApp
from kontex.services import keys, sessions
from kontex.services.admission import Admission
from tests.proxy.fake_anthropic import FakeAnthropic
from tests.proxy.served import proxy_stack

REQUEST = {
    "model": "claude-fake",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}


class Seconds:
    """A clock for the caches' age, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def upstream() -> Iterator[FakeAnthropic]:
    with FakeAnthropic().running() as fake:
        yield fake


def post(made: Any, **headers: str) -> httpx.Response:
    sent = {
        "x-kontex-api-key": made.key,
        "x-api-key": "sk-ant-upstream",
        "anthropic-version": "2023-06-01",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    with httpx.Client(base_url=made.served.url, timeout=30) as client:
        answer = client.post("/proxy/v1/messages", headers=sent, content=json.dumps(REQUEST))
    made.served.settle()  # the captures and the counts handed off are written
    return answer


def counted(store: Any, key_id: str) -> int:
    """The key's requests counted in the store, read outside the store API."""
    sql = "SELECT COALESCE(SUM(hits), 0) AS n FROM rate_limits WHERE key_id = ? AND kind = ?"
    if isinstance(store, SqliteStore):
        return int(store.raw().execute(sql, [key_id, "requests"]).fetchone()[0])
    with store.pool.connection() as conn:
        return int(conn.execute(sql.replace("?", "%s"), [key_id, "requests"]).fetchone()["n"])


def test_a_revoked_key_is_served_within_the_ttl_and_refused_after(
    store: Any, tmp_path: Any, upstream: FakeAnthropic
) -> None:
    clock = Seconds()
    app = ProxyApp(admission_clock=clock)
    env = {"ANTHROPIC_API_URL": upstream.url, "KONTEX_PROXY_ADMISSION_CACHE_SECONDS": "30"}
    with proxy_stack(app, store, tmp_path, env, "revoked") as made:
        assert post(made).status_code == 200
        (key,) = keys.list_keys(made.deps, made.account_id)
        keys.revoke_key(made.deps, made.account_id, key.id)
        clock.now += 29
        assert post(made).status_code == 200  # trusted for the cache's time
        clock.now += 1
        refused = post(made)
        assert refused.status_code == 401
        assert refused.json()["error"] == "unauthorized"
        clock.now += 100  # not trusted again
        assert post(made).status_code == 401
        assert len(upstream.requests) == 2


def test_no_cache_refuses_a_revoked_key_at_once(
    store: Any, tmp_path: Any, upstream: FakeAnthropic
) -> None:
    env = {"ANTHROPIC_API_URL": upstream.url, "KONTEX_PROXY_ADMISSION_CACHE_SECONDS": "0"}
    with proxy_stack(ProxyApp(), store, tmp_path, env, "uncached") as made:
        assert post(made).status_code == 200
        (key,) = keys.list_keys(made.deps, made.account_id)
        keys.revoke_key(made.deps, made.account_id, key.id)
        assert post(made).status_code == 401


def test_over_its_limit_a_key_gets_the_429_and_every_use_is_counted_after_the_answer(
    store: Any, tmp_path: Any, upstream: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    found: list[str] = []
    find_and_hit = SqlKeys.find_and_hit

    def spied(self: Any, *args: Any) -> Any:
        found.append(args[1])
        return find_and_hit(self, *args)

    monkeypatch.setattr(SqlKeys, "find_and_hit", spied)
    env = {"ANTHROPIC_API_URL": upstream.url, "KONTEX_RATE_LIMIT_PER_HOUR": "3"}
    with proxy_stack(ProxyApp(), store, tmp_path, env, "limited") as made:
        answers = [post(made, x_kontex_session_id=made.session.id) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[3].json()
        assert refused["error"] == "rate_limit_exceeded"
        assert refused["details"] == {"limit": 3, "window_seconds": 3600}
        assert int(answers[3].headers["retry-after"]) >= 1
        assert len(upstream.requests) == 3  # nothing forwarded past the limit
        assert found == ["requests"]  # the store was asked for the first call only
        (key,) = keys.list_keys(made.deps, made.account_id)
        assert counted(store, key.id) == 5  # the others counted after their answers, exactly


def test_the_store_count_of_other_processes_limits_this_one(
    store: Any, tmp_path: Any, upstream: FakeAnthropic
) -> None:
    """The uses counted elsewhere reach this process with each count it writes."""
    env = {"ANTHROPIC_API_URL": upstream.url, "KONTEX_RATE_LIMIT_PER_HOUR": "4"}
    with proxy_stack(ProxyApp(), store, tmp_path, env, "shared") as made:
        assert post(made).status_code == 200  # from the store: count 1
        assert post(made).status_code == 200  # from memory: 2, counted after the answer
        (key,) = keys.list_keys(made.deps, made.account_id)
        with store.unit() as uow:  # another process's uses
            uow.keys.hit(key.id, "requests", window(made), 7, 1)
        assert post(made).status_code == 200  # known 2, +1: 3 (the store says 4 after it)
        assert post(made).status_code == 429  # 4 + 1
        assert counted(store, key.id) == 5


def window(made: Any) -> int:
    now = int(made.deps.clock().timestamp())
    return now - now % 3600


def test_a_named_session_and_a_task_are_looked_up_once(
    store: Any, tmp_path: Any, upstream: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[str] = []
    get_session = sessions.get_session

    def spied(deps: Any, account_id: str, session_id: str) -> Any:
        looked.append(session_id)
        return get_session(deps, account_id, session_id)

    env = {"ANTHROPIC_API_URL": upstream.url}
    with proxy_stack(ProxyApp(), store, tmp_path, env, "lookups") as made:
        task = sessions.create_task(made.deps, made.account_id, made.session.id, "t")
        monkeypatch.setattr(sessions, "get_session", spied)
        for _ in range(3):
            answer = post(made, x_kontex_session_id=made.session.id, x_kontex_task_id=task.id)
            assert answer.status_code == 200
        assert looked == [made.session.id]
        # a task of another session is still refused (from memory too)
        other = sessions.create_session(made.deps, made.account_id, "other")
        assert post(made, x_kontex_session_id=other.id, x_kontex_task_id=task.id).status_code == 404
        # a name: made once, then found in memory
        names = [post(made, x_kontex_session_id="run-7").status_code for _ in range(3)]
        assert names == [200, 200, 200]
        listed = sessions.list_sessions(made.deps, made.account_id).items
        named = [s for s in listed if s.name == "run-7"]
        assert len(named) == 1


def test_the_lookups_age_and_are_bounded() -> None:
    clock = Seconds()
    known = Admission(30, clock=clock, max_entries=2)
    known.remember_session("acct", "a", "sess_a")
    known.remember_session("acct", "b", "sess_b")
    known.remember_task("acct", "task_1", "sess_a")
    assert known.session("acct", "a") == "sess_a"
    assert known.session("other", "a") is None  # per account
    clock.now += 1
    known.remember_session("acct", "c", "sess_c")  # the oldest made goes
    assert known.session("acct", "a") is None and known.session("acct", "b") == "sess_b"
    clock.now += 29  # a purged session is not served from memory past the cache's time
    assert known.session("acct", "b") is None and known.task("acct", "task_1") is None
    assert known.session("acct", "c") == "sess_c"
    off = Admission(0, clock=clock)
    off.remember_session("acct", "a", "sess_a")
    assert off.session("acct", "a") is None


def test_a_secret_not_fetched_yet_is_fetched_on_a_thread(store: Any) -> None:
    """On AWS the keys' secret comes from Secrets Manager on first use: not on the event loop."""
    from kontex.services.admission import Miss
    from kontex.services.deps import Deps

    fetched: list[bool] = []

    def secret() -> bytes:
        fetched.append(True)
        return b"s"

    deps = Deps(store=store, blobs=None, api_key_secret=secret)  # type: ignore[arg-type]
    with pytest.raises(Miss):
        Admission(30).key(deps, "kontex_" + "a" * 43, "requests", 10, store=False)
    assert fetched == []
