"""`kontex export` / `kontex import` as an exact copy between two real servers, on SQLite and on
PostgreSQL (issue 22, defect 6): sessions written over REST (a rollback, a fork, an enrich
revision), OTLP spans (usage), the proxy (usage and cost), a LangGraph thread (KontexSaver) and
an Agents SDK session (KontexSession).

For each: export -> import -> export gives the same archive but for the ids (the import's id
map); what the target serves equals what the source serves; the thread and the Agents SDK
session read back there; `--keep-ids` into an account of a server that has none of the ids
gives the byte-identical archive, and is refused where they exist. A tampered archive is
refused with nothing written, and a version 1 archive still imports."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from agents import Runner

from kontex_client import ConflictError, Kontex
from kontex_client import archive as kontex_archive
from kontex_client.langgraph import KontexSaver
from kontex_client.openai_agents import KontexSession
from tests.client.conftest import UNLIMITED, start_drained
from tests.client.react_agent import ask, build
from tests.client.test_cli import a_session, kontex
from tests.client.test_openai_agents import ScriptedModel
from tests.client.test_openai_agents import agent as sdk_agent
from tests.conftest import _postgres_schema_url
from tests.e2e.stack import DevStack, create_key, stop_dev
from tests.otlp.spans import openllmetry_agent, protobuf, record
from tests.proxy.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.e2e
IDS = re.compile(r"(?:sess|task|snap)_[0-9a-z]{26}")
KINDS = ["rest", "otlp", "proxy", "langgraph", "agents"]
V1_ARCHIVE = Path(__file__).parent.parent / "data" / "archive-v1.kontex"


class Server:
    def __init__(self, stack: DevStack, env: dict[str, str]) -> None:
        self.stack, self.env = stack, env

    def key(self, label: str) -> str:
        """A key of a new account (nothing else in it)."""
        return create_key(self.stack.data_dir, label, self.env)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def servers(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeAnthropic,
) -> Iterator[tuple[Server, Server]]:
    """Two servers on their own databases (two data dirs, or two PostgreSQL schemas)."""
    with ExitStack() as cleanup:
        made = []
        for name in ("source", "target"):
            env = {**UNLIMITED, "ANTHROPIC_API_URL": upstream.url}
            if request.param == "postgres":
                schema = _postgres_schema_url()
                env["KONTEX_DATABASE_URL"] = next(schema)
                cleanup.callback(next, schema, None)  # drops the schema
            data = tmp_path_factory.mktemp(f"{name}-{request.param}") / "data"
            create_key(data, "first", env)  # the data dir and its schema, before the server
            running = start_drained(data, env)
            cleanup.callback(stop_dev, running)
            made.append(Server(running, env))
        yield made[0], made[1]


def settled(read: Any, at_least: int, timeout: float = 60) -> Any:
    """``read()`` once it has ``at_least`` entries and stopped changing (queued work done)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        now = read()
        if len(now) >= at_least and now == last:
            return now
        last = now
        time.sleep(0.5)
    raise AssertionError(f"never settled at {at_least}: {last}")


def session_named(client: Kontex, name: str) -> str:
    def read() -> list[str]:
        return [s.id for s in client.sessions.list(limit=100).data if s.name == name]

    return str(settled(read, 1)[0])


def rest_session(client: Kontex) -> str:
    """A session made through the REST API: tasks, files, tool calls, a late enrichment, a
    rollback, a fork and statuses (test_cli's builder, four turns)."""
    return a_session(client, turns=4, enrich=True)


def otlp_session(client: Kontex) -> str:
    client.ingest.traces(protobuf(record(openllmetry_agent)))  # session "checkout-bot"
    session_id = session_named(client, "checkout-bot")
    settled(lambda: client.sessions.timeline(session_id), 2)
    return session_id


def proxy_session(client: Kontex) -> str:
    for text in ("hello", "and the weather?"):
        client.proxy.messages(
            upstream_api_key="sk-ant-test",
            session_id="proxied-run",  # a name: the session is made on first use
            model="claude-sonnet-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": text}],
        )
    session_id = session_named(client, "proxied-run")
    settled(lambda: client.sessions.timeline(session_id), 2)
    return session_id


def langgraph_config() -> dict[str, Any]:
    return {"configurable": {"thread_id": "archived-thread"}}


def langgraph_session(client: Kontex) -> str:
    build(KontexSaver(client)).invoke(ask("how do retries work"), langgraph_config())
    latest = client.checkpoints.get("archived-thread")
    assert latest is not None
    return latest.session_id


def agents_session(client: Kontex, base: str, key: str) -> str:
    async def run() -> tuple[str, str] | None:
        session = KontexSession("archived-chat", base_url=base, api_key=key)
        model = ScriptedModel()
        await Runner.run(sdk_agent(model), "what is the weather in Paris?", session=session)
        await Runner.run(sdk_agent(model), "thanks", session=session)
        return await session.kontex_ids()

    ids = asyncio.run(run())
    assert ids is not None
    return ids[0]


@pytest.fixture(scope="module")
def source(servers: tuple[Server, Server]) -> dict[str, Any]:
    """One session of each kind in a new account of the source server."""
    server = servers[0]
    key = server.key("source")
    with Kontex(server.stack.base, key) as client:
        made = {
            "rest": rest_session(client),
            "otlp": otlp_session(client),
            "proxy": proxy_session(client),
            "langgraph": langgraph_session(client),
            "agents": agents_session(client, server.stack.base, key),
        }
    return {"key": key, "sessions": made}


def export(server: Server, key: str, session_id: str, target: Path) -> dict[str, Any]:
    done = kontex(server.stack, key, "export", session_id, "-o", str(target), "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def import_(server: Server, key: str, path: Path, *flags: str) -> Any:
    return kontex(server.stack, key, "import", str(path), "--json", *flags)


def document(path: Path) -> dict[str, Any]:
    found = kontex_archive.read(path).document
    assert found is not None
    return found


def mapped(value: Any, ids: dict[str, str]) -> Any:
    return json.loads(IDS.sub(lambda m: ids.get(m.group(0), m.group(0)), json.dumps(value)))


def served(client: Kontex, session_id: str) -> dict[str, Any]:
    """What the API serves of a session: its row, tree, timeline, stats and every bundle of
    every revision of every snapshot."""
    timeline = [e.model_dump(mode="json") for e in client.sessions.timeline(session_id)]
    bundles = {}
    for entry in timeline:
        for revision in client.snapshots.revisions(entry["id"]):
            bundle = client.snapshots.bundle(entry["id"], revision=revision.seq)
            bundles[f"{entry['id']}@{revision.seq}"] = bundle.model_dump(mode="json")
    return {
        "session": client.sessions.get(session_id).model_dump(mode="json"),
        "tree": [t.model_dump(mode="json") for t in client.tasks.tree(session_id)],
        "timeline": timeline,
        "stats": client.sessions.stats(session_id).model_dump(mode="json"),
        "bundles": bundles,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_export_import_export_is_the_same_archive_but_for_the_ids(
    servers: tuple[Server, Server], source: dict[str, Any], kind: str, tmp_path: Path
) -> None:
    origin, target = servers
    session_id = source["sessions"][kind]
    first = tmp_path / "first.kontex"
    summary = export(origin, source["key"], session_id, first)
    assert summary["version"] == 2 and summary["snapshots"] >= 2

    key = target.key(f"import {kind}")
    done = import_(target, key, first)
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    ids = imported["ids"]
    assert imported["from_session_id"] == session_id != imported["session_id"]
    assert ids[session_id] == imported["session_id"]

    again = tmp_path / "again.kontex"
    export(target, key, imported["session_id"], again)
    back = {new: old for old, new in ids.items()}
    assert mapped(document(again), back) == document(first)
    with zipfile.ZipFile(first) as one, zipfile.ZipFile(again) as two:
        content = {n: one.read(n) for n in one.namelist() if "/" in n}
        assert content == {n: two.read(n) for n in two.namelist() if "/" in n}  # same bytes

    # what the target serves is what the source served: source, usage, cost, lineage, times
    with (
        Kontex(origin.stack.base, source["key"]) as a,
        Kontex(target.stack.base, key) as b,
    ):
        before = served(a, session_id)
        after = mapped(served(b, imported["session_id"]), back)
    assert after == before
    if kind in ("otlp", "proxy"):
        usage = after["stats"]["usage"]
        assert usage["calls"] >= 2 and usage["input_tokens"] > 0
        assert {e["source"] for e in after["timeline"]} >= {
            "otlp": {"openllmetry"},
            "proxy": {"proxy"},
        }[kind]
    if kind == "proxy":
        assert usage["cost_usd"] > 0
    if kind == "rest":
        assert any(e["rollback_of"] for e in after["timeline"])
        assert any(e["forked_from"] for e in after["timeline"])
        assert any(e["enriched"] for e in after["timeline"])


def test_the_thread_and_the_agents_session_read_back_after_import(
    servers: tuple[Server, Server], source: dict[str, Any], tmp_path: Path
) -> None:
    origin, target = servers
    key = target.key("readers")
    for kind in ("langgraph", "agents"):
        path = tmp_path / f"{kind}.kontex"
        export(origin, source["key"], source["sessions"][kind], path)
        assert import_(target, key, path).returncode == 0

    def state(base: str, api_key: str) -> tuple[Any, list[Any]]:
        graph = build(KontexSaver(base_url=base, api_key=api_key))
        history = [
            (s.config["configurable"]["checkpoint_id"], s.metadata, s.values, s.next)
            for s in graph.get_state_history(langgraph_config())
        ]
        return graph.get_state(langgraph_config()).values, history

    was, was_history = state(origin.stack.base, source["key"])
    now, now_history = state(target.stack.base, key)
    assert now == was and len(was["messages"]) == 4
    assert now_history == was_history and len(was_history) == 5

    async def items(base: str, api_key: str) -> list[Any]:
        return await KontexSession("archived-chat", base_url=base, api_key=api_key).get_items()

    had = asyncio.run(items(origin.stack.base, source["key"]))
    assert asyncio.run(items(target.stack.base, key)) == had and len(had) == 6

    # and the imported thread goes on where it stopped
    graph = build(KontexSaver(base_url=target.stack.base, api_key=key))
    more = graph.invoke(ask("and timeouts?"), langgraph_config())
    assert more["messages"][:4] == was["messages"] and len(more["messages"]) == 8


def test_keep_ids_gives_the_same_bytes_and_is_refused_where_the_ids_exist(
    servers: tuple[Server, Server], source: dict[str, Any], tmp_path: Path
) -> None:
    origin, target = servers
    key, other = target.key("kept"), target.key("other")
    for kind in KINDS:
        first = tmp_path / f"{kind}.kontex"
        export(origin, source["key"], source["sessions"][kind], first)
        done = import_(target, key, first, "--keep-ids")
        assert done.returncode == 0, done.stderr
        imported = json.loads(done.stdout)
        assert all(old == new for old, new in imported["ids"].items())
        again = tmp_path / f"{kind}-again.kontex"
        export(target, key, source["sessions"][kind], again)
        assert again.read_bytes() == first.read_bytes(), kind  # byte for byte

        # where the ids exist (here, in any account, or on the source): refused, not written
        verified = kontex_archive.read(first)
        for server, api_key in ((target, key), (target, other), (origin, source["key"])):
            with Kontex(server.stack.base, api_key) as c, pytest.raises(ConflictError) as refused:
                kontex_archive.import_session(c, verified, keep_ids=True)
            assert "exist here already" in refused.value.message
    with Kontex(target.stack.base, other) as c:
        assert c.sessions.list().data == []
    refused = import_(target, other, first, "--keep-ids")  # as the command says it
    assert refused.returncode == 1 and "exist here already" in refused.stderr, refused.stderr


def rewrite(source: Path, target: Path, change: Any) -> None:
    """A copy of the archive with ``change(members)`` applied and its sums made to match."""
    with zipfile.ZipFile(source) as src:
        members = {n: src.read(n) for n in src.namelist() if n != kontex_archive.SUMS}
    change(members)
    kontex_archive.write_zip(members, target)


def test_a_tampered_archive_is_refused_with_nothing_written(
    servers: tuple[Server, Server], source: dict[str, Any], tmp_path: Path
) -> None:
    origin, target = servers
    good = tmp_path / "rest.kontex"
    export(origin, source["key"], source["sessions"]["rest"], good)
    rows = json.loads(zipfile.ZipFile(good).read(kontex_archive.MANIFEST))
    item = next(i for i in rows["items"] if i["kind"] == "message")["body"]
    key = target.key("victim")

    def renamed_item(members: dict[str, bytes]) -> None:
        """An altered message under its new address, every name and sum made to match: only
        the server, following the manifests' references, can see it is not what they name."""
        data = members.pop(item).replace(b"question", b"QUESTION")
        changed = json.loads(members[kontex_archive.MANIFEST])
        address = kontex_archive.item_address("message", data)
        for row in changed["items"]:
            if row["body"] == item:
                row["address"], row["body"] = address, f"items/{address}"
        members[f"items/{address}"] = data
        members[kontex_archive.MANIFEST] = json.dumps(changed).encode()

    client_side = {
        "item": (item, lambda d: d.replace(b"question", b"QUESTION")),
        "rows": (kontex_archive.MANIFEST, lambda d: d.replace(b"export me", b"hacked!!!")),
        "sums": (kontex_archive.SUMS, lambda d: d[:-80]),
    }
    for name, (member, change) in client_side.items():
        bad = tmp_path / f"{name}.kontex"
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
            for each in src.namelist():
                data = src.read(each)
                dst.writestr(each, change(data) if each == member else data)
        done = import_(target, key, bad)
        assert done.returncode == 1, (name, done.stdout)
        assert "integrity_error: archive refused" in done.stderr, (name, done.stderr)

    server_side = tmp_path / "renamed.kontex"
    rewrite(good, server_side, renamed_item)
    done = import_(target, key, server_side)
    assert done.returncode == 1, done.stdout
    assert "validation_error: archive refused" in done.stderr, done.stderr
    assert "missing message" in done.stderr

    untouched = tmp_path / "untouched.kontex"
    rewrite(good, untouched, lambda members: None)
    junk = tmp_path / "junk.kontex"
    junk.write_bytes(b"not an archive")
    assert "not a .kontex archive" in import_(target, key, junk).stderr
    with Kontex(target.stack.base, key) as b:
        assert b.sessions.list().data == []  # nothing half-written
    assert import_(target, key, untouched).returncode == 0  # and the untouched archive goes in


def test_a_version_1_archive_still_imports(servers: tuple[Server, Server]) -> None:
    """A file `kontex export` wrote before version 2 (tests/data/archive-v1.kontex)."""
    _, target = servers
    key = target.key("v1")
    done = import_(target, key, V1_ARCHIVE)
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    old = kontex_archive.read(V1_ARCHIVE)
    assert old.version == 1
    with Kontex(target.stack.base, key) as b:
        session = b.sessions.get(imported["session_id"])
        assert (session.name, session.status) == ("made by version 1", "paused")
        timeline = b.sessions.timeline(session.id)
        assert [e.label for e in timeline] == [s["label"] for s in old.snapshots]
        for entry, snapshot in zip(timeline, old.snapshots, strict=True):
            bundle = b.snapshots.bundle(entry.id).model_dump(mode="json")
            wanted = old.bundles[snapshot["id"]]
            assert {k: bundle[k] for k in ("messages", "reasoning", "model")} == {
                k: wanted[k] for k in ("messages", "reasoning", "model")
            }
    assert "version 1" in import_(target, key, V1_ARCHIVE, "--keep-ids").stderr


def test_a_failing_version_1_import_is_rolled_back(servers: tuple[Server, Server]) -> None:
    _, target = servers
    verified = kontex_archive.read(V1_ARCHIVE)
    verified.bundles[verified.snapshots[2]["id"]]["messages"] = [{"role": "nobody", "content": 1}]
    with Kontex(target.stack.base, target.key("rollback")) as b:
        with pytest.raises(Exception) as failed:
            kontex_archive.import_session(b, verified)
        assert getattr(failed.value, "code", None) == "validation_error"
        assert b.sessions.list().data == []  # the half-made session was purged


def test_the_archive_document_round_trips_through_its_members(
    servers: tuple[Server, Server], source: dict[str, Any], tmp_path: Path
) -> None:
    """The zip holds the server's document exactly: bytes as members, nothing else."""
    origin, _ = servers
    with Kontex(origin.stack.base, source["key"]) as a:
        answered = a.sessions.export(source["sessions"]["rest"]).model_dump(mode="json")
    path = tmp_path / "rest.kontex"
    kontex_archive.write_zip(kontex_archive.to_members(answered), path)
    assert document(path) == answered
    assert base64.b64decode(answered["bodies"][0]["data"]) == b"x" * 70_000
