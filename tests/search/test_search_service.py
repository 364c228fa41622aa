"""The search use cases on a real store (SQLite and PostgreSQL), the offline embedder and
Qdrant local mode: what is embedded, redelivery, tenancy, purge, the query's answers."""

from __future__ import annotations

from typing import Any

import pytest

from kontex.domain.errors import InvalidInput
from kontex.domain.models import ContextBundle
from kontex.services import keys, search, sessions, snapshots
from kontex.services.deps import Deps


def _account(deps: Deps, label: str = "k") -> str:
    return keys.create_key(deps, label)[0].account_id


def _snapshot(deps: Deps, account: str, task: str, label: str, **bundle: Any) -> Any:
    return snapshots.create_snapshot(
        deps, account, task, label, ContextBundle.model_validate(bundle)
    )


@pytest.fixture
def world(search_deps: Deps) -> dict[str, Any]:
    account = _account(search_deps)
    session = sessions.create_session(search_deps, account, "auth refactor")
    task = sessions.create_task(search_deps, account, session.id, "fix login")
    first = _snapshot(
        search_deps,
        account,
        task.id,
        "read the token code",
        messages=[{"role": "user", "content": "Why does parse_jwt_claims reject valid tokens?"}],
        files=[{"path": "src/auth/jwt.py", "content": "def parse_jwt_claims(token): ..."}],
    )
    second = _snapshot(
        search_deps,
        account,
        task.id,
        "found the clock skew",
        messages=[
            {"role": "user", "content": "Why does parse_jwt_claims reject valid tokens?"},
            {"role": "assistant", "content": "The expiry check ignores clock skew; add leeway."},
        ],
        files=[{"path": "src/auth/jwt.py", "content": "def parse_jwt_claims(token): ..."}],
        tool_calls=[{"tool": "run_tests", "input": {"path": "tests/auth"}, "output": "3 passed"}],
    )
    return {"account": account, "session": session, "task": task, "snaps": [first, second]}


def test_a_snapshot_embeds_only_what_the_account_does_not_have_yet(
    search_deps: Deps, world: dict[str, Any]
) -> None:
    first, second = world["snaps"]
    one = search.embed_snapshot(search_deps, world["account"], first.id)
    two = search.embed_snapshot(search_deps, world["account"], second.id)
    assert one is not None and two is not None
    # first: label, the user message, the file; second holds those (but its own label) and
    # adds a reply and a tool call: 5 points, 3 of them new
    assert (one.points, one.written) == (3, 3)
    assert (two.points, two.written) == (5, 3)
    index = search_deps.search_ports()[1]
    assert index.count(world["account"]) == 6
    # each embedding is announced through the outbox
    embedded = [p for p in search_deps.events.published if p[0] == "snapshot.embedded"]  # type: ignore[attr-defined]
    assert [p[3]["snapshot_id"] for p in embedded] == [first.id, second.id]
    assert embedded[0][3]["points"] == 3


def test_redelivery_embeds_and_writes_nothing_again(
    search_deps: Deps, world: dict[str, Any]
) -> None:
    snap = world["snaps"][0]
    event = {
        "id": "evt_1",
        "type": "snapshot.created",
        "account_id": world["account"],
        "session_id": world["session"].id,
        "data": {"snapshot_id": snap.id},
    }
    assert search.handle_event(search_deps, event) == "embedded"
    index = search_deps.search_ports()[1]
    before = index.count()
    calls: list[int] = []
    real = search_deps.search_ports()[0]

    class Counting:
        name, dimensions, max_chars = real.name, real.dimensions, real.max_chars

        def embed_documents(self, texts: Any) -> Any:
            calls.append(len(texts))
            return real.embed_documents(texts)

        def embed_query(self, text: str) -> Any:
            return real.embed_query(text)

    search_deps.embedder = Counting()
    assert search.handle_event(search_deps, event) == "embedded"
    assert index.count() == before
    assert calls == []  # nothing was embedded twice


def test_the_query_finds_identifiers_prose_and_files(
    search_deps: Deps, world: dict[str, Any]
) -> None:
    for snap in world["snaps"]:
        search.embed_snapshot(search_deps, world["account"], snap.id)
    account = world["account"]
    first, second = world["snaps"]

    # both snapshots hold the question and the file: both are found, newest first
    found = search.search(search_deps, account, "parse_jwt_claims").results
    assert [h.snapshot_id for h in found] == [second.id, first.id]
    assert found[0].snippet.source in ("message", "file")

    found = search.search(search_deps, account, "token expiry leeway for clock drift").results
    assert found[0].snapshot_id == second.id
    assert found[0].snippet.role == "assistant"
    assert found[0].snippet.position == 1
    assert found[0].session_id == world["session"].id
    assert found[0].task_id == world["task"].id
    assert found[0].label == "found the clock skew"

    only_tools = search.search(search_deps, account, "run_tests", source="tool_call").results
    assert [h.snapshot_id for h in only_tools] == [second.id]
    assert only_tools[0].snippet.source == "tool_call"
    # one hit per snapshot, however many of its chunks match
    ids = [h.snapshot_id for h in search.search(search_deps, account, "jwt", limit=10).results]
    assert len(ids) == len(set(ids))


def test_another_account_never_gets_the_points(search_deps: Deps, world: dict[str, Any]) -> None:
    for snap in world["snaps"]:
        search.embed_snapshot(search_deps, world["account"], snap.id)
    other = _account(search_deps, "bob")
    assert search.search(search_deps, other, "parse_jwt_claims").results == []
    # not even when asking for the other account's session by id
    found = search.search(
        search_deps, other, "parse_jwt_claims", session_id=world["session"].id
    ).results
    assert found == []
    # an event naming the snapshot under another account embeds nothing
    event = {
        "type": "snapshot.created",
        "account_id": other,
        "session_id": world["session"].id,
        "data": {"snapshot_id": world["snaps"][0].id},
    }
    assert search.handle_event(search_deps, event) == "gone"
    assert search_deps.search_ports()[1].count(other) == 0


def test_a_purged_session_takes_its_points_along(search_deps: Deps, world: dict[str, Any]) -> None:
    account = world["account"]
    for snap in world["snaps"]:
        search.embed_snapshot(search_deps, account, snap.id)
    keep = sessions.create_session(search_deps, account, "other work")
    task = sessions.create_task(search_deps, account, keep.id, "t")
    kept = _snapshot(search_deps, account, task.id, "parse_jwt_claims elsewhere")
    search.embed_snapshot(search_deps, account, kept.id)

    sessions.purge_session(search_deps, account, world["session"].id)
    event = {
        "type": "session.purged",
        "account_id": account,
        "session_id": world["session"].id,
        "data": {"session_id": world["session"].id},
    }
    assert search.handle_event(search_deps, event) == "forgotten"
    found = search.search(search_deps, account, "parse_jwt_claims").results
    assert [h.snapshot_id for h in found] == [kept.id]
    # a late snapshot.created of the purged session finds nothing to embed
    late = {**event, "type": "snapshot.created", "data": {"snapshot_id": world["snaps"][0].id}}
    assert search.handle_event(search_deps, late) == "gone"


def test_an_empty_index_answers_an_empty_list_and_bad_queries_are_refused(
    search_deps: Deps,
) -> None:
    account = _account(search_deps)
    assert search.search(search_deps, account, "anything").results == []
    for bad in ({"q": " "}, {"q": "x" * 1001}, {"q": "x", "limit": 0}, {"q": "x", "limit": 51}):
        with pytest.raises(InvalidInput):
            search.search(search_deps, account, **bad)
    with pytest.raises(InvalidInput):
        search.search(search_deps, account, "x", source="everything")


def test_other_event_types_are_ignored(search_deps: Deps) -> None:
    for kind in ("session.updated", "task.updated", "snapshot.embedded", "something.new"):
        event = {"type": kind, "account_id": "acct_x", "session_id": "s", "data": {}}
        assert search.handle_event(search_deps, event) == "ignored"


def test_equal_scores_go_newest_first(search_deps: Deps) -> None:
    account = _account(search_deps)
    session = sessions.create_session(search_deps, account, "s")
    made = []
    for name in ("a", "b", "c"):
        task = sessions.create_task(search_deps, account, session.id, name)
        made.append(_snapshot(search_deps, account, task.id, "rotate the signing keys"))
        search.embed_snapshot(search_deps, account, made[-1].id)
    found = search.search(search_deps, account, "rotate the signing keys", mode="dense").results
    assert [h.snapshot_id for h in found] == [s.id for s in reversed(made)]


def test_long_text_is_cut_into_chunks_that_fit_the_model(search_deps: Deps) -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    parts = search.chunks(text, 700)
    assert all(len(p) <= 700 for p in parts)
    assert len(parts) == search.MAX_CHUNKS_PER_PIECE
    assert parts[0].startswith("word0 ") and "word1" in parts[0]
    # consecutive chunks overlap, so a phrase across a cut is still whole in one of them
    assert parts[1].split()[0] in parts[0]


def test_the_events_the_snapshot_use_cases_publish_are_embedded(
    search_deps: Deps, world: dict[str, Any]
) -> None:
    # exactly what create_snapshot announced (its data is the snapshot's metadata)
    published = [p for p in search_deps.events.published if p[0] == "snapshot.created"]  # type: ignore[attr-defined]
    assert len(published) == 2
    for kind, account, session, data in published:
        event = {"type": kind, "account_id": account, "session_id": session, "data": data}
        assert search.handle_event(search_deps, event) == "embedded"
    assert search_deps.search_ports()[1].count(world["account"]) == 6


def test_a_failed_embedding_keeps_what_was_written_and_the_retry_does_the_rest(
    search_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kontex.domain.errors import Transient

    account = _account(search_deps)
    session = sessions.create_session(search_deps, account, "s")
    task = sessions.create_task(search_deps, account, session.id, "t")
    messages = [
        {"role": "user", "content": f"message number {i} about topic {i}"} for i in range(5)
    ]
    snap = _snapshot(search_deps, account, task.id, "five messages", messages=messages)
    monkeypatch.setattr(search, "EMBED_SLICE", 2)
    real, index = search_deps.search_ports()
    calls: list[int] = []

    class FailingOnce:
        name, dimensions, max_chars = real.name, real.dimensions, real.max_chars

        def embed_documents(self, texts: Any) -> Any:
            calls.append(len(texts))
            if len(calls) == 2:
                raise Transient("Voyage AI is unavailable: RateLimitError")
            return real.embed_documents(texts)

        def embed_query(self, text: str) -> Any:
            return real.embed_query(text)

    search_deps.embedder = FailingOnce()
    with pytest.raises(Transient):
        search.embed_snapshot(search_deps, account, snap.id)
    assert index.count(account) == 2  # the first slice was written
    done = search.embed_snapshot(search_deps, account, snap.id)
    assert done is not None and (done.points, done.written) == (6, 4)
    assert calls == [2, 2, 2, 2]  # the retry embedded only what was missing
