"""The embed worker's handler, called with SQS-shaped batches as the event fan-out delivers
them (contract: one event per record, body ``{id, type, account_id, session_id, data}``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kontex import bootstrap
from kontex.adapters.local_blobs import LocalBlobs
from kontex.domain.errors import Transient
from kontex.domain.models import ContextBundle
from kontex.functions import functions_dir
from kontex.http.apigw import LocalContext
from kontex.local.server import load_worker
from kontex.services import keys, search, sessions, snapshots
from kontex.settings import Settings

worker = load_worker(functions_dir() / "workers" / "embed.py")


def _record(n: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": f"m{n}",
        "receiptHandle": f"r{n}",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:embed",
        "awsRegion": "us-east-1",
    }


@pytest.fixture
def container(store: Any, tmp_path: Any, embedder: Any, index: Any) -> Any:
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "t"}, kontex_data_dir=tmp_path)
    made = bootstrap.Container(config, store=store, blobs=LocalBlobs(tmp_path / "blobs"))
    made.embedder = embedder
    made.index = index
    bootstrap.configure(made)
    yield made
    bootstrap.configure(None)


def _snapshot(container: Any) -> Any:
    deps = container.deps
    account = keys.create_key(deps, "k")[0].account_id
    session = sessions.create_session(deps, account, "s")
    task = sessions.create_task(deps, account, session.id, "t")
    bundle = ContextBundle.model_validate(
        {"messages": [{"role": "user", "content": "MongoError E11000 duplicate key on email"}]}
    )
    return snapshots.create_snapshot(deps, account, task.id, "insert users", bundle)


def test_a_batch_embeds_forgets_and_ignores(container: Any, index: Any) -> None:
    snap = _snapshot(container)
    created = {
        "id": "evt_1",
        "type": "snapshot.created",
        "account_id": snap.account_id,
        "session_id": snap.session_id,
        "data": {"snapshot_id": snap.id, "label": snap.label},
    }
    other = {**created, "id": "evt_2", "type": "task.updated", "data": {}}
    answer = worker.lambda_handler(
        {"Records": [_record(1, created), _record(2, other), _record(3, created)]},
        LocalContext(function_name="kontex-embed"),
    )
    assert answer == {"batchItemFailures": []}
    assert worker._outcomes == {}  # every outcome reported (without the batch processor)
    assert index.count(snap.account_id) == 2  # the label and the message, once
    found = search.search(container.deps, snap.account_id, "E11000").results
    assert [h.snapshot_id for h in found] == [snap.id]

    purged = {
        **created,
        "id": "evt_3",
        "type": "session.purged",
        "data": {"session_id": snap.session_id},
    }
    answer = worker.lambda_handler(
        {"Records": [_record(4, purged)]}, LocalContext(function_name="kontex-embed")
    )
    assert answer == {"batchItemFailures": []}
    assert index.count(snap.account_id) == 0


def test_a_record_that_fails_is_reported_alone(container: Any, index: Any) -> None:
    snap = _snapshot(container)
    good = {
        "type": "snapshot.created",
        "account_id": snap.account_id,
        "session_id": snap.session_id,
        "data": {"snapshot_id": snap.id},
    }

    class Down:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise Transient("the vector store is unavailable")

            return fail

    container.index = Down()
    ignored = {**good, "type": "session.updated"}
    answer = worker.lambda_handler(
        {"Records": [_record(1, ignored), _record(2, good), _record(3, {"not": "json"})]},
        LocalContext(function_name="kontex-embed"),
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m2"}]}


class Counting:
    """The embedder, counting its calls (a fresh instance: no dense vectors cached yet)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0
        self.name, self.dimensions, self.max_chars = inner.name, inner.dimensions, inner.max_chars

    def embed_documents(self, texts: Any) -> list[list[float]]:
        self.calls += 1
        return self.inner.embed_documents(texts)  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)  # type: ignore[no-any-return]


class Recorded:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, event: Any) -> None:
        self.events.append(event)


def test_a_batch_of_a_sliding_window_embeds_its_new_texts_in_one_model_call(
    store: Any, tmp_path: Any, embedder: Any, index: Any
) -> None:
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "t"}, kontex_data_dir=tmp_path)
    recorded = Recorded()
    made = bootstrap.Container(
        config, store=store, blobs=LocalBlobs(tmp_path / "blobs"), events=recorded
    )
    made.embedder = counting = Counting(embedder)
    made.index = index
    bootstrap.configure(made)
    try:
        deps = made.deps
        account = keys.create_key(deps, "k")[0].account_id
        session = sessions.create_session(deps, account, "s")
        task = sessions.create_task(deps, account, session.id, "t")
        words = ["ORA-00942 table missing", "ECONNRESET on the socket", "E11000 duplicate key"]
        made_snaps = [
            snapshots.create_snapshot(
                deps,
                account,
                task.id,
                f"step {n}",
                ContextBundle.model_validate(
                    {"messages": [{"role": "user", "content": w} for w in words[: n + 1]]}
                ),
            )
            for n in range(3)
        ]
        recorded.events.clear()
        records = [
            _record(
                n,
                {
                    "type": "snapshot.created",
                    "account_id": account,
                    "session_id": session.id,
                    "data": {"snapshot_id": s.id},
                },
            )
            for n, s in enumerate(made_snaps)
        ]
        bad = {**_record(9, {}), "body": "{not json"}
        answer = worker.lambda_handler(
            {"Records": [*records, bad]}, LocalContext(function_name="kontex-embed")
        )
        assert answer == {"batchItemFailures": [{"itemIdentifier": "m9"}]}
        assert counting.calls == 1  # three labels and three messages, one model call
        assert index.count(account) == 6
        embedded = [e.data for e in recorded.events if e.type == "snapshot.embedded"]
        # each snapshot wrote its label and its one new message; its window was there already
        assert [(d["snapshot_id"], d["points"], d["written"]) for d in embedded] == [
            (made_snaps[0].id, 2, 2),
            (made_snaps[1].id, 3, 2),
            (made_snaps[2].id, 4, 2),
        ]
        for word, newest in zip(words, made_snaps, strict=True):
            found = search.search(deps, account, word.split()[0]).results
            assert found[0].snapshot_id == made_snaps[2].id, (word, newest)
    finally:
        bootstrap.configure(None)


def test_a_batch_of_ten_window_snapshots_is_one_model_call_and_one_commit(
    store: Any, tmp_path: Any, embedder: Any, index: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten snapshots of a sliding window, planned before any is written: snapshot n's plan also
    lists the new messages of the batch's earlier ones (65 texts for 11 distinct points). Each
    distinct text goes to the model once, in one call, and the ten snapshots' records and
    events are written in one unit of work, as one by one would write them."""
    config = Settings.from_env({"KONTEX_API_KEY_SECRET": "t"}, kontex_data_dir=tmp_path)
    recorded = Recorded()
    made = bootstrap.Container(
        config, store=store, blobs=LocalBlobs(tmp_path / "blobs"), events=recorded
    )
    made.embedder = counting = Counting(embedder)
    made.index = index
    bootstrap.configure(made)
    try:
        deps = made.deps
        account = keys.create_key(deps, "k")[0].account_id
        session = sessions.create_session(deps, account, "s")
        task = sessions.create_task(deps, account, session.id, "t")
        said = [f"case{n:04d}: the upload to bucket {n} timed out" for n in range(11)]
        made_snaps = [
            snapshots.create_snapshot(
                deps,
                account,
                task.id,
                "checkpoint after",  # one label, one dense text
                ContextBundle.model_validate(
                    {"messages": [{"role": "user", "content": w} for w in said[: n + 2]]}
                ),
            )
            for n in range(10)
        ]
        recorded.events.clear()
        units: list[bool] = []
        real_unit = store.unit

        def unit(*args: Any, **kwargs: Any) -> Any:
            units.append(kwargs.get("write", True))
            return real_unit(*args, **kwargs)

        monkeypatch.setattr(store, "unit", unit)
        records = [
            _record(
                n,
                {
                    "type": "snapshot.created",
                    "account_id": account,
                    "session_id": session.id,
                    "data": {"snapshot_id": s.id},
                },
            )
            for n, s in enumerate(made_snaps)
        ]
        answer = worker.lambda_handler({"Records": records}, LocalContext(function_name="k"))
        monkeypatch.undo()
        assert answer == {"batchItemFailures": []}
        assert counting.calls == 1  # 11 messages and the label: one model call
        # the ten snapshots' records and events in one unit, then the published events' outbox
        # rows deleted in one more (one by one: two units a snapshot)
        assert units.count(True) <= 2, units
        assert index.count(account) == 12
        embedded = [e.data for e in recorded.events if e.type == "snapshot.embedded"]
        assert [(d["snapshot_id"], d["points"], d["written"]) for d in embedded] == [
            (made_snaps[0].id, 3, 3),
            *[(s.id, n + 3, 1) for n, s in enumerate(made_snaps[1:], start=1)],
        ]
        for n in (0, 5, 10):  # each message answers with the newest snapshot holding it
            found = search.search(deps, account, f"case{n:04d}").results
            assert found[0].snapshot_id == made_snaps[-1].id, n
    finally:
        bootstrap.configure(None)
