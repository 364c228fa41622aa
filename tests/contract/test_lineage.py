"""Linear lineage under concurrency, on both databases: one chain per task, nothing lost."""

from __future__ import annotations

import threading
from typing import Any

from kontex.domain.models import ContextBundle
from kontex.services import keys, sessions, snapshots
from kontex.services.deps import Deps

WRITERS = 8
EACH = 25


def test_concurrent_writers_make_one_chain(deps: Deps) -> None:
    # Given one task and eight writers that each write 25 snapshots to it at once
    key, _ = keys.create_key(deps, "lineage")
    session = sessions.create_session(deps, key.account_id, "busy")
    task = sessions.create_task(deps, key.account_id, session.id, "contended")
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(EACH):
                bundle = ContextBundle.model_validate(
                    {"messages": [{"role": "user", "content": f"writer {n} step {i}"}]}
                )
                snapshots.create_snapshot(deps, key.account_id, task.id, f"{n}.{i}", bundle)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    # Then the task's snapshots form exactly one chain of 200, from its head back to the root
    everything: list[Any] = []
    cursor = None
    while True:
        page = snapshots.list_snapshots(deps, key.account_id, session.id, 100, cursor)
        everything += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(everything) == WRITERS * EACH
    by_id = {s.id: s for s in everything}
    parents = [s.parent_snapshot_id for s in everything]
    assert len(set(parents)) == len(parents)  # no parent has two children
    with deps.store.unit(write=False) as uow:
        found = uow.snapshots.head(key.account_id, task.id)
    assert found is not None
    head = found[0]
    walked = []
    current: Any = head
    while current is not None:
        walked.append(current.id)
        current = by_id.get(current.parent_snapshot_id) if current.parent_snapshot_id else None
    assert len(walked) == WRITERS * EACH
    assert sorted(s.label for s in everything) == sorted(
        f"{n}.{i}" for n in range(WRITERS) for i in range(EACH)
    )
