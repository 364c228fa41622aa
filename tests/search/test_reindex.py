"""Backfill: `kontex reindex` embeds stored snapshots with a progress bar; on AWS the migrate
function's `{"reindex": ...}` queues them for the embed worker."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from kontex import bootstrap, cli
from kontex.domain.models import ContextBundle
from kontex.services import keys, search, sessions, snapshots
from kontex.settings import Settings

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "migrate" / "handler.py"


def _seed(container: bootstrap.Container, texts: list[str]) -> tuple[str, list[Any]]:
    deps = container.deps
    account = keys.create_key(deps, "k")[0].account_id
    made = []
    for text in texts:
        session = sessions.create_session(deps, account, text[:20])
        task = sessions.create_task(deps, account, session.id, "t")
        bundle = ContextBundle.model_validate({"messages": [{"role": "user", "content": text}]})
        made.append(snapshots.create_snapshot(deps, account, task.id, "step", bundle))
    return account, made


def test_reindex_embeds_what_is_stored_and_shows_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], embedder: Any
) -> None:
    config = Settings.from_env({"VOYAGE_API_KEY": ""}, kontex_data_dir=tmp_path)
    seeding = bootstrap.Container(config)
    seeding.migrate()
    account, made = _seed(seeding, ["the E11000 insert", "parse_jwt_claims rejects", "x y z"])
    other, _ = _seed(seeding, ["bob's E11000 too"])

    assert cli.main(["reindex", "--data-dir", str(tmp_path), "--account", account]) == 0
    out, err = capsys.readouterr()
    assert "Reindexed 3 snapshot(s)" in out
    assert "3/3 snapshots 100%" in err and "[" in err

    # run again: everything is there already, nothing is written
    assert cli.main(["reindex", "--data-dir", str(tmp_path)]) == 0
    out, _ = capsys.readouterr()
    assert "Reindexed 4 snapshot(s)" in out and ": 2 new point(s)" in out  # only bob's

    reading = bootstrap.Container(config)
    reading.embedder = embedder  # type: ignore[misc]
    found = search.search(reading.deps, account, "E11000").results
    assert found[0].snapshot_id == made[0].id
    assert {h.snapshot_id for h in found} == {s.id for s in made}  # only this account's
    assert search.search(reading.deps, other, "E11000").results
    reading.index.close()  # type: ignore[attr-defined]


def test_the_migrate_function_queues_a_reindex(tmp_path: Path) -> None:
    config = Settings.from_env({}, kontex_data_dir=tmp_path, kontex_api_key_secret="t")
    container = bootstrap.Container(config)
    container.migrate()
    account, made = _seed(container, [f"text {i}" for i in range(12)])
    _seed(container, ["another account"])

    class Recording:
        def __init__(self) -> None:
            self.sent: list[tuple[str, list[str]]] = []

        def send(
            self, queue: str, bodies: Any, delay_seconds: int = 0, *, durable: bool = True
        ) -> None:
            self.sent.append((queue, list(bodies)))

    queue = Recording()
    container.queue = queue  # type: ignore[assignment]
    bootstrap.configure(container)
    try:
        spec = importlib.util.spec_from_file_location("migrate_handler_reindex", HANDLER)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        answer = module.lambda_handler({"reindex": {"account_id": account}}, None)
    finally:
        bootstrap.configure(None)
    assert answer["queued"] == 12
    assert {q for q, _ in queue.sent} == {"embed"} and max(len(b) for _, b in queue.sent) <= 10
    bodies = [json.loads(b) for _, batch in queue.sent for b in batch]
    assert [b["data"]["snapshot_id"] for b in bodies] == [s.id for s in made]
    assert {b["type"] for b in bodies} == {"snapshot.created"}
    assert {b["account_id"] for b in bodies} == {account}
