"""`kontex prune`: lists on a dry run, removes idle sessions' rows and blobs, refuses bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kontex import cli
from kontex.bootstrap import Container
from kontex.domain.models import ContextBundle
from kontex.services import keys, sessions, snapshots
from kontex.settings import Settings


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Any]:
    """A data dir with two sessions idle for 45 days (two accounts) and one from yesterday."""
    folder = tmp_path / "data"
    container = Container(Settings.from_env({}, kontex_data_dir=folder))
    container.store.migrate()
    deps = container.deps
    now = [datetime.now(UTC) - timedelta(days=45)]

    def clock() -> datetime:
        now[0] += timedelta(seconds=1)
        return now[0]

    deps.clock = clock

    def run(account_id: str, name: str) -> str:
        s = sessions.create_session(deps, account_id, name)
        t = sessions.create_task(deps, account_id, s.id, "solve")
        bundle = ContextBundle.model_validate(
            {
                "messages": [{"role": "user", "content": name}],
                "files": [{"path": "big.txt", "content": f"{name}\n" * 10_000}],  # a blob
            }
        )
        snapshots.create_snapshot(deps, account_id, t.id, "one", bundle)
        return s.id

    alice = keys.create_key(deps, "alice")[0].account_id
    bob = keys.create_key(deps, "bob")[0].account_id
    ids = {"alice_old": run(alice, "alice old"), "bob_old": run(bob, "bob old")}
    now[0] = datetime.now(UTC) - timedelta(days=1)
    ids["alice_new"] = run(alice, "alice new")
    return {"dir": folder, "alice": alice, "bob": bob, "ids": ids, "container": container}


def _prune(capsys: Any, data: dict[str, Any], *args: str) -> tuple[int, str]:
    code = cli.main(["prune", *args, "--data-dir", str(data["dir"])])
    return code, capsys.readouterr().out


def _left(data: dict[str, Any]) -> set[str]:
    with data["container"].store.unit(write=False) as uow:
        return {
            name
            for name, sid in data["ids"].items()
            for account in (data["alice"], data["bob"])
            if uow.sessions.get(account, sid) is not None
        }


def test_dry_run_prints_the_table_and_deletes_nothing(data: dict[str, Any], capsys: Any) -> None:
    code, out = _prune(capsys, data, "--older-than", "30d", "--dry-run")

    assert code == 0
    assert "Would remove 2 session(s)" in out
    assert data["ids"]["alice_old"] in out and data["ids"]["bob_old"] in out
    assert "alice old" in out and data["ids"]["alice_new"] not in out
    assert "nothing was deleted" in out
    assert _left(data) == {"alice_old", "bob_old", "alice_new"}


def test_prune_of_one_account_removes_its_idle_sessions_and_blobs(
    data: dict[str, Any], capsys: Any
) -> None:
    blobs = data["dir"] / "blobs" / data["alice"] / data["ids"]["alice_old"]
    assert blobs.is_dir()

    code, out = _prune(capsys, data, "--older-than", "30d", "--account", data["alice"], "--json")

    assert code == 0
    result = json.loads(out)
    assert [s["session_id"] for s in result["sessions"]] == [data["ids"]["alice_old"]]
    assert result["removed_sessions"] == 1 and result["removed_snapshots"] == 1
    assert result["removed_blobs"] > 0 and result["dry_run"] is False
    assert _left(data) == {"bob_old", "alice_new"}
    assert not blobs.exists()


def test_prune_everything_idle_then_nothing_is_left_to_do(
    data: dict[str, Any], capsys: Any
) -> None:
    code, out = _prune(capsys, data, "--older-than", "720h")
    assert code == 0
    assert "Removed 2 session(s), 2 snapshot(s)" in out
    assert _left(data) == {"alice_new"}

    code, out = _prune(capsys, data, "--older-than", "90m")  # yesterday's is idle too by now
    assert code == 0 and "Removed 1 session(s)" in out

    code, out = _prune(capsys, data, "--older-than", "90m")
    assert code == 0 and "nothing to prune" in out


@pytest.mark.parametrize("duration", ["30", "30s", "0d", "soon"])
def test_a_bad_duration_is_a_usage_error(data: dict[str, Any], capsys: Any, duration: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["prune", "--older-than", duration, "--data-dir", str(data["dir"])])
    assert exit_.value.code == 2
    assert "--older-than" in capsys.readouterr().err
    assert _left(data) == {"alice_old", "bob_old", "alice_new"}


def test_a_bad_limit_is_refused(data: dict[str, Any], capsys: Any) -> None:
    code = cli.main(
        ["prune", "--older-than", "30d", "--limit", "0", "--data-dir", str(data["dir"])]
    )
    assert code == 2
    assert "limit" in capsys.readouterr().err
