"""``GET /health``: public and cheap; ``?detail=true`` adds each pipeline's lag for a caller
with a key, read from the data dir's queue file as `kontex dev` runs it (both databases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kontex.adapters.local_queue import QUEUE_FILE, LocalQueue
from kontex.ports import PIPELINES
from tests.api.conftest import Client


def test_health_is_public_and_detail_needs_a_key(anonymous: Client, alice: Client) -> None:
    plain = anonymous.get("/health")
    assert plain.status == 200 and set(plain.body) == {"status", "version"}
    refused = anonymous.get("/health?detail=true")
    assert refused.status == 401 and refused.body["error"] == "unauthorized"


def test_health_detail_reports_the_lag_of_each_pipeline(
    container: Any, alice: Client, tmp_path: Path
) -> None:
    queue = LocalQueue(tmp_path / QUEUE_FILE)  # as `kontex dev` makes it in the data dir
    try:
        queue.send("spans", [json.dumps({"n": n}) for n in range(7)])
        answer = alice.get("/health?detail=true")
    finally:
        queue.close()
    assert answer.status == 200, answer.body
    pipelines = answer.body["pipelines"]
    assert set(pipelines) >= set(PIPELINES)
    assert pipelines["spans"]["depth"] == 7 and pipelines["spans"]["oldest_age_seconds"] >= 0
    assert pipelines["embed"] == {
        "depth": 0,
        "oldest_age_seconds": None,
        "dead_letters": 0,
        "behind": False,
    }
    assert answer.body["behind"] == []
