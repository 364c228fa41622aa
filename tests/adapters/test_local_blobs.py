"""``LocalBlobs``: write-once files, prefixes, and tampered files never served."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kontex.adapters.local_blobs import LocalBlobs
from kontex.adapters.sqlite_store import SqliteStore
from kontex.domain.errors import IntegrityError, InvalidInput, NotFound
from kontex.domain.models import ContextBundle, ContextFile, Message, ToolCall
from kontex.services import keys, sessions, snapshots
from kontex.services.deps import Deps


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobs:
    return LocalBlobs(tmp_path / "blobs")


def test_put_writes_once_and_keeps_the_first_bytes(blobs: LocalBlobs) -> None:
    assert blobs.put("acct/sess/k1", b"first") is True
    assert blobs.put("acct/sess/k1", b"second") is False
    assert blobs.get("acct/sess/k1") == b"first"
    assert (blobs.root / "acct" / "sess" / "k1").read_bytes() == b"first"
    # no temporary files are left behind by either call
    assert sorted(p.name for p in (blobs.root / "acct" / "sess").iterdir()) == ["k1"]


def test_get_of_a_missing_key_raises_not_found(blobs: LocalBlobs) -> None:
    with pytest.raises(NotFound):
        blobs.get("acct/sess/missing")


def test_get_many_preserves_order(blobs: LocalBlobs) -> None:
    keys_ = [f"acct/sess/{i:03d}" for i in range(50)]
    for i, key in enumerate(keys_):
        blobs.put(key, f"value-{i}".encode())
    wanted = list(reversed(keys_[::4])) + keys_[:3]
    assert blobs.get_many(wanted) == [f"value-{int(k[-3:])}".encode() for k in wanted]


@pytest.mark.parametrize("key", ["", "a//b", "a/../b", "./a", "a/b/"])
def test_keys_cannot_escape_or_be_empty(blobs: LocalBlobs, key: str) -> None:
    with pytest.raises(InvalidInput):
        blobs.put(key, b"x")


def test_delete_prefix_removes_only_that_prefix(blobs: LocalBlobs) -> None:
    for i in range(4):
        blobs.put(f"acct_a/sess_1/{i}", b"one")
    blobs.put("acct_a/sess_2/0", b"two")
    blobs.put("acct_b/sess_1/0", b"other account")

    assert blobs.delete_prefix("acct_a/sess_1/") == 4

    with pytest.raises(NotFound):
        blobs.get("acct_a/sess_1/0")
    assert blobs.get("acct_a/sess_2/0") == b"two"
    assert blobs.get("acct_b/sess_1/0") == b"other account"
    assert blobs.delete_prefix("acct_a/sess_1/") == 0


def test_size_of_prefix(blobs: LocalBlobs) -> None:
    assert blobs.size_of_prefix("") == 0
    blobs.put("acct/s1/a", b"12345")
    blobs.put("acct/s1/b", b"1234567890")
    blobs.put("acct/s2/a", b"123")
    assert blobs.size_of_prefix("acct/s1/") == 15
    assert blobs.size_of_prefix("acct/") == 18
    assert blobs.size_of_prefix("") == 18
    assert blobs.size_of_prefix("nobody/") == 0


# -- tampering --------------------------------------------------------------------------------


@pytest.fixture
def local_deps(blobs: LocalBlobs, tmp_path: Path) -> Iterator[Deps]:
    store = SqliteStore(tmp_path / "kontex.db")
    store.migrate()
    yield Deps(store=store, blobs=blobs, api_key_secret=b"x")
    store.close()


def test_a_rewritten_file_is_never_served(local_deps: Deps, blobs: LocalBlobs) -> None:
    key, _ = keys.create_key(local_deps, "local")
    account_id = key.account_id
    session = sessions.create_session(local_deps, account_id, "tamper")
    task = sessions.create_task(local_deps, account_id, session.id, "main")
    big = "alpha beta gamma\n" * 5_000  # above 64 KiB: the one kind of content kept as a file
    bundle = ContextBundle(
        messages=[Message(role="user", content="hello")],
        tool_calls=[ToolCall(id="t1", tool="read_file", input={"path": "a.txt"})],
        files=[ContextFile(path="a.txt", content=big)],
    )
    snap = snapshots.create_snapshot(local_deps, account_id, task.id, "sealed", bundle)
    assert snapshots.get_bundle(local_deps, account_id, snap.id).files[0].content == big
    path = blobs.root / account_id / session.id / hashlib.sha256(big.encode()).hexdigest()
    assert path.is_file()

    # When the file is rewritten in place behind the store's back
    path.write_bytes(path.read_bytes().replace(b"a", b"4", 1) + b"\n")

    # Then reading the bundle fails loudly instead of serving altered content
    with pytest.raises(IntegrityError):
        snapshots.get_bundle(local_deps, account_id, snap.id)


def test_empty_prefix_is_never_a_delete_all(blobs: LocalBlobs) -> None:
    from kontex.domain.errors import InvalidInput

    blobs.put("acct/sess/x", b"x")
    for prefix in ("", "/"):
        with pytest.raises(InvalidInput):
            blobs.delete_prefix(prefix)
    assert blobs.get("acct/sess/x") == b"x"
