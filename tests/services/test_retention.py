"""Retention on both backends: whole idle sessions go, rows and blobs; nothing else does."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from kontex.domain.errors import InvalidInput
from kontex.domain.models import ContextBundle
from kontex.services import keys, retention, sessions, snapshots
from kontex.services.deps import Deps
from tests.conftest import Clock

DAY = 86_400


def bundle(text: str) -> ContextBundle:
    return ContextBundle.model_validate(
        {
            "messages": [
                {"role": "system", "content": "You are careful."},
                {"role": "user", "content": text},
            ],
            # a body above 64 KiB: kept in the object store, so the purge has blobs to remove
            "files": [{"path": "notes.md", "content": f"notes for {text}\n" * 6000}],
        }
    )


@dataclass
class Run:
    """A session with one task and its snapshots."""

    account_id: str
    session_id: str
    task_id: str
    snapshot_ids: list[str]

    @property
    def prefix(self) -> str:
        return f"{self.account_id}/{self.session_id}/"


def run(deps: Deps, account_id: str, name: str, snapshots_n: int = 2) -> Run:
    s = sessions.create_session(deps, account_id, name)
    t = sessions.create_task(deps, account_id, s.id, "solve")
    snaps = [
        snapshots.create_snapshot(deps, account_id, t.id, f"{name} {i}", bundle(f"{name} {i}")).id
        for i in range(snapshots_n)
    ]
    return Run(account_id, s.id, t.id, snaps)


def gone(deps: Deps, r: Run) -> bool:
    with deps.store.unit(write=False) as uow:
        return (
            uow.sessions.get(r.account_id, r.session_id) is None
            and uow.tasks.get(r.account_id, r.task_id) is None
            and uow.tasks.of_session(r.account_id, r.session_id) == []
            and all(uow.snapshots.get(r.account_id, s) is None for s in r.snapshot_ids)
            and deps.blobs.size_of_prefix(r.prefix) == 0
        )


def intact(deps: Deps, r: Run) -> bool:
    with deps.store.unit(write=False) as uow:
        rows = (
            uow.sessions.get(r.account_id, r.session_id) is not None
            and uow.tasks.get(r.account_id, r.task_id) is not None
            and all(uow.snapshots.get(r.account_id, s) is not None for s in r.snapshot_ids)
        )
    return (
        rows
        and all(
            snapshots.get_bundle(deps, r.account_id, s) is not None for s in r.snapshot_ids
        )  # every blob still readable
    )


@dataclass
class World:
    alice: str
    bob: str
    old: Run  # alice's, idle for 40 days
    revived: Run  # alice's, old but with a snapshot yesterday
    enriched: Run  # alice's, old but its snapshot was enriched yesterday
    task_touched: Run  # alice's, old but a task changed yesterday
    fresh: Run  # alice's, made yesterday
    bobs_old: Run  # bob's, idle for 40 days


@pytest.fixture
def world(deps: Deps, clock: Clock) -> World:
    deps.enrich_window_seconds = 60 * DAY  # so an enrichment can be the latest activity
    alice = keys.create_key(deps, "alice")[0].account_id
    bob = keys.create_key(deps, "bob")[0].account_id
    # Given sessions whose last write was 40 days ago ...
    old = run(deps, alice, "old")
    revived = run(deps, alice, "revived")
    enriched = run(deps, alice, "enriched", snapshots_n=1)
    task_touched = run(deps, alice, "task touched", snapshots_n=1)
    bobs_old = run(deps, bob, "bob's old")
    clock.advance(39 * DAY)
    # ... some of which saw activity yesterday
    revived.snapshot_ids.append(
        snapshots.create_snapshot(deps, alice, revived.task_id, "again", bundle("revived again")).id
    )
    snapshots.enrich(deps, alice, enriched.snapshot_ids[0], {"reasoning": "thought later"})
    sessions.update_task(deps, alice, task_touched.task_id, status="completed")
    fresh = run(deps, alice, "fresh")
    clock.advance(DAY)
    return World(alice, bob, old, revived, enriched, task_touched, fresh, bobs_old)


def cutoff(deps: Deps, days: int = 30) -> Any:
    return deps.clock() - timedelta(days=days)


def test_dry_run_lists_idle_sessions_and_removes_nothing(deps: Deps, world: World) -> None:
    before = deps.blobs.size_of_prefix("")

    result = retention.prune(deps, cutoff(deps), dry_run=True)

    listed = {(s.account_id, s.session_id) for s in result.sessions}
    assert listed == {
        (world.alice, world.old.session_id),
        (world.bob, world.bobs_old.session_id),
    }
    old = next(s for s in result.sessions if s.session_id == world.old.session_id)
    assert old.name == "old" and old.snapshots == 2 and old.blobs is None
    with deps.store.unit(write=False) as uow:
        last = uow.snapshots.get(world.alice, world.old.snapshot_ids[-1])
    assert last is not None and old.last_activity == last.created_at
    assert result.dry_run and not result.more and result.skipped == []
    assert result.as_json()["removed_sessions"] == 0
    for r in (world.old, world.bobs_old, world.revived, world.fresh):
        assert intact(deps, r)
    assert deps.blobs.size_of_prefix("") == before


def test_prune_removes_rows_and_blobs_of_idle_sessions_only(deps: Deps, world: World) -> None:
    assert deps.blobs.size_of_prefix(world.old.prefix) > 0

    result = retention.prune(deps, cutoff(deps))

    assert {s.session_id for s in result.sessions} == {
        world.old.session_id,
        world.bobs_old.session_id,
    }
    assert all(s.blobs and s.blobs > 0 for s in result.sessions)
    assert result.as_json()["removed_snapshots"] == 4
    assert gone(deps, world.old) and gone(deps, world.bobs_old)
    for r in (world.revived, world.enriched, world.task_touched, world.fresh):
        assert intact(deps, r), r
    # a second run finds nothing left to do
    assert retention.prune(deps, cutoff(deps)).sessions == []


def test_prune_of_one_account_leaves_other_accounts_untouched(deps: Deps, world: World) -> None:
    result = retention.prune(deps, cutoff(deps), account_id=world.alice)

    assert [s.session_id for s in result.sessions] == [world.old.session_id]
    assert gone(deps, world.old)
    assert intact(deps, world.bobs_old)


def test_a_longer_retention_keeps_everything(deps: Deps, world: World) -> None:
    assert retention.prune(deps, cutoff(deps, days=41)).sessions == []
    assert intact(deps, world.old)


def test_limit_takes_the_least_recently_active_first(deps: Deps, world: World) -> None:
    result = retention.prune(deps, cutoff(deps), limit=1)

    assert [s.session_id for s in result.sessions] == [world.old.session_id]  # made first
    assert result.more
    assert gone(deps, world.old) and intact(deps, world.bobs_old)
    with pytest.raises(InvalidInput):
        retention.prune(deps, cutoff(deps), limit=0)


def test_a_session_purged_meanwhile_is_skipped(deps: Deps, world: World) -> None:
    class PurgedMeanwhile:
        """The store, with the old session purged between the listing and its purge."""

        def __init__(self, store: Any) -> None:
            self._store = store

        def __getattr__(self, name: str) -> Any:
            return getattr(self._store, name)

        @contextlib.contextmanager
        def unit(self, write: bool = True, durable: bool = True) -> Iterator[Any]:
            with self._store.unit(write, durable) as uow:
                yield uow
            if not write:  # the listing of candidates: the purge lands right after it
                sessions.purge_session(deps, world.alice, world.old.session_id)

    racing = Deps(store=PurgedMeanwhile(deps.store), blobs=deps.blobs, api_key_secret=b"x")  # type: ignore[arg-type]

    result = retention.prune(racing, cutoff(deps), account_id=world.alice)

    assert result.sessions == [] and result.skipped == [world.old.session_id]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert retention.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "30s", "-1d", "0d", "1.5d", "30 days", "9" * 30])
def test_parse_duration_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InvalidInput):
        retention.parse_duration(text)
