"""``S3Blobs`` on moto's S3: write-once objects, ordered reads, prefixes, verified bundles."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kontex import tokens
from kontex.adapters.s3_blobs import S3Blobs
from kontex.adapters.sqlite_store import SqliteStore
from kontex.domain.errors import IntegrityError, NotFound
from kontex.domain.models import (
    ContextBundle,
    ContextFile,
    LogEvent,
    Message,
    ToolCall,
)
from kontex.services import keys, sessions, snapshots
from kontex.services.deps import Deps

BUCKET = "kontex-test-blobs"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 S3 client on moto with the bucket created; no real credentials are ever read."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def blobs(s3: Any) -> S3Blobs:
    return S3Blobs(BUCKET, s3)


def _raw(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


# -- the port ---------------------------------------------------------------------------------


def test_put_writes_once_and_keeps_the_first_bytes(blobs: S3Blobs, s3: Any) -> None:
    assert blobs.put("acct/sess/k1", b"first") is True
    # moto 5.2.5 answers IfNoneMatch="*" on an existing key with 412 PreconditionFailed,
    # as S3 does: the adapter reads that as "already there".
    assert blobs.put("acct/sess/k1", b"second") is False
    assert blobs.get("acct/sess/k1") == b"first"
    assert _raw(s3, "acct/sess/k1") == b"first"


def test_moto_honours_if_none_match(s3: Any) -> None:
    """Guards the test above: if moto ever stops checking the condition, we want to know."""
    from botocore.exceptions import ClientError

    s3.put_object(Bucket=BUCKET, Key="cond", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=BUCKET, Key="cond", Body=b"2", IfNoneMatch="*")
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_get_returns_bytes(blobs: S3Blobs) -> None:
    data = bytes(range(256)) * 4
    blobs.put("a/b/bin", data)
    got = blobs.get("a/b/bin")
    assert isinstance(got, bytes)
    assert got == data


def test_get_of_a_missing_key_raises_not_found(blobs: S3Blobs) -> None:
    with pytest.raises(NotFound):
        blobs.get("a/b/missing")


def test_get_many_preserves_order(blobs: S3Blobs) -> None:
    keys_ = [f"acct/sess/{i:03d}" for i in range(120)]
    for i, key in enumerate(keys_):
        blobs.put(key, f"value-{i}".encode())
    wanted = list(reversed(keys_[::3])) + keys_[:5]  # out of order, with repeats
    assert blobs.get_many(wanted) == [blobs.get(k) for k in wanted]
    assert blobs.get_many([]) == []
    assert blobs.get_many(keys_[7:8]) == [b"value-7"]


def test_get_many_raises_not_found_for_any_missing_key(blobs: S3Blobs) -> None:
    blobs.put("acct/sess/present", b"x")
    with pytest.raises(NotFound):
        blobs.get_many(["acct/sess/present", "acct/sess/absent"])


def test_delete_prefix_removes_only_that_prefix(blobs: S3Blobs, s3: Any) -> None:
    for i in range(5):
        blobs.put(f"acct_a/sess_1/{i}", b"one")
    for i in range(3):
        blobs.put(f"acct_a/sess_2/{i}", b"two")
    blobs.put("acct_b/sess_1/0", b"other account")

    assert blobs.delete_prefix("acct_a/sess_1/") == 5

    left = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    assert left == ["acct_a/sess_2/0", "acct_a/sess_2/1", "acct_a/sess_2/2", "acct_b/sess_1/0"]
    assert blobs.delete_prefix("acct_a/sess_1/") == 0


def test_delete_prefix_counts_past_one_delete_batch(blobs: S3Blobs) -> None:
    for i in range(1005):
        blobs.put(f"big/sess/{i}", b".")
    assert blobs.delete_prefix("big/") == 1005
    assert blobs.size_of_prefix("big/") == 0


def test_size_of_prefix(blobs: S3Blobs) -> None:
    blobs.put("acct/s1/a", b"12345")
    blobs.put("acct/s1/b", b"1234567890")
    blobs.put("acct/s2/a", b"123")
    assert blobs.size_of_prefix("acct/s1/") == 15
    assert blobs.size_of_prefix("acct/s2/") == 3
    assert blobs.size_of_prefix("") == 18
    assert blobs.size_of_prefix("nobody/") == 0


def test_prefix_option_namespaces_every_key(s3: Any) -> None:
    blobs = S3Blobs(BUCKET, s3, prefix="tenant-x/")
    assert blobs.put("acct/s/k", b"v") is True
    assert _raw(s3, "tenant-x/acct/s/k") == b"v"
    assert blobs.get("acct/s/k") == b"v"
    assert blobs.size_of_prefix("acct/") == 1
    assert blobs.delete_prefix("acct/") == 1


# -- bundles over S3 --------------------------------------------------------------------------

T = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


BIG = "row,value\n" * 8_000


def _bundle() -> ContextBundle:
    readme = "# Project\n\nKontex keeps agent context. Café, naïve, 日本語 — unicode survives.\n"
    return ContextBundle(
        messages=[
            Message(role="system", content="You are a careful coding agent."),
            Message(role="user", content="Read the README and summarise it."),
            Message(
                role="assistant",
                content=[
                    {"type": "text", "text": "Reading the README first."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "read_file",
                        "input": {"path": "README.md"},
                    },
                ],
            ),
            Message(
                role="tool",
                content=[{"type": "tool_result", "tool_use_id": "toolu_01", "content": readme}],
                name="read_file",  # an unknown key: kept as written
            ),
            Message(role="assistant", content="It describes a snapshot store."),
        ],
        tool_calls=[
            ToolCall(
                id="toolu_01",
                tool="read_file",
                input={"path": "README.md"},
                output={"bytes": len(readme)},
                timestamp=T,
            ),
            ToolCall(id="toolu_02", tool="grep", input={"q": "x"}, status="error", output="boom"),
        ],
        files=[
            ContextFile(path="README.md", content=readme),
            ContextFile(path="src/app.py", content="print('hi')\n", token_count=4),
            ContextFile(path="data/big.csv", content=BIG),  # above 64 KiB: an S3 object
        ],
        reasoning="The user wants a summary; the README is the source.",
        log_events=[
            LogEvent(message="tool started", timestamp=T, data={"tool": "read_file"}),
            LogEvent(message="tool failed", level="error", data={"tool": "grep"}),
        ],
        model="claude-sonnet-4",
    )


@pytest.fixture
def s3_deps(blobs: S3Blobs, tmp_path: Path) -> Iterator[Deps]:
    store = SqliteStore(tmp_path / "kontex.db")
    store.migrate()
    yield Deps(store=store, blobs=blobs, api_key_secret=b"x")
    store.close()


def _task(deps: Deps) -> tuple[str, str, str]:
    key, _ = keys.create_key(deps, "bench")
    session = sessions.create_session(deps, key.account_id, "s3 round trip")
    task = sessions.create_task(deps, key.account_id, session.id, "main")
    return key.account_id, session.id, task.id


def _content(bundle: ContextBundle) -> dict[str, Any]:
    dumped = bundle.model_dump(mode="json")
    for f in dumped["files"]:
        # A file written without ``token_count`` is stored with its counted tokens.
        if f["token_count"] is None:
            f["token_count"] = tokens.count_text(f["content"])
    return {
        name: dumped[name]
        for name in ("messages", "tool_calls", "files", "reasoning", "log_events", "model")
    }


def test_a_bundle_round_trips_over_s3(s3_deps: Deps, s3: Any) -> None:
    account_id, session_id, task_id = _task(s3_deps)
    written = _bundle()

    first = snapshots.create_snapshot(s3_deps, account_id, task_id, "turn 1", written)
    read = snapshots.get_bundle(s3_deps, account_id, first.id)

    assert _content(read) == _content(written)
    assert read.files[0].token_count == tokens.count_text(written.files[0].content)
    assert read.messages[3].model_dump()["name"] == "read_file"
    assert read.captured_at is not None
    assert read.token_total == first.token_total > 0

    # Given a second snapshot that repeats the history and adds one message
    longer = written.model_copy(
        update={"messages": [*written.messages, Message(role="user", content="Thanks.")]}
    )
    before = s3.list_objects_v2(Bucket=BUCKET)["KeyCount"]
    second = snapshots.create_snapshot(s3_deps, account_id, task_id, "turn 2", longer)
    after = s3.list_objects_v2(Bucket=BUCKET)["KeyCount"]

    # Then nothing went to S3: items live in the database; only large file bodies are objects
    assert before == 1 and after - before == 0
    assert _content(snapshots.get_bundle(s3_deps, account_id, second.id)) == _content(longer)
    assert _content(snapshots.get_bundle(s3_deps, account_id, first.id)) == _content(written)
    assert all(
        o["Key"].startswith(f"{account_id}/{session_id}/")
        for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    )


@pytest.mark.parametrize("damage", ["rewritten", "deleted"])
def test_a_tampered_object_is_never_served(s3_deps: Deps, s3: Any, damage: str) -> None:
    account_id, session_id, task_id = _task(s3_deps)
    snap = snapshots.create_snapshot(s3_deps, account_id, task_id, "sealed", _bundle())
    key = f"{account_id}/{session_id}/{hashlib.sha256(BIG.encode()).hexdigest()}"
    original = _raw(s3, key)

    # When someone with bucket access rewrites the object in place (no IfNoneMatch) or drops it
    if damage == "rewritten":
        s3.put_object(Bucket=BUCKET, Key=key, Body=original.replace(b"r", b"4", 1))
    else:
        s3.delete_object(Bucket=BUCKET, Key=key)

    # Then the bundle is refused rather than served altered, and the key is not revealed
    with pytest.raises(IntegrityError) as refused:
        snapshots.get_bundle(s3_deps, account_id, snap.id)
    assert key not in str(refused.value)


def test_empty_prefix_is_never_a_delete_all(blobs: S3Blobs) -> None:
    from kontex.domain.errors import InvalidInput

    blobs.put("acct/sess/x", b"x")
    for prefix in ("", "/"):
        with pytest.raises(InvalidInput):
            blobs.delete_prefix(prefix)
    assert blobs.get("acct/sess/x") == b"x"


class _Racing:
    """An S3 client whose conditional puts first meet a concurrent write (409)."""

    def __init__(self, other_write_lands: bool) -> None:
        self.other_write_lands = other_write_lands
        self.puts = 0

    def put_object(self, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        self.puts += 1
        if self.puts == 1:
            raise ClientError({"Error": {"Code": "ConditionalRequestConflict"}}, "PutObject")

    def head_object(self, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        if not self.other_write_lands:
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")


def test_a_conflicting_write_counts_only_once_the_object_is_there() -> None:
    landed = _Racing(other_write_lands=True)
    assert S3Blobs("b", client=landed).put("k", b"x") is False and landed.puts == 1
    failed = _Racing(other_write_lands=False)
    assert S3Blobs("b", client=failed).put("k", b"x") is True and failed.puts == 2
