"""Delta writes on both backends: a snapshot written as its base plus what is new reads back
exactly as the full write of the composed bundle, with the same token total."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kontex.domain.errors import Conflict, NotFound
from kontex.domain.models import ContextBundle, SnapshotBase
from kontex.services import keys, sessions, snapshots
from kontex.services.deps import Deps


@pytest.fixture
def account(deps: Deps) -> str:
    key, _ = keys.create_key(deps, "tests")
    return key.account_id


@pytest.fixture
def task(deps: Deps, account: str) -> Any:
    s = sessions.create_session(deps, account, "run")
    return sessions.create_task(deps, account, s.id, "solve")


def msgs(*texts: str) -> list[dict[str, Any]]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
    ]


def full(messages: list[dict[str, Any]], **extra: Any) -> ContextBundle:
    return ContextBundle.model_validate({"messages": messages, **extra})


def content(deps: Deps, account: str, snapshot_id: str) -> dict[str, Any]:
    bundle = snapshots.get_bundle(deps, account, snapshot_id)
    return bundle.model_dump(mode="json", exclude={"captured_at", "source"})


def test_a_delta_reads_back_as_the_full_write_of_the_composed_bundle(
    deps: Deps, account: str, task: Any
) -> None:
    files = [
        {"path": "a.py", "content": "print(1)\n"},
        {"path": "b.md", "content": "notes " * 50},
        {"path": "c.txt", "content": "c"},
    ]
    first = snapshots.create_snapshot(
        deps, account, task.id, "one", full(msgs(*[f"m{i}" for i in range(40)]), files=files)
    )
    # When only what changed is sent: two messages appended, one file changed, one dropped
    delta = full(
        msgs("m40", "m41"),
        files=[{"path": "a.py", "content": "print(2)\n"}, {"path": "d.txt", "content": "new"}],
    )
    base = SnapshotBase(snapshot_id=first.id, drop_files=["c.txt"])
    made = snapshots.create_snapshot(deps, account, task.id, "two", delta, base=base)

    # Then it reads back as the whole bundle, files replaced in place, the token total counted
    expected_files = [
        {"path": "a.py", "content": "print(2)\n"},
        {"path": "b.md", "content": "notes " * 50},
        {"path": "d.txt", "content": "new"},
    ]
    composed = full(msgs(*[f"m{i}" for i in range(42)]), files=expected_files)
    reference_task = sessions.create_task(deps, account, task.session_id, "reference")
    reference = snapshots.create_snapshot(deps, account, reference_task.id, "ref", composed)
    assert content(deps, account, made.id) == content(deps, account, reference.id)
    assert made.token_total == reference.token_total
    assert made.parent_snapshot_id == first.id


def test_a_slice_of_the_base_drops_a_head_or_a_tail(deps: Deps, account: str, task: Any) -> None:
    first = snapshots.create_snapshot(deps, account, task.id, "one", full(msgs("a", "b", "c", "d")))
    window = snapshots.create_snapshot(
        deps, account, task.id, "window", full(msgs("e")), base=SnapshotBase(messages=(2, None))
    )
    got = snapshots.get_bundle(deps, account, window.id)
    assert [m.content for m in got.messages] == ["c", "d", "e"]
    popped = snapshots.create_snapshot(
        deps, account, task.id, "pop", full([]), base=SnapshotBase(messages=(0, -1))
    )
    assert [m.content for m in snapshots.get_bundle(deps, account, popped.id).messages] == [
        "c",
        "d",
    ]
    reference = sessions.create_task(deps, account, task.session_id, "reference")
    same = snapshots.create_snapshot(deps, account, reference.id, "r", full(msgs("c", "d")))
    assert popped.token_total == same.token_total  # what the slice left out left the total
    assert first.token_total > popped.token_total


def test_the_head_is_the_default_base_and_if_head_refuses_a_moved_head(
    deps: Deps, account: str, task: Any
) -> None:
    # A task without snapshots: the delta is the whole bundle
    one = snapshots.create_snapshot(
        deps, account, task.id, "1", full(msgs("a")), base=SnapshotBase()
    )
    two = snapshots.create_snapshot(
        deps, account, task.id, "2", full(msgs("b")), base=SnapshotBase()
    )
    assert [m.content for m in snapshots.get_bundle(deps, account, two.id).messages] == ["a", "b"]
    with pytest.raises(Conflict) as refused:
        snapshots.create_snapshot(
            deps,
            account,
            task.id,
            "3",
            full([]),
            base=SnapshotBase(snapshot_id=one.id, if_head=True, messages=(0, 0)),
        )
    assert refused.value.details == {"head": two.id}
    # nothing was written
    assert snapshots.read_latest(deps, account, task.id)[0].id == two.id


def test_concurrent_appends_to_the_head_lose_nothing(deps: Deps, account: str, task: Any) -> None:
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(5):
                snapshots.create_snapshot(
                    deps, account, task.id, f"{w}.{i}", full(msgs(f"w{w}-{i}")), base=SnapshotBase()
                )
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    texts = [m.content for m in snapshots.read_latest(deps, account, task.id)[1].messages]
    assert sorted(texts) == sorted(f"w{w}-{i}" for w in range(4) for i in range(5))
    for w in range(4):  # each writer's items in its own order
        own = [t for t in texts if isinstance(t, str) and t.startswith(f"w{w}-")]
        assert own == [f"w{w}-{i}" for i in range(5)]


def test_a_base_of_another_session_or_account_is_refused(
    deps: Deps, account: str, task: Any
) -> None:
    other_session = sessions.create_session(deps, account, "other")
    other_task = sessions.create_task(deps, account, other_session.id, "t")
    foreign = snapshots.create_snapshot(deps, account, other_task.id, "x", full(msgs("x")))
    with pytest.raises(NotFound):  # looked up in the task's session
        snapshots.create_snapshot(
            deps, account, task.id, "y", full([]), base=SnapshotBase(snapshot_id=foreign.id)
        )
    stranger, _ = keys.create_key(deps, "stranger")
    with pytest.raises(NotFound):
        snapshots.create_snapshot(
            deps,
            stranger.account_id,
            task.id,
            "z",
            full([]),
            base=SnapshotBase(snapshot_id=foreign.id),
        )
