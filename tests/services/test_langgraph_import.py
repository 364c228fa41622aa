"""`kontex migrate` indexes LangGraph threads written before the checkpoint API, on both
databases: the shape the old saver left (a thread-state document naming the session and the
namespaces' tasks, checkpoints as labelled snapshots, pending writes in the document or carried
by the child snapshot) becomes checkpoints, writes and namespaces; the document goes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kontex.domain.errors import NotFound
from kontex.domain.models import ContextBundle
from kontex.ports import CheckpointListing
from kontex.services import checkpoints, keys, sessions, snapshots, threads
from kontex.services.deps import Deps
from kontex.services.upgrade import import_langgraph_threads

DOC_ID = "thrd_lg-" + "a" * 40


def _state(checkpoint_id: str, step: int, carried: list[Any] | None = None) -> ContextBundle:
    stored = {"id": checkpoint_id, "metadata": {"json": {"step": step, "source": "loop"}}}
    files = [{"path": "langgraph/checkpoint.json", "content": json.dumps(stored)}]
    if carried is not None:
        files.append({"path": "langgraph/parent-writes.json", "content": json.dumps(carried)})
    return ContextBundle.model_validate(
        {"messages": [{"role": "user", "content": f"at {checkpoint_id}"}], "files": files}
    )


def _write(task: str, idx: int, value: str) -> list[Any]:
    return [task, idx, "ch", {"type": "json", "data": value}, ""]


@pytest.fixture
def legacy(deps: Deps) -> tuple[str, str]:
    account = keys.create_key(deps, "old saver")[0].account_id
    session = sessions.create_session(deps, account, "langgraph old")
    root = sessions.create_task(deps, account, session.id, "langgraph")
    child = sessions.create_task(deps, account, session.id, "sub")
    snapshots.create_snapshot(deps, account, root.id, "checkpoint 01", _state("01", -1))
    snapshots.create_snapshot(
        deps, account, root.id, "checkpoint 02 after 01", _state("02", 0, [_write("t1", 0, "a")])
    )
    snapshots.create_snapshot(deps, account, child.id, "checkpoint 01", _state("01", 5))
    snapshots.create_snapshot(deps, account, root.id, "a note, not a checkpoint", _state("x", 9))
    doc = {
        "kind": "langgraph",
        "thread_id": "old thread",
        "session_id": session.id,
        "tasks": {"": root.id, "sub": child.id},
        "writes": {"\u0000".join(["", "02"]): [_write("t2", 0, "b")]},
    }
    threads.save(deps, account, DOC_ID, json.dumps(doc))
    return account, session.id


def test_old_threads_are_indexed_once(deps: Deps, legacy: tuple[str, str]) -> None:
    account, session_id = legacy
    assert import_langgraph_threads(deps) == 1
    assert import_langgraph_threads(deps) == 0  # the document is gone: nothing left to do
    with pytest.raises(NotFound):
        threads.get(deps, account, DOC_ID)
    latest = checkpoints.get(deps, account, "old thread", "", None)
    assert (latest.row.checkpoint_id, latest.row.parent_id) == ("02", "01")
    assert latest.row.metadata == {"step": 0, "source": "loop"}
    assert latest.row.session_id == session_id
    # waiting in the document: the latest's; carried by 02 (its child): 01's
    assert [(w.task_id, json.loads(w.value)["data"]) for w in latest.writes] == [("t2", "b")]
    first = checkpoints.get(deps, account, "old thread", "", "01")
    assert [(w.task_id, json.loads(w.value)["data"]) for w in first.writes] == [("t1", "a")]
    found, _ = checkpoints.page(deps, account, CheckpointListing(10, "old thread"))
    assert sorted((c.row.ns, c.row.checkpoint_id) for c in found) == [
        ("", "01"),
        ("", "02"),
        ("sub", "01"),
    ]
    # and the thread goes on: the next checkpoint lands in the same session and task
    nxt = checkpoints.put(
        deps,
        account,
        found[0].row.__class__(
            "old thread", "", "03", "02", "", "", {}, None, latest.row.created_at
        ),
        ContextBundle.model_validate({"messages": [{"role": "user", "content": "at 03"}]}),
    )[0]
    assert nxt.session_id == session_id
