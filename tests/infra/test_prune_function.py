"""The scheduled prune function, on SQLite: what the EventBridge rule and an operator get back."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kontex import bootstrap
from kontex.domain.models import ContextBundle
from kontex.services import keys, sessions, snapshots
from kontex.settings import Settings

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "prune" / "handler.py"


class Context:
    function_name = "kontex-prune"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:kontex-prune"
    aws_request_id = "req-1"


@pytest.fixture
def prune(tmp_path: Path) -> Iterator[ModuleType]:
    config = Settings.from_env({}, kontex_data_dir=tmp_path, kontex_api_key_secret="test-secret")
    container = bootstrap.Container(config)
    container.store.migrate()
    bootstrap.configure(container)
    spec = importlib.util.spec_from_file_location("prune_handler", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        bootstrap.configure(None)


def _session(days_ago: int, name: str) -> tuple[str, str]:
    deps = bootstrap.container().deps
    at = datetime.now(UTC) - timedelta(days=days_ago)
    deps.clock = lambda: at
    account = keys.create_key(deps, name)[0].account_id
    s = sessions.create_session(deps, account, name)
    t = sessions.create_task(deps, account, s.id, "solve")
    bundle = ContextBundle.model_validate(
        {
            "messages": [{"role": "user", "content": name}],
            "files": [{"path": "big.txt", "content": f"{name}\n" * 20_000}],  # > 64 KiB: an object
        }
    )
    snapshots.create_snapshot(deps, account, t.id, "one", bundle)
    deps.clock = lambda: datetime.now(UTC)
    return account, s.id


def _exists(account: str, session_id: str) -> bool:
    with bootstrap.container().store.unit(write=False) as uow:
        return uow.sessions.get(account, session_id) is not None


def test_scheduled_run_purges_idle_sessions_only(prune: ModuleType) -> None:
    old, recent = _session(40, "old"), _session(2, "recent")

    # When the rule's input arrives, first as an operator's dry run, then as scheduled
    dry: dict[str, Any] = prune.lambda_handler({"older_than_days": 30, "dry_run": True}, Context())
    assert [s["session_id"] for s in dry["sessions"]] == [old[1]] and _exists(*old)

    done: dict[str, Any] = prune.lambda_handler({"older_than_days": 30, "limit": 500}, Context())

    # Then the idle session is gone and the recent one stays
    assert done["removed_sessions"] == 1 and done["removed_blobs"] > 0
    assert not _exists(*old) and _exists(*recent)


@pytest.mark.parametrize("event", [{}, {"older_than_days": 0}, {"older_than_days": "soon"}])
def test_an_event_without_a_valid_retention_is_refused(prune: ModuleType, event: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        prune.lambda_handler(event, Context())
