"""Export and import as an exact copy, on both backends (issue 22, defect 6): a session with
rollbacks, forks, enrich revisions, captured usage, a large file, checkpoints with pending
writes, a thread state naming it, a linked trace and an alias. export -> import -> export is
the same archive but for the ids; with ``keep_ids`` into an empty store it is the same bytes;
an id or name that exists is a conflict and a tampered archive is refused, nothing written."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.sqlite_store import SqliteStore
from kontex.domain.archive import SessionArchive
from kontex.domain.errors import Conflict, IntegrityError, InvalidInput
from kontex.domain.models import ContextBundle, SnapshotBase, SnapshotSource, Usage
from kontex.ports import CheckpointRow, CheckpointWrite
from kontex.services import archive, checkpoints, keys, sessions, snapshots, threads, views
from kontex.services.deps import Deps
from tests.conftest import Clock, _postgres_schema_url
from tests.services.test_snapshots import SEALED_FIELDS, raw_sql

IDS = re.compile(r"(?:sess|task|snap)_[0-9a-z]{26}")


def account(deps: Deps, label: str = "tests") -> str:
    return keys.create_key(deps, label)[0].account_id


def bundle(*texts: str, **extra: Any) -> ContextBundle:
    return ContextBundle.model_validate(
        {"messages": [{"role": "user", "content": t} for t in texts], **extra}
    )


def rest_session(deps: Deps, acct: str) -> str:
    """What the REST API and the capture paths write: a tree, a rollback, a fork, an enrich
    revision, a large file in the object store, a captured call with usage and cost."""
    session = sessions.create_session(deps, acct, "export me", "d", {"team": "x"})
    root = sessions.create_task(deps, acct, session.id, "plan")
    child = sessions.create_task(deps, acct, session.id, "step", root.id)
    first = snapshots.create_snapshot(
        deps,
        acct,
        root.id,
        "turn 0",
        bundle(
            "q0",
            files=[{"path": "big.txt", "content": "x" * 70_000}, {"path": "a", "content": "1"}],
            tool_calls=[{"tool": "grep", "input": {"q": 0}, "output": "ok"}],
            reasoning="thinking",
            model="claude-sonnet-4-5",
        ),
    )
    call = ContextBundle.model_validate(
        {
            "messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a"}],
            "model": "claude-sonnet-4-5",
            "source": "proxy",
            "usage": {"input_tokens": 382, "output_tokens": 25, "cost_usd": 0.001095},
        }
    )
    snapshots.create_snapshot(deps, acct, root.id, "llm call", call)
    snapshots.create_snapshot(
        deps, acct, root.id, "delta", bundle("q1"), base=SnapshotBase(messages=(1, None))
    )
    snapshots.enrich(deps, acct, first.id, {"log_events": [{"message": "late"}]})
    snapshots.rollback(deps, acct, first.id)
    snapshots.create_snapshot(deps, acct, child.id, "child", bundle("sub"))
    snapshots.fork(deps, acct, first.id, name="branch")
    sessions.update_task(deps, acct, child.id, status="completed")
    sessions.update_session(deps, acct, session.id, status="paused")
    sessions.link_trace(deps, acct, session.id, "ab" * 16)
    with deps.store.unit() as uow:
        uow.traces.add_alias(acct, "checkout-bot", session.id)
    doc = json.dumps({"session_id": session.id, "task_id": root.id})
    threads.save(deps, acct, "thrd_oa-" + "1" * 40, doc)
    return session.id


def thread_session(deps: Deps, acct: str) -> str:
    """A LangGraph thread: checkpoints (a delta put), pending writes, two namespaces."""

    def row(checkpoint_id: str, parent: str | None, ns: str = "") -> CheckpointRow:
        return CheckpointRow(
            "thread-1", ns, checkpoint_id, parent, "", "", {"step": 1, "run_id": "r1"}, "r1",
            None,  # type: ignore[arg-type]
        )  # fmt: skip

    stored, snap = checkpoints.put(deps, acct, row("01", None), bundle("a"))
    checkpoints.put(
        deps, acct, row("02", "01"), bundle("b"), base=SnapshotBase(snapshot_id=snap.id)
    )
    checkpoints.put(deps, acct, row("01", None, ns="sub"), bundle("c"))
    write = CheckpointWrite("task1", 0, "messages", '{"x": 1}', "path")
    checkpoints.put_writes(deps, acct, ("thread-1", "", "02"), [write], False)
    checkpoints.put_writes(deps, acct, ("thread-1", "", "03"), [write], False)  # before its put
    return stored.session_id


def mapped(doc: SessionArchive, ids: dict[str, str]) -> str:
    """The archive's JSON with each id replaced by the one ``ids`` gives it."""
    return IDS.sub(lambda m: ids.get(m.group(0), m.group(0)), doc.model_dump_json())


def served(deps: Deps, acct: str, session_id: str) -> dict[str, Any]:
    """Everything the API serves of the session, ids left in."""
    with deps.store.unit(write=False) as uow:
        rows = uow.snapshots.page(acct, session_id, 1000, None)
    out: dict[str, Any] = {
        "session": sessions.get_session(deps, acct, session_id).model_dump(mode="json"),
        "tree": sessions.task_tree(deps, acct, session_id),
        "timeline": views.timeline(deps, acct, session_id),
        "stats": views.stats(deps, acct, session_id),
        "snapshots": [],
    }
    for s in rows:
        revisions = snapshots.list_revisions(deps, acct, s.id)
        out["snapshots"].append(
            {
                "row": s.model_dump(mode="json"),
                "bundles": [
                    snapshots.get_bundle(deps, acct, s.id, r.seq).model_dump(mode="json")
                    for r in revisions
                ],
                "revisions": [
                    (r.seq, r.token_total, r.model, str(r.created_at)) for r in revisions
                ],
            }
        )
    for key in ("session",):
        out[key].pop("account_id", None)
    return out


def without_accounts(value: Any, accounts: set[str]) -> Any:
    text = json.dumps(value, sort_keys=True, default=str)
    for acct in accounts:
        text = text.replace(acct, "acct")
    return json.loads(text)


@pytest.fixture
def second_store(store: Any, tmp_path: Any) -> Iterator[Any]:
    """An empty store of the same kind (another SQLite file, another PostgreSQL schema)."""
    if isinstance(store, SqliteStore):
        other = SqliteStore(tmp_path / "other.db")
        other.migrate()
        yield other
        other.close()
        return
    from kontex.adapters.postgres_store import PostgresStore

    for url in _postgres_schema_url():
        pg = PostgresStore(url, max_size=2)
        pg.migrate()
        try:
            yield pg
        finally:
            pg.close()


@pytest.fixture
def second(second_store: Any, tmp_path: Any) -> Deps:
    return Deps(
        store=second_store,
        blobs=LocalBlobs(tmp_path / "other-blobs"),
        api_key_secret=b"test-secret",
        clock=Clock(),
    )


@pytest.mark.parametrize("make", [rest_session, thread_session], ids=["rest", "checkpoints"])
def test_export_import_export_is_the_same_archive_but_for_the_ids(
    deps: Deps, make: Callable[[Deps, str], str]
) -> None:
    source = account(deps)
    session_id = make(deps, source)
    first = archive.export_session(deps, source, session_id)
    target = account(deps, "importer")
    if first.thread_states or first.traces or first.aliases or first.checkpoint_namespaces:
        # names are the account's: carried into another account, a conflict in their own
        with pytest.raises(Conflict):
            archive.import_session(deps, source, first)
    made = archive.import_session(deps, target, first)
    assert made.session_id != session_id and set(made.ids) == set(IDS.findall(mapped(first, {})))
    again = archive.export_session(deps, target, made.session_id)
    assert mapped(again, {new: old for old, new in made.ids.items()}) == first.model_dump_json()
    # and what the API serves of it is the same, ids mapped
    before = served(deps, source, session_id)
    after = json.loads(
        IDS.sub(
            lambda m: {v: k for k, v in made.ids.items()}.get(m.group(0), m.group(0)),
            json.dumps(served(deps, target, made.session_id), default=str),
        )
    )
    assert without_accounts(after, {source, target}) == without_accounts(before, {source, target})


def test_what_the_repro_lost_is_carried(deps: Deps) -> None:
    """The issue's repro: source, usage and cost, rollback_of and forked_from, thread state."""
    source = account(deps)
    session_id = rest_session(deps, source)
    target = account(deps, "importer")
    made = archive.import_session(deps, target, archive.export_session(deps, source, session_id))
    old_stats = views.stats(deps, source, session_id)
    new_stats = views.stats(deps, target, made.session_id)
    assert new_stats["usage"] == old_stats["usage"]
    assert new_stats["usage"]["cost_usd"] == pytest.approx(0.001095)
    assert new_stats["usage"]["input_tokens"] + new_stats["usage"]["output_tokens"] == 407
    with deps.store.unit(write=False) as uow:
        rows = uow.snapshots.page(target, made.session_id, 100, None)
    assert {r.source for r in rows} == {
        SnapshotSource.API,
        SnapshotSource.PROXY,
        SnapshotSource.ROLLBACK,
    }
    assert any(r.rollback_of for r in rows) and any(r.forked_from for r in rows)
    assert [r.usage for r in rows if r.source == SnapshotSource.PROXY] == [
        Usage(input_tokens=382, output_tokens=25, cost_usd=0.001095)
    ]
    state = threads.get(deps, target, "thrd_oa-" + "1" * 40)
    assert json.loads(state.user_data)["session_id"] == made.session_id  # its ids mapped


def test_a_thread_reads_back_after_import(deps: Deps) -> None:
    source = account(deps)
    session_id = thread_session(deps, source)
    target = account(deps, "importer")
    archive.import_session(deps, target, archive.export_session(deps, source, session_id))
    for acct in (source, target):
        latest = checkpoints.get(deps, acct, "thread-1", "", None)
        assert latest.row.checkpoint_id == "02" and latest.row.parent_id == "01"
        assert [m.content for m in latest.bundle.messages] == ["a", "b"]
        assert [w.value for w in latest.writes] == ['{"x": 1}']
        sub = checkpoints.get(deps, acct, "thread-1", "sub", None)
        assert [m.content for m in sub.bundle.messages] == ["c"]


def test_keep_ids_into_an_empty_store_gives_the_same_bytes(deps: Deps, second: Deps) -> None:
    source = account(deps)
    session_id = rest_session(deps, source)
    first = archive.export_session(deps, source, session_id)
    target = account(second)
    made = archive.import_session(second, target, first, keep_ids=True)
    assert made.session_id == session_id and all(k == v for k, v in made.ids.items())
    again = archive.export_session(second, target, session_id)
    assert again.model_dump_json() == first.model_dump_json()
    # the large file body went to the target's object store, under its account
    assert second.blobs.get(f"{target}/{session_id}/{first.bodies[0].sha256}")


def test_keep_ids_is_refused_where_an_id_exists(deps: Deps) -> None:
    source = account(deps)
    session_id = rest_session(deps, source)
    doc = archive.export_session(deps, source, session_id)
    other = account(deps, "other")
    for acct in (source, other):
        with pytest.raises(Conflict) as refused:
            archive.import_session(deps, acct, doc, keep_ids=True)
        assert session_id in refused.value.details["existing"]
    assert sessions.list_sessions(deps, other).items == []


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tamper(doc: dict[str, Any], case: str) -> None:
    item = next(i for i in doc["items"] if b'"q0"' in base64.b64decode(i["body"]))
    if case == "item":  # the bytes changed, the address kept
        item["body"] = b64(base64.b64decode(item["body"]).replace(b"q0", b"Q0"))
    elif case == "missing item":
        doc["items"].remove(item)
    elif case == "chunk":
        chunk = doc["chunks"][0]
        chunk["refs"] = b64(base64.b64decode(chunk["refs"])[::-1])
    elif case == "manifest":
        s = doc["snapshots"][0]
        raw = base64.b64decode(s["manifest"])
        s["manifest"] = b64(raw.replace(b'"token_total":', b'"token_total":1'))
    elif case == "bundle hash":
        doc["snapshots"][1]["bundle_hash"] = doc["snapshots"][0]["bundle_hash"]
    elif case == "revision":
        r = next(s for s in doc["snapshots"] if s["revisions"])["revisions"][0]
        r["manifest"] = doc["snapshots"][1]["manifest"]
    elif case == "file body":
        doc["bodies"][0]["data"] = b64(b"y" * 70_000)
    elif case == "missing body":
        doc["bodies"] = []
    elif case == "parent":
        doc["snapshots"][2]["parent_snapshot_id"] = doc["snapshots"][0]["id"]
    elif case == "task":
        doc["snapshots"][0]["task_id"] = "task_" + "0" * 26
    elif case in ("not json", "too deep"):
        nested: Any = None
        for _ in range(200):  # valid, but deeper than any writer stores
            nested = [nested]
        deep = {"role": "user", "content": [{"type": "x", "v": nested}]}
        body = b"not a message" if case == "not json" else json.dumps(deep).encode()
        item["body"] = b64(body)
        item["address"] = hashlib.sha256(b"message\0" + body).digest()[:16].hex()


TAMPERED = [
    "item",
    "missing item",
    "chunk",
    "manifest",
    "bundle hash",
    "revision",
    "file body",
    "missing body",
    "parent",
    "task",
    "not json",
    "too deep",
]


def test_a_tampered_archive_is_refused_with_nothing_written(deps: Deps, second: Deps) -> None:
    source = account(deps)
    session_id = rest_session(deps, source)
    good = archive.export_session(deps, source, session_id).model_dump(mode="json")
    target = account(second)
    for case in TAMPERED:
        doc = json.loads(json.dumps(good))
        tamper(doc, case)
        with pytest.raises(InvalidInput) as refused:
            archive.import_session(second, target, SessionArchive.model_validate(doc))
            pytest.fail(f"not refused: {case}")
        assert refused.value.message.startswith("archive refused"), case
    assert sessions.list_sessions(second, target).items == []
    with second.store.unit(write=False) as uow:
        assert uow.archive.existing([session_id]) == set()
    assert not list(second.blobs.root.rglob("*"))  # type: ignore[attr-defined]
    # the untouched archive still goes in
    assert archive.import_session(second, target, SessionArchive.model_validate(good))


@pytest.mark.parametrize("field", [*SEALED_FIELDS, "item"])
def test_an_altered_row_or_item_is_never_exported(deps: Deps, field: str) -> None:
    """The export reads every row as a read does: a field altered behind the seal (triggers
    off), or a stored item, is an integrity error, never an archive that carries it on."""
    acct = account(deps)
    session_id = rest_session(deps, acct)
    archive.export_session(deps, acct, session_id)  # unaltered: exported
    with deps.store.unit(write=False) as uow:
        rows = uow.snapshots.page(acct, session_id, 100, None)
    enriched = next(r for r in rows if r.enriched)
    target = {
        "rollback_of": next(r for r in rows if r.rollback_of).id,
        "forked_from": next(r for r in rows if r.forked_from).id,
        "usage_cost": next(r for r in rows if r.usage).id,
        "usage_tokens": next(r for r in rows if r.usage).id,
    }.get(field, enriched.id)
    other = next(r for r in rows if r.task_id != enriched.task_id).id
    if field == "item":
        store: Any = deps.store
        blob = "BLOB" if store.dialect == "sqlite" else "BYTEA"
        statement = (
            f'UPDATE items SET body = CAST(\'{{"role":"user","content":"forged"}}\' AS {blob})'
            " WHERE kind = 'message'"
        )
    else:
        statement = SEALED_FIELDS[field].replace("{id}", target).replace("{other}", other)
    raw_sql(deps.store, statement)
    with pytest.raises(IntegrityError):
        archive.export_session(deps, acct, session_id)
