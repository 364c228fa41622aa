"""Each distinct piece of content is embedded once per account and mapped back to the snapshots
that hold it; serialised framework state, base64 and binary are never searched (issue 23).
On both databases, with the offline model and Qdrant local mode."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Sequence
from typing import Any

import pytest

from kontex.domain.models import ContextBundle
from kontex.ports import CheckpointRow
from kontex.services import checkpoints, keys, search, sessions, snapshots
from kontex.services.deps import Deps


class Counting:
    """The real embedder, recording every text it is given."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.name, self.dimensions, self.max_chars = real.name, real.dimensions, real.max_chars
        self.texts: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return self.real.embed_documents(texts)  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.real.embed_query(text)  # type: ignore[no-any-return]


@pytest.fixture
def counting(search_deps: Deps) -> Counting:
    made = Counting(search_deps.search_ports()[0])
    search_deps.embedder = made
    return made


def _account(deps: Deps, label: str = "k") -> str:
    return keys.create_key(deps, label)[0].account_id


def _task(deps: Deps, account: str, name: str) -> Any:
    session = sessions.create_session(deps, account, name)
    return sessions.create_task(deps, account, session.id, "work")


def _snapshot(deps: Deps, account: str, task: Any, label: str, **bundle: Any) -> Any:
    made = snapshots.create_snapshot(
        deps, account, task.id, label, ContextBundle.model_validate(bundle)
    )
    return made


def _changes(deps: Deps, account: str, session_id: str) -> int:
    """The rows of search_changes of the session."""
    with deps.store.unit(write=False) as uow:
        points = uow.search_changes.points_of(account, session_id)
        return len(uow.search_changes.changes(account, sorted(points), session_id))


NATO = ("alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november")  # fmt: skip
SHARED = "The deploy failed: ECONNREFUSED from the payments-db replica during the migration."


def test_content_shared_by_two_snapshots_is_embedded_once_and_both_are_found(
    search_deps: Deps, counting: Counting
) -> None:
    account = _account(search_deps)
    made = []
    for name in ("monday run", "tuesday run"):
        task = _task(search_deps, account, name)
        made.append(
            _snapshot(
                search_deps,
                account,
                task,
                f"{name} failed",
                messages=[{"role": "user", "content": SHARED}],
                files=[{"path": "deploy/log.txt", "content": "ECONNREFUSED payments-db:5432"}],
            )
        )
        search.embed_snapshot(search_deps, account, made[-1].id)
    # the message and the file once, each snapshot's own label once
    assert sorted(counting.texts) == sorted(
        [SHARED, "deploy/log.txt\nECONNREFUSED payments-db:5432", "monday run failed",
         "tuesday run failed"]
    )  # fmt: skip
    assert search_deps.search_ports()[1].count(account) == 4
    found = search.search(search_deps, account, "ECONNREFUSED payments-db replica").results
    assert [h.snapshot_id for h in found] == [made[1].id, made[0].id]  # newest first
    assert {h.snippet.text for h in found} <= {
        SHARED,
        "deploy/log.txt\nECONNREFUSED payments-db:5432",
    }
    # each session sees its own
    only = search.search(search_deps, account, "ECONNREFUSED", session_id=made[0].session_id)
    assert [h.snapshot_id for h in only.results] == [made[0].id]
    only = search.search(search_deps, account, "ECONNREFUSED", task_id=made[1].task_id)
    assert [h.snapshot_id for h in only.results] == [made[1].id]


def test_a_sliding_window_snapshot_embeds_only_its_new_message(
    search_deps: Deps, counting: Counting
) -> None:
    account = _account(search_deps)
    task = _task(search_deps, account, "agent")
    messages = [
        {"role": "user" if i % 2 else "assistant", "content": f"step {i}: checked the {w} shard"}
        for i, w in enumerate(NATO)
    ]
    window = 5
    made = []
    for i in range(len(messages)):
        counting.texts.clear()
        made.append(
            _snapshot(
                search_deps,
                account,
                task,
                "agent step",
                messages=messages[max(0, i + 1 - window) : i + 1],
            )
        )
        done = search.embed_snapshot(search_deps, account, made[-1].id)
        assert done is not None
        if i == 0:
            assert counting.texts == ["agent step", messages[0]["content"]]
        else:  # the label is there already: only the one new message
            assert counting.texts == [messages[i]["content"]], i
            assert done.written == 1 and done.points == min(i + 1, window) + 1
    # the store keeps where content enters and leaves the chain: what changed, not the window
    # again for every snapshot (13 entries and 9 exits, plus the first snapshot's 2)
    assert _changes(search_deps, account, task.session_id) == 2 + 13 + 9
    # message 3 is held by snapshots 3..7 only: those, newest first, and none after it left
    found = search.search(search_deps, account, "delta", limit=20, mode="sparse").results
    assert [h.snapshot_id for h in found] == [s.id for s in reversed(made[3:8])]
    assert {h.snippet.text for h in found} == {messages[3]["content"]}
    assert found[0].snippet.position == 3  # where it came in
    # the last snapshot is found first by its own message
    assert search.search(search_deps, account, "november").results[0].snapshot_id == made[-1].id


def test_an_enriched_snapshot_is_compared_with_its_child_again(search_deps: Deps) -> None:
    account = _account(search_deps)
    task = _task(search_deps, account, "capture")
    first = _snapshot(
        search_deps, account, task, "call", messages=[{"role": "user", "content": "q"}]
    )
    second = _snapshot(
        search_deps, account, task, "call", messages=[{"role": "user", "content": "q"}]
    )
    for s in (first, second):
        search.embed_snapshot(search_deps, account, s.id)
    # the first gets its answer after the second was embedded: the second does not hold it
    snapshots.enrich(
        search_deps, account, first.id,
        {"messages": [{"role": "user", "content": "q"},
                      {"role": "assistant", "content": "the answer is quorum_lost"}]},
    )  # fmt: skip
    event = {"type": "snapshot.enriched", "account_id": account, "data": {"snapshot_id": first.id}}
    assert search.handle_event(search_deps, event) == "embedded"
    found = search.search(search_deps, account, "quorum_lost", limit=5).results
    assert [h.snapshot_id for h in found if "quorum_lost" in h.snippet.text] == [first.id]


def _b64(n: int) -> str:
    """``n`` random bytes in base64, the same for the same ``n``: unpadded runs are told from
    words by a heuristic that a rare random run escapes (about one 40-character run in 70), so
    the data is fixed rather than drawn anew each run."""
    return base64.b64encode(random.Random(n).randbytes(n)).decode()


def test_serialised_framework_state_is_never_returned(search_deps: Deps) -> None:
    """A LangGraph checkpoint as KontexSaver writes it (the messages, and every other channel a
    serialised file), and the same files written by a writer that does not mark them as state."""
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.checkpoint.base import empty_checkpoint

    from kontex_client.langgraph import KontexSaver

    account = _account(search_deps)
    saver = KontexSaver(base_url="http://127.0.0.1:9", api_key="unused")  # encodes only
    state = empty_checkpoint()
    state["channel_values"] = {
        "messages": [HumanMessage("why is the nightly_rollup job slow?"),
                     AIMessage("the nightly_rollup scans every partition")],
        "__pregel_tasks": [{"node": "agent", "args": {"step": 3}}],
        "branch:to:agent": None,
        "remaining_steps": 24,
    }  # fmt: skip
    config = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
    request, _ = saver._encode_put(config, state, {"source": "loop", "step": 1, "parents": {}})  # type: ignore[arg-type]
    files = request["files"]
    assert {f["path"] for f in files} >= {
        "langgraph/channels/__pregel_tasks",
        "langgraph/checkpoint.json",
    }
    assert '"msgpack"' in next(f["content"] for f in files if f["path"].endswith("__pregel_tasks"))
    row = CheckpointRow("t1", "", state["id"], None, "", "", {}, None, search_deps.clock())
    bundle = ContextBundle.model_validate({"messages": request["messages"], "files": files})
    _, marked = checkpoints.put(search_deps, account, row, bundle)
    # the same state written by hand, unmarked (no token count); the serialised channels under
    # other paths too (their content gives them away)
    task = _task(search_deps, account, "by hand")
    unmarked = [{"path": f["path"], "content": f["content"]} for f in files]
    unmarked += [
        {"path": f"state/{f['path'].rsplit('/', 1)[1]}.json", "content": f["content"]}
        for f in files
        if f["path"].startswith("langgraph/channels/")
    ]
    by_hand = _snapshot(search_deps, account, task, "by hand", files=unmarked)
    for s in (marked, by_hand):
        search.embed_snapshot(search_deps, account, s.id)

    for q in ("__pregel_tasks", "msgpack", "langgraph channels pregel", "channel_versions",
              "branch:to:agent", "remaining_steps"):  # fmt: skip
        for hit in search.search(search_deps, account, q, limit=20).results:
            assert hit.snippet.source != "file", (q, hit.snippet)
            assert "msgpack" not in hit.snippet.text and "pregel" not in hit.snippet.text
    found = search.search(search_deps, account, "nightly_rollup").results
    assert found[0].snapshot_id == marked.id and found[0].snippet.source == "message"


def test_base64_and_binary_are_taken_out(search_deps: Deps, counting: Counting) -> None:
    account = _account(search_deps)
    task = _task(search_deps, account, "encoded")
    blob, image = _b64(600), _b64(300)
    _snapshot(
        search_deps,
        account,
        task,
        "screenshot review",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "the login page renders blank"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": image}},
        ]}],
        tool_calls=[{"tool": "run_tests", "input": {"path": "tests/ui"},
                     "output": {"stdout": "12 passed", "artifact": blob}}],
        files=[
            {"path": "bin/core.dump", "content": "\x00\x01\x02ELF\x00\x00" + "\x07" * 50},
            {"path": "notes/trace.txt", "content": f"saw data:image/png;base64,{blob} twice"},
            {"path": "exports/big_state.json",  # longer than what is read of a text file
             "content": json.dumps({"type": "msgpack", "data": _b64(30_000)})},
        ],
        log_events=[{"type": "upload", "message": "uploaded screenshot", "data": {"png": image}}],
    )  # fmt: skip
    search.embed_snapshot(search_deps, account, _latest(search_deps, account, task).id)
    embedded = "\n".join(counting.texts)
    assert blob not in embedded and image not in embedded and "\x00" not in embedded
    assert "core.dump" not in embedded  # a binary file is not searched at all
    assert "big_state" not in embedded  # nor a file that is all serialised state
    for text in ("the login page renders blank", "12 passed", "saw data:image/png;base64,",
                 "uploaded screenshot"):  # fmt: skip
        assert text in embedded, text
    assert search.search(search_deps, account, blob[:40], mode="sparse").results == []
    for hit in search.search(search_deps, account, blob[:40], limit=20).results:  # dense: near
        assert blob[:40] not in hit.snippet.text
    hit = search.search(search_deps, account, "run_tests 12 passed", source="tool_call").results[0]
    assert blob not in hit.snippet.text and "12 passed" in hit.snippet.text


def _latest(deps: Deps, account: str, task: Any) -> Any:
    return snapshots.read_latest(deps, account, task.id)[0]


def test_a_purge_keeps_the_other_sessions_hits_for_shared_content(search_deps: Deps) -> None:
    account = _account(search_deps)
    purged, kept = _task(search_deps, account, "purged"), _task(search_deps, account, "kept")
    reply = {"role": "assistant", "content": "only here: rotate_kms_key"}
    gone = _snapshot(search_deps, account, purged, "first",
                     messages=[{"role": "user", "content": SHARED}, reply])  # fmt: skip
    stays = _snapshot(search_deps, account, kept, "second",
                      messages=[{"role": "user", "content": SHARED}])  # fmt: skip
    for s in (gone, stays):
        search.embed_snapshot(search_deps, account, s.id)
    index = search_deps.search_ports()[1]
    assert index.count(account) == 4  # two labels, the shared message, the reply

    sessions.purge_session(search_deps, account, gone.session_id)
    event = {"type": "session.purged", "account_id": account,
             "data": {"session_id": gone.session_id}}  # fmt: skip
    assert search.handle_event(search_deps, event) == "forgotten"
    assert search.handle_event(search_deps, event) == "forgotten"  # a redelivery: nothing more
    # what only the purged session held is gone from the index; the shared message stays
    assert index.count(account) == 2
    found = search.search(search_deps, account, "ECONNREFUSED payments-db replica").results
    assert [h.snapshot_id for h in found] == [stays.id]
    assert all(h.snapshot_id == stays.id for h in
               search.search(search_deps, account, "rotate_kms_key").results)  # fmt: skip


def test_encoded_data_is_told_from_words() -> None:
    # unpadded random base64 is told by how it mixes letter cases and digits, a heuristic: a
    # rare random run reads as words (seeded here, so the test gives the same answer each run)
    rng = random.Random(23)
    runs = [base64.b64encode(rng.randbytes(48)).decode() for _ in range(500)]
    runs += [base64.urlsafe_b64encode(rng.randbytes(40)).decode().rstrip("=") for _ in range(500)]
    assert sum(map(search.is_blob, runs)) >= 0.98 * len(runs)
    assert search.is_blob(_b64(47)) and search.is_blob("kA==")  # padded: always told
    for word in ("E11000DuplicateKeyErrorCollection", "parse_jwt_claims", "a" * 40,
                 "3b0c7a5255a84f0e9d4e6b7f5d1f2a903b0c7a52", "550e8400-e29b-41d4-a716-446655440000",
                 "middleware/ratelimit.go", "getUserProfileSettingsForAccount2"):  # fmt: skip
        assert not search.is_blob(word), word
    assert search.is_binary("\x00abc") and not search.is_binary("tabs\tand\nnewlines")
    envelope = {"type": "msgpack", "data": "gqR0eXBl"}
    assert search.clean(envelope) is None and search.clean({"type": "null", "data": ""}) is None
    assert search.clean({"note": "kept", "state": envelope}) == {"note": "kept"}
    assert search.dense_text("checkpoint 1f1effc7-4b85-67b1-8001-e8d970aad794 after x") == (
        "checkpoint  after x"
    )
    assert search.dense_text("toolu_01A09q90qw90lq917835lq9 said E11000") == "said E11000"


def test_the_text_kept_between_snapshots_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The searchable text of recent items is kept (a snapshot is compared with its parent,
    which holds most of it), by a digest, within a budget of characters."""
    monkeypatch.setattr(search, "CACHE_CHARS", 5_000)
    monkeypatch.setattr(search, "_CACHE", search.OrderedDict())
    monkeypatch.setattr(search, "_CACHED_CHARS", 0)
    for i in range(50):
        text = f"{i} " + "x" * 997
        assert search._cached(search._key("m", text), str, text) == text
        assert search._CACHED_CHARS <= 5_000
    assert len(search._CACHE) == 5 and all(len(k) == 16 for k in search._CACHE)


def test_a_snapshots_points_are_made_once_while_its_revision_stands(
    search_deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sliding window's snapshot is planned beside its parent, which was planned just before
    as a snapshot of its own: its points (the pieces cut and their ids made) are remembered by
    what they are made of, and made again once its content changes (an enrichment's revision),
    with the revision's content."""
    monkeypatch.setattr(search, "_HELD", search.OrderedDict())
    made: list[str] = []
    point_id = search.point_id

    def counted(account_id: str, source: str, text: str) -> str:
        made.append(text)
        return point_id(account_id, source, text)

    monkeypatch.setattr(search, "point_id", counted)
    account = _account(search_deps)
    task = _task(search_deps, account, "window")
    first = _snapshot(search_deps, account, task, "c1", messages=[{"role": "user", "content": "q"}])
    second = _snapshot(
        search_deps, account, task, "c2",
        messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    )  # fmt: skip
    search.embed_snapshot(search_deps, account, first.id)
    once = len(made)
    search.embed_snapshot(search_deps, account, second.id)  # beside its parent, the first
    assert len(made) - once == 3  # the second's own (label, q, a): not the first's again
    snapshots.enrich(
        search_deps, account, first.id,
        {"messages": [{"role": "user", "content": "q"},
                      {"role": "assistant", "content": "the answer is quorum_lost"}]},
    )  # fmt: skip
    before = len(made)
    event = {"type": "snapshot.enriched", "account_id": account, "data": {"snapshot_id": first.id}}
    assert search.handle_event(search_deps, event) == "embedded"
    assert "the answer is quorum_lost" in made[before:]  # the revision's, made anew
    assert len(search._HELD) <= search.HELD_SNAPSHOTS
