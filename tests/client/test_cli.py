"""The client's `kontex` commands against a real server: listings, show, the parser. Export
and import (an exact copy between two servers) are tests/client/test_archive.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kontex_client import Kontex
from kontex_client.cli import Bar, table
from tests.client.conftest import new_account
from tests.e2e.stack import DevStack

pytestmark = pytest.mark.e2e


def kontex(stack: DevStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `kontex` command, as a user runs it (env for the URL and key)."""
    env = {**os.environ, "KONTEX_URL": stack.base, "KONTEX_API_KEY": key}
    script = Path(sys.executable).with_name("kontex")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, timeout=120
    )


def a_session(client: Kontex, turns: int = 6, enrich: bool = False) -> str:
    """A session with a task tree, a rollback, a fork, files, tool calls and statuses
    (``enrich``: and log events added to its first snapshot later)."""
    session = client.sessions.create("export me", description="d", metadata={"team": "x"})
    root = client.tasks.create(session.id, "plan")
    child = client.tasks.create(session.id, "step", parent_task_id=root.id)
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
    first = None
    for i in range(turns):
        msgs = [*msgs, {"role": "user", "content": f"question {i}"}]
        made = client.snapshots.create(
            root.id,
            f"turn {i}",
            messages=msgs,
            files=[
                {"path": "big.txt", "content": "x" * 70_000},
                {"path": f"f{i}", "content": str(i)},
            ],
            tool_calls=[{"tool": "grep", "input": {"q": i}, "output": "ok"}],
            reasoning=f"thinking {i}",
            model="claude-sonnet-4-5",
        )
        first = first or made
    assert first is not None
    if enrich:
        client.snapshots.enrich(first.id, log_events=[{"message": "enriched later"}])
    client.snapshots.rollback(first.id)
    client.snapshots.create(child.id, "child", messages=[{"role": "user", "content": "sub"}])
    client.snapshots.fork(first.id, name="branch")
    client.tasks.update(child.id, status="completed")
    client.sessions.update(session.id, status="paused")
    return session.id


def test_listings_show_and_json(stack: DevStack) -> None:
    key = new_account(stack)
    with Kontex(stack.base, key) as client:
        session_id = a_session(client)
        snapshot_id = client.sessions.timeline(session_id)[0].id

    listed = kontex(stack, key, "sessions", "ls")
    assert listed.returncode == 0 and "export me" in listed.stdout and "STATUS" in listed.stdout
    rows = json.loads(kontex(stack, key, "sessions", "ls", "--json").stdout)
    assert [r["id"] for r in rows] == [session_id]

    snaps = kontex(stack, key, "snapshots", "ls", session_id)
    assert snaps.stdout.splitlines()[0].split() == [
        "ID",
        "TASK",
        "LABEL",
        "SOURCE",
        "TOKENS",
        "CREATED",
        "(UTC)",
    ]
    assert len(snaps.stdout.splitlines()) == 10
    assert len(json.loads(kontex(stack, key, "snapshots", "ls", session_id, "--json").stdout)) == 9

    shown = kontex(stack, key, "show", snapshot_id)
    assert (
        "Messages (2):" in shown.stdout
        and "question 0" in shown.stdout
        and "big.txt" in shown.stdout
    )
    as_json = json.loads(kontex(stack, key, "show", snapshot_id, "--json").stdout)
    assert as_json["bundle"]["reasoning"] == "thinking 0"

    missing = kontex(stack, key, "show", "snap_nope")
    assert missing.returncode == 1 and "not_found" in missing.stderr
    unauthorized = kontex(stack, "kontex_wrong", "sessions", "ls")
    assert unauthorized.returncode == 1 and "unauthorized" in unauthorized.stderr
    assert "this server does not know this API key" in unauthorized.stderr
    no_key = kontex(stack, "", "sessions", "ls")  # KONTEX_API_KEY empty, no --api-key
    assert no_key.returncode == 2 and no_key.stdout == ""
    assert no_key.stderr == (
        "kontex: no API key: give --api-key or set KONTEX_API_KEY (`kontex keys create` makes"
        " one)\n"
    )


def test_sessions_ls_lists_newest_first_with_last_activity(stack: DevStack) -> None:
    """Issue 24: `kontex sessions ls` is newest first, and UPDATED moves with the snapshots of
    a session (it stayed at the creation time after ten more)."""
    key = new_account(stack)
    with Kontex(stack.base, key) as client:
        older = client.sessions.create("older")
        newer = client.sessions.create("newer")
        task = client.tasks.create(older.id, "plan")
        for i in range(10):
            last = client.snapshots.create(
                task.id, f"t{i}", messages=[{"role": "user", "content": str(i)}]
            )
    listed = kontex(stack, key, "sessions", "ls")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "UPDATED", "(UTC)"]
    assert [row.split()[0] for row in rows] == [newer.id, older.id]
    shown = last.created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert rows[1].split()[-2:] == shown.split()
    as_json = json.loads(kontex(stack, key, "sessions", "ls", "--json").stdout)
    assert [r["id"] for r in as_json] == [newer.id, older.id]
    assert as_json[1]["updated_at"] == last.model_dump(mode="json")["created_at"]
    assert as_json[1]["updated_at"] != as_json[1]["created_at"]


def test_one_kontex_command_has_server_and_client_commands(stack: DevStack) -> None:
    helped = kontex(stack, "k", "--help").stdout
    for command in ("dev", "keys", "prune", "sessions", "snapshots", "show", "export", "import"):
        assert command in helped
    from kontex_client import cli

    assert (
        cli.main(
            ["--version"]
            if False
            else ["sessions", "ls", "--url", "http://127.0.0.1:9", "--api-key", "k"]
        )
        == 1
    )


def test_progress_bar_and_table_render() -> None:
    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    out = Tty()
    bar = Bar("exporting", stream=out)
    bar(1, 4)
    bar(4, 4)
    bar.end()
    assert "exporting [#######.......................] 1/4" in out.text
    assert out.text.endswith("4/4\n")
    assert table(["A", "BB"], [["x", 1], ["long", None]]).splitlines() == [
        "A     BB",
        "x     1",
        "long",
    ]


def test_the_client_alone_has_its_own_parser(
    stack: DevStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """With only kontex-client installed, its entry point builds this parser (no server
    commands) and runs the same commands."""
    from kontex_client import cli

    key = new_account(stack)
    with Kontex(stack.base, key) as client:
        client.sessions.create("alone")
    args = cli.build_parser().parse_args(
        ["sessions", "ls", "--json", "--url", stack.base, "--api-key", key]
    )
    assert args.func(args) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["alone"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["dev"])  # the server's commands come with the server
