from __future__ import annotations

import pytest

from kontex.domain.errors import InvalidInput, NotFound, Unauthorized
from kontex.services import keys, sessions
from kontex.services.deps import Deps


def test_keys_authenticate_until_revoked(deps: Deps) -> None:
    key, plaintext = keys.create_key(deps, "laptop")
    assert plaintext.startswith("kontex_") and len(plaintext) >= len("kontex_") + 32
    assert keys.authenticate(deps, plaintext).id == key.id
    second, other_plain = keys.create_key(deps, "ci", account_id=key.account_id)
    assert second.account_id == key.account_id
    keys.revoke_key(deps, key.account_id, key.id)
    with pytest.raises(Unauthorized):
        keys.authenticate(deps, plaintext)
    assert keys.authenticate(deps, other_plain).id == second.id
    for bad in (None, "", "kontex_wrong", plaintext + "x", "Bearer " + other_plain):
        with pytest.raises(Unauthorized):
            keys.authenticate(deps, bad)


def test_key_for_unknown_account_is_not_found(deps: Deps) -> None:
    with pytest.raises(NotFound):
        keys.create_key(deps, "x", account_id="acct_nope")


def test_keys_hash_with_the_server_secret(deps: Deps) -> None:
    _, plaintext = keys.create_key(deps, "a")
    deps.api_key_secret = b"another-secret"
    with pytest.raises(Unauthorized):
        keys.authenticate(deps, plaintext)


def test_session_lifecycle_and_pages(deps: Deps) -> None:
    key, _ = keys.create_key(deps, "t")
    acct = key.account_id
    made = [sessions.create_session(deps, acct, f"s{i}", metadata={"i": i}) for i in range(5)]
    page = sessions.list_sessions(deps, acct, limit=2)
    assert [s.id for s in page.items] == [made[0].id, made[1].id]
    seen = list(page.items)
    while page.next_cursor:
        page = sessions.list_sessions(deps, acct, limit=2, cursor=page.next_cursor)
        seen.extend(page.items)
    assert [s.id for s in seen] == [s.id for s in made]
    # newest first (the dashboard's order), pages following the same cursor the other way
    page = sessions.list_sessions(deps, acct, limit=2, newest_first=True)
    newest = list(page.items)
    while page.next_cursor:
        page = sessions.list_sessions(
            deps, acct, limit=2, cursor=page.next_cursor, newest_first=True
        )
        newest.extend(page.items)
    assert [s.id for s in newest] == [s.id for s in reversed(made)]
    paused = sessions.update_session(deps, acct, made[1].id, status="paused", name="renamed")
    assert (paused.status, paused.name) == ("paused", "renamed")
    assert [s.id for s in sessions.list_sessions(deps, acct, status="paused").items] == [made[1].id]
    assert sessions.update_session(deps, acct, made[0].id, status="completed").status == "completed"
    for bad in ({"status": "done"}, {"name": ""}, {"name": "x" * 201}):
        with pytest.raises(InvalidInput):
            sessions.update_session(deps, acct, made[2].id, **bad)
    with pytest.raises(InvalidInput):
        sessions.list_sessions(deps, acct, cursor="not-a-cursor")
    with pytest.raises(InvalidInput):
        sessions.list_sessions(deps, acct, limit=101)


def test_task_tree_and_parent_rules(deps: Deps) -> None:
    key, _ = keys.create_key(deps, "t")
    acct = key.account_id
    s1 = sessions.create_session(deps, acct, "one")
    s2 = sessions.create_session(deps, acct, "two")
    root = sessions.create_task(deps, acct, s1.id, "root")
    child = sessions.create_task(deps, acct, s1.id, "child", parent_task_id=root.id)
    sessions.create_task(deps, acct, s1.id, "grandchild", parent_task_id=child.id)
    sessions.create_task(deps, acct, s1.id, "second root")
    tree = sessions.task_tree(deps, acct, s1.id)
    assert [t["name"] for t in tree] == ["root", "second root"]
    assert tree[0]["children"][0]["name"] == "child"
    assert tree[0]["children"][0]["children"][0]["name"] == "grandchild"
    assert root.status == "pending"
    with pytest.raises(NotFound):  # parent in another session: not in this one
        sessions.create_task(deps, acct, s2.id, "x", parent_task_id=root.id)
    assert sessions.update_task(deps, acct, child.id, status="failed").status == "failed"
    with pytest.raises(InvalidInput):
        sessions.update_task(deps, acct, child.id, status="exploded")


def test_an_aliased_session_is_made_once_and_a_claimed_alias_makes_nothing(deps: Deps) -> None:
    """Two span workers meeting one new session name at once: the one whose unit claims the
    alias makes the session; the other gets that session's id and writes nothing (before, it
    left a second, empty session of the same name)."""
    key, _ = keys.create_key(deps, "t")
    acct = key.account_id
    meta = {"source": "openllmetry", "external_id": "agent-7"}
    first = sessions.create_aliased_session(deps, acct, "agent-7", "agent-7", meta)
    # the loser's unit runs after the winner's commit (SQLite's one writer; on PostgreSQL the
    # alias's INSERT waits for the winner's commit, then does nothing)
    second = sessions.create_aliased_session(deps, acct, "agent-7", "agent-7", meta)
    assert second == first
    listed = sessions.list_sessions(deps, acct, limit=100).items
    assert [s.id for s in listed if s.name == "agent-7"] == [first]
    assert sessions.get_session(deps, acct, first).metadata == meta
