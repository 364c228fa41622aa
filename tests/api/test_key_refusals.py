"""Each 401 says its cause (issue 24): no key sent, a header or key not in the shape of one
(with the shape expected), or a key this server does not know (with where its keys come from:
the data dir's secret or KONTEX_API_KEY_SECRET), on both databases. Unknown, revoked and
another secret's keys are refused alike: nothing about other keys or accounts is told."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kontex import bootstrap
from kontex.adapters.local_blobs import LocalBlobs
from kontex.services import keys
from kontex.settings import Settings
from tests.api.conftest import Client

HEADERS = "`Authorization: Bearer kontex_...` or `X-Kontex-Api-Key: kontex_...`"


def refusal(reply: Any) -> tuple[str, str]:
    assert reply.status == 401
    assert set(reply.body) == {"error", "message", "details"}
    assert reply.body["error"] == "unauthorized"
    return reply.body["details"]["reason"], reply.body["message"]


def test_no_key_says_which_headers_carry_one(anonymous: Client) -> None:
    assert refusal(anonymous.get("/v1/sessions")) == (
        "missing_key",
        f"no Kontex API key was sent: send {HEADERS}",
    )


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"authorization": "kontex_abc"}, "the Authorization header is not `Bearer <key>`"),
        ({"authorization": "Basic a2V5"}, "the Authorization header is not `Bearer <key>`"),
        ({"authorization": "Bearer"}, "the Authorization header is not `Bearer <key>`"),
        ({"authorization": "Bearer sk-ant-123"}, "the API key is malformed (a Kontex key starts"),
        ({"x-kontex-api-key": "abc"}, "the API key is malformed (a Kontex key starts"),
    ],
)
def test_a_malformed_header_or_key_shows_the_expected_shape(
    anonymous: Client, headers: dict[str, str], says: str
) -> None:
    reason, message = refusal(anonymous.get("/v1/sessions", headers=headers))
    assert reason == "malformed_key"
    assert message.startswith(says) and message.endswith(f"expected {HEADERS}")


def test_an_unknown_key_names_the_secret_keys_are_bound_to(container: Any, alice: Client) -> None:
    """The handler tests' server hashes keys with KONTEX_API_KEY_SECRET."""
    assert alice.get("/v1/sessions").status == 200
    reason, message = refusal(Client("kontex_" + "x" * 43).get("/v1/sessions"))
    assert reason == "unknown_key"
    assert message.startswith("this server does not know this API key, or it was revoked; keys")
    assert "KONTEX_API_KEY_SECRET" in message


def _server(store: Any, data_dir: Path, clock: Any) -> bootstrap.Container:
    """A server whose key secret is its data dir's (as `kontex dev`), over ``store``."""
    made = bootstrap.Container(
        Settings(kontex_data_dir=data_dir), store=store, blobs=LocalBlobs(data_dir / "blobs")
    )
    made.deps.clock = clock
    return made


def test_a_key_made_with_another_data_dir_is_refused_naming_the_servers(
    store: Any, tmp_path: Path, clock: Any
) -> None:
    """The issue's case: `kontex keys create --database-url ...` without the server's
    --data-dir makes a key in the right database, hashed with another data dir's secret."""
    elsewhere = _server(store, tmp_path / "elsewhere", clock)
    _, foreign = keys.create_key(elsewhere.deps, "made elsewhere")
    served = tmp_path / "served"
    server = _server(store, served, clock)
    bootstrap.configure(server)
    try:
        _, own = keys.create_key(server.deps, "made here")
        assert Client(own).get("/v1/sessions").status == 200
        reason, message = refusal(Client(foreign).get("/v1/sessions"))
        assert reason == "unknown_key"
        assert f"this server's data dir is {served.resolve()}" in message
        assert f"`kontex keys create --label L --data-dir {served.resolve()}`" in message
        # revoked, or never made: the same answer, word for word
        key, revoked = keys.create_key(server.deps, "revoked")
        keys.revoke_key(server.deps, key.account_id, key.id)
        never = Client("kontex_" + "y" * 43).get("/v1/sessions").body
        assert Client(revoked).get("/v1/sessions").body == never
        assert Client(foreign).get("/v1/sessions").body == never
    finally:
        bootstrap.configure(None)


def test_mcp_and_health_detail_refuse_alike(anonymous: Client) -> None:
    mcp = anonymous.post(
        "/mcp",
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"accept": "application/json, text/event-stream"},
    )
    assert refusal(mcp)[0] == "missing_key"
    bad = anonymous.get("/health?detail=true", headers={"authorization": "Token kontex_a"})
    assert refusal(bad)[0] == "malformed_key"
