"""Checkpoints on both backends: put, writes, reads, pages, and the whole-thread operations
(delete_thread, copy_thread, prune, delete_runs) that LangGraph's base class defines."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kontex.domain.errors import InvalidInput, NotFound
from kontex.domain.models import ContextBundle, SnapshotBase
from kontex.ports import CheckpointListing, CheckpointRow, CheckpointWrite
from kontex.services import checkpoints, keys, sessions, snapshots
from kontex.services.deps import Deps


@pytest.fixture
def account(deps: Deps) -> str:
    return keys.create_key(deps, "tests")[0].account_id


def row(
    thread: str, checkpoint_id: str, parent: str | None = None, ns: str = "", **meta: Any
) -> CheckpointRow:
    return CheckpointRow(
        thread_id=thread,
        ns=ns,
        checkpoint_id=checkpoint_id,
        parent_id=parent,
        session_id="",
        snapshot_id="",
        metadata=meta,
        run_id=meta.get("run_id"),
        created_at=None,  # type: ignore[arg-type]  (set by put)
    )


def state(*texts: str) -> ContextBundle:
    return ContextBundle.model_validate(
        {
            "messages": [{"role": "user", "content": t} for t in texts],
            "files": [{"path": "langgraph/channels/x", "content": "|".join(texts)}],
        }
    )


def write(task: str, idx: int, value: str) -> CheckpointWrite:
    return CheckpointWrite(task, idx, "ch", f'"{value}"')


def texts(found: checkpoints.Checkpoint) -> list[Any]:
    return [m.content for m in found.bundle.messages]


def test_put_then_get_latest_and_by_id_with_writes(deps: Deps, account: str) -> None:
    first, snap = checkpoints.put(deps, account, row("t", "01", source="input"), state("a"))
    # the second is a delta over the first's snapshot: only the new message is sent
    second, _ = checkpoints.put(
        deps,
        account,
        row("t", "02", "01", source="loop"),
        state("b"),
        base=SnapshotBase(snapshot_id=snap.id),
    )
    checkpoints.put_writes(deps, account, ("t", "", "02"), [write("task1", 0, "v")], False)
    checkpoints.put_writes(deps, account, ("t", "", "02"), [write("task1", 0, "other")], False)
    latest = checkpoints.get(deps, account, "t", "", None)
    assert latest.row.checkpoint_id == "02" and latest.row.parent_id == "01"
    assert texts(latest) == ["a", "b"]
    assert [f.path for f in latest.bundle.files] == ["langgraph/channels/x"]
    assert [w.value for w in latest.writes] == ['"v"']  # a write is stored once
    checkpoints.put_writes(deps, account, ("t", "", "02"), [write("task1", 0, "new")], True)
    assert [w.value for w in checkpoints.get(deps, account, "t", "", "02").writes] == ['"new"']
    assert texts(checkpoints.get(deps, account, "t", "", "01")) == ["a"]
    # an ordinary session, task and snapshots
    session = sessions.get_session(deps, account, first.session_id)
    assert session.metadata == {"checkpoints": {"thread_id": "t"}}
    assert snapshots.read_latest(deps, account, latest.snapshot.task_id)[0].id == second.snapshot_id


def test_a_foreign_account_sees_no_thread(deps: Deps, account: str) -> None:
    checkpoints.put(deps, account, row("mine", "01"), state("secret"))
    stranger = keys.create_key(deps, "stranger")[0].account_id
    with pytest.raises(NotFound):
        checkpoints.get(deps, stranger, "mine", "", None)
    assert checkpoints.page(deps, stranger, CheckpointListing(10))[0] == []
    # writes of the stranger go to a thread of the stranger's own (as a put would)
    checkpoints.put_writes(deps, stranger, ("mine", "", "01"), [write("t", 0, "x")], False)
    assert checkpoints.get(deps, account, "mine", "", None).writes == []
    checkpoints.delete_thread(deps, stranger, "mine")
    assert texts(checkpoints.get(deps, account, "mine", "", None)) == ["secret"]


def test_pages_newest_first_with_before_filter_and_cursor(deps: Deps, account: str) -> None:
    for i in range(7):
        checkpoints.put(
            deps,
            account,
            row("p", f"{i:02}", step=i, kind="even" if i % 2 == 0 else "odd"),
            state(str(i)),
        )
    checkpoints.put(deps, account, row("p", "00", ns="child"), state("c"))
    found, cursor = checkpoints.page(deps, account, CheckpointListing(3, "p", ""))
    assert [c.row.checkpoint_id for c in found] == ["06", "05", "04"] and cursor
    rest, end = checkpoints.page(deps, account, CheckpointListing(10, "p", ""), cursor=cursor)
    assert [c.row.checkpoint_id for c in rest] == ["03", "02", "01", "00"] and end is None
    even, _ = checkpoints.page(deps, account, CheckpointListing(10, "p", ""), {"kind": "even"})
    assert [c.row.metadata["step"] for c in even] == [6, 4, 2, 0]
    older, _ = checkpoints.page(deps, account, CheckpointListing(10, "p", "", before="03"))
    assert [c.row.checkpoint_id for c in older] == ["02", "01", "00"]
    both, _ = checkpoints.page(deps, account, CheckpointListing(20, "p"))
    assert len(both) == 8  # every namespace
    with pytest.raises(InvalidInput):
        checkpoints.page(deps, account, CheckpointListing(10, "p"), cursor="not a cursor")


def test_delete_thread_purges_its_session(deps: Deps, account: str) -> None:
    made, _ = checkpoints.put(deps, account, row("gone", "01"), state("a"))
    checkpoints.put(deps, account, row("gone", "01", ns="sub"), state("b"))
    checkpoints.put(deps, account, row("kept", "01"), state("c"))
    checkpoints.delete_thread(deps, account, "gone")
    with pytest.raises(NotFound):
        checkpoints.get(deps, account, "gone", "", None)
    with pytest.raises(NotFound):
        sessions.get_session(deps, account, made.session_id)
    assert texts(checkpoints.get(deps, account, "kept", "", None)) == ["c"]
    checkpoints.put(deps, account, row("gone", "02"), state("again"))  # the id is free again
    assert texts(checkpoints.get(deps, account, "gone", "", None)) == ["again"]


def test_prune_keeps_each_namespaces_latest_with_its_writes(deps: Deps, account: str) -> None:
    for ns in ("", "child"):
        for i in range(3):
            checkpoints.put(deps, account, row("big", f"{i:02}", ns=ns), state(ns, str(i)))
        checkpoints.put_writes(deps, account, ("big", ns, "02"), [write("t", 0, ns)], False)
        checkpoints.put_writes(deps, account, ("big", ns, "00"), [write("t", 0, ns)], False)
    checkpoints.put(deps, account, row("other", "00"), state("o"))
    assert checkpoints.prune(deps, account, ["big"], "keep_latest") == 4
    left, _ = checkpoints.page(deps, account, CheckpointListing(20, "big"))
    assert sorted((c.row.ns, c.row.checkpoint_id, len(c.writes)) for c in left) == [
        ("", "02", 1),
        ("child", "02", 1),
    ]
    assert checkpoints.prune(deps, account, ["big"], "delete") == 2
    assert checkpoints.page(deps, account, CheckpointListing(20, "big"))[0] == []
    assert len(checkpoints.page(deps, account, CheckpointListing(20, "other"))[0]) == 1
    with pytest.raises(InvalidInput):
        checkpoints.prune(deps, account, ["big"], "everything")


def test_delete_runs_removes_only_their_checkpoints(deps: Deps, account: str) -> None:
    checkpoints.put(deps, account, row("r", "01", run_id="run-1"), state("a"))
    checkpoints.put(deps, account, row("r", "02", run_id="run-2"), state("b"))
    checkpoints.put(deps, account, row("r", "01", ns="n", run_id="run-1"), state("c"))
    assert checkpoints.delete_runs(deps, account, []) == 0
    assert checkpoints.delete_runs(deps, account, ["run-1", "nope"]) == 2
    left, _ = checkpoints.page(deps, account, CheckpointListing(20, "r"))
    assert [c.row.metadata["run_id"] for c in left] == ["run-2"]


def test_copy_thread_copies_content_ids_metadata_and_writes(deps: Deps, account: str) -> None:
    checkpoints.put(deps, account, row("src", "01", step=0), state("a"))
    checkpoints.put(deps, account, row("src", "02", "01", step=1), state("a", "b"))
    checkpoints.put(deps, account, row("src", "01", ns="sub"), state("s"))
    checkpoints.put_writes(deps, account, ("src", "", "02"), [write("t", 0, "w")], False)
    assert checkpoints.copy_thread(deps, account, "src", "dst") == 3
    source, _ = checkpoints.page(deps, account, CheckpointListing(20, "src"))
    copied, _ = checkpoints.page(deps, account, CheckpointListing(20, "dst"))
    assert [(c.row.ns, c.row.checkpoint_id, c.row.parent_id, c.row.metadata) for c in copied] == [
        (c.row.ns, c.row.checkpoint_id, c.row.parent_id, c.row.metadata) for c in source
    ]
    assert [texts(c) for c in copied] == [texts(c) for c in source]
    assert [[w.value for w in c.writes] for c in copied] == [
        [w.value for w in c.writes] for c in source
    ]
    assert {c.row.session_id for c in copied}.isdisjoint({c.row.session_id for c in source})
    checkpoints.delete_thread(deps, account, "src")  # the copy holds its own content
    assert texts(checkpoints.get(deps, account, "dst", "", None)) == ["a", "b"]
    assert checkpoints.copy_thread(deps, account, "missing", "dst2") == 0


def test_writes_may_come_before_their_checkpoint(deps: Deps, account: str) -> None:
    # LangGraph may send a step's writes while the put of its checkpoint is on its way
    checkpoints.put_writes(deps, account, ("early", "", "02"), [write("t", 0, "w")], False)
    checkpoints.put(deps, account, row("early", "01"), state("a"))
    checkpoints.put(deps, account, row("early", "02", "01"), state("a", "b"))
    found = checkpoints.get(deps, account, "early", "", None)
    assert [w.value for w in found.writes] == ['"w"']
    assert (
        len(
            {
                c.row.session_id
                for c in checkpoints.page(deps, account, CheckpointListing(5, "early"))[0]
            }
        )
        == 1
    )


def test_concurrent_first_puts_make_one_session(deps: Deps, account: str) -> None:
    errors: list[BaseException] = []

    def put(i: int) -> None:
        try:
            checkpoints.put(deps, account, row("race", f"{i:02}"), state(str(i)))
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    found, _ = checkpoints.page(deps, account, CheckpointListing(20, "race"))
    assert len(found) == 6 and len({c.row.session_id for c in found}) == 1
