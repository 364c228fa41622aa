"""The client's `kontex` commands against real servers: listings, show, and a session exported
from one `kontex dev` and imported into another (a different data dir), bundles identical; a
tampered archive is refused with nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kontex_client import Kontex
from kontex_client.cli import Bar, table
from tests.client.conftest import UNLIMITED, new_account, start_drained
from tests.e2e.stack import DevStack, create_key, stop_dev

pytestmark = pytest.mark.e2e
CONTENT = (
    "messages",
    "tool_calls",
    "files",
    "reasoning",
    "log_events",
    "model",
    "token_total",
    "captured_at",
)


def kontex(stack: DevStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `kontex` command, as a user runs it (env for the URL and key)."""
    env = {**os.environ, "KONTEX_URL": stack.base, "KONTEX_API_KEY": key}
    script = Path(sys.executable).with_name("kontex")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    running = start_drained(tmp_path_factory.mktemp("second") / "data", UNLIMITED)
    yield running
    stop_dev(running)


def a_session(client: Kontex) -> str:
    """A session with a task tree, a rollback, a fork, files, tool calls and statuses."""
    session = client.sessions.create("export me", description="d", metadata={"team": "x"})
    root = client.tasks.create(session.id, "plan")
    child = client.tasks.create(session.id, "step", parent_task_id=root.id)
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
    first = None
    for i in range(6):
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
    client.snapshots.rollback(first.id)
    client.snapshots.create(child.id, "child", messages=[{"role": "user", "content": "sub"}])
    client.snapshots.fork(first.id, name="branch")
    client.tasks.update(child.id, status="completed")
    client.sessions.update(session.id, status="paused")
    return session.id


def bundles(client: Kontex, session_id: str) -> list[dict[str, Any]]:
    out = []
    for entry in client.sessions.timeline(session_id):
        bundle = client.snapshots.bundle(entry.id).model_dump(mode="json")
        out.append({"label": entry.label, **{k: bundle[k] for k in CONTENT}})
    return out


def test_export_import_round_trip_between_two_servers(
    stack: DevStack, second: DevStack, tmp_path: Path
) -> None:
    key_a = new_account(stack)
    key_b = create_key(second.data_dir, "importer")
    with Kontex(stack.base, key_a) as a:
        session_id = a_session(a)
        expected = bundles(a, session_id)
        tree_a = [(t.name, [c.name for c in t.children]) for t in a.tasks.tree(session_id)]

    archive = tmp_path / "run.kontex"
    done = kontex(stack, key_a, "export", session_id, "-o", str(archive), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["snapshots"] == len(expected) == 9 and archive.exists()

    done = kontex(second, key_b, "import", str(archive), "--json")
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    with Kontex(second.base, key_b) as b:
        assert bundles(b, imported["session_id"]) == expected  # identical content, in order
        session = b.sessions.get(imported["session_id"])
        assert (session.name, session.description, session.metadata, session.status) == (
            "export me",
            "d",
            {"team": "x"},
            "paused",
        )
        tree_b = [(t.name, [c.name for c in t.children]) for t in b.tasks.tree(session.id)]
        assert sorted(tree_b) == sorted(tree_a)

    # and back: exported again from the second server, the archive holds the same content
    again = tmp_path / "again.kontex"
    assert kontex(second, key_b, "export", imported["session_id"], "-o", str(again)).returncode == 0
    with zipfile.ZipFile(archive) as one, zipfile.ZipFile(again) as two:
        items = {n for n in one.namelist() if n.startswith("items/")}
        assert items == {n for n in two.namelist() if n.startswith("items/")}
        assert len(items) < 6 * 4  # each distinct message and file once


def tampered(source: Path, target: Path, member: str, change: Any) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, change(data) if name == member else data)


def test_a_tampered_archive_is_refused_and_nothing_is_written(
    stack: DevStack, second: DevStack, tmp_path: Path
) -> None:
    key_a = new_account(stack)
    key_b = create_key(second.data_dir, "victim")
    with Kontex(stack.base, key_a) as a:
        session_id = a_session(a)
    archive = tmp_path / "run.kontex"
    assert kontex(stack, key_a, "export", session_id, "-o", str(archive)).returncode == 0
    with zipfile.ZipFile(archive) as zf:
        item = next(
            n for n in zf.namelist() if n.startswith("items/") and b"question" in zf.read(n)
        )
        bundle = next(n for n in zf.namelist() if n.startswith("bundles/"))

    cases = {
        "item": (item, lambda d: d.replace(b"question", b"QUESTION")),
        "bundle": (bundle, lambda d: d.replace(b'"thinking', b'"THINKING')),
        "manifest": ("kontex-export.json", lambda d: d.replace(b"export me", b"hacked!!!")),
        "sums": ("SHA256SUMS", lambda d: d[:-80]),
    }
    for name, (member, change) in cases.items():
        bad = tmp_path / f"{name}.kontex"
        tampered(archive, bad, member, change)
        done = kontex(second, key_b, "import", str(bad))
        assert done.returncode == 1, (name, done.stdout)
        assert "integrity_error: archive refused" in done.stderr, (name, done.stderr)
    not_zip = tmp_path / "junk.kontex"
    not_zip.write_bytes(b"not an archive")
    assert "not a .kontex archive" in kontex(second, key_b, "import", str(not_zip)).stderr
    with Kontex(second.base, key_b) as b:
        assert b.sessions.list().data == []  # nothing half-written


def test_a_failing_import_is_rolled_back(stack: DevStack, second: DevStack, tmp_path: Path) -> None:
    from kontex_client import archive as kontex_archive

    key_a = new_account(stack)
    with Kontex(stack.base, key_a) as a:
        session_id = a_session(a)
        path = tmp_path / "run.kontex"
        kontex_archive.export_session(a, session_id, path)
    verified = kontex_archive.read(path)
    verified.bundles[verified.snapshots[4]["id"]]["messages"] = [{"role": "nobody", "content": 1}]
    key_b = create_key(second.data_dir, "rollback")
    with Kontex(second.base, key_b) as b:
        with pytest.raises(Exception) as failed:
            kontex_archive.import_session(b, verified)
        assert getattr(failed.value, "code", None) == "validation_error"
        assert b.sessions.list().data == []  # the half-made session was purged


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
