"""Accounts and API keys. A key is shown once; only its HMAC-SHA256 and a prefix are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from kontex.domain.errors import InvalidInput, NotFound, Unauthorized
from kontex.domain.models import Account, ApiKey
from kontex.ids import new_id
from kontex.services.deps import Deps

KEY_PREFIX = "kontex_"
_DISPLAY_CHARS = 12
HEADERS = "`Authorization: Bearer kontex_...` or `X-Kontex-Api-Key: kontex_...`"
# Where the secret that hashes keys comes from (Deps.key_secret_source; else a data dir's path)
FROM_ENV = "KONTEX_API_KEY_SECRET"
FROM_SECRETS_MANAGER = "KONTEX_API_KEY_SECRET_ARN"


@dataclass(frozen=True)
class Credential:
    """What a request carried as its API key: the key as sent, or what is wrong with the header
    that should carry one (``problem``), or neither (nothing sent); ``expected`` is the shape
    the refusal shows."""

    key: str | None = None
    problem: str | None = None
    expected: str = HEADERS


def key_text(presented: Credential | str | None) -> str:
    """The key's text, or ``Unauthorized`` saying what is wrong: nothing was sent, or not in
    the shape of a key (the header, or the key itself)."""
    credential = presented if isinstance(presented, Credential) else Credential(presented)
    expected = credential.expected
    if credential.problem is not None:
        raise Unauthorized(
            f"{credential.problem}: expected {expected}", details={"reason": "malformed_key"}
        )
    if not credential.key:
        raise Unauthorized(
            f"no Kontex API key was sent: send {expected}", details={"reason": "missing_key"}
        )
    if not credential.key.startswith(KEY_PREFIX):
        raise Unauthorized(
            f"the API key is malformed (a Kontex key starts with {KEY_PREFIX}): expected"
            f" {expected}",
            details={"reason": "malformed_key"},
        )
    return credential.key


def unknown_key(deps: Deps) -> Unauthorized:
    """The refusal of a key in the right shape that this server does not know (never made here,
    made with another secret or database, or revoked: alike, so nothing about other keys or
    accounts is told), with where this server's keys come from."""
    source = deps.key_secret_source
    if source == FROM_ENV:
        hint = (
            "keys are hashed with the KONTEX_API_KEY_SECRET they were made with: make one with"
            " `kontex keys create --label L` under this server's KONTEX_API_KEY_SECRET and"
            " database"
        )
    elif source == FROM_SECRETS_MANAGER:
        hint = (
            "keys are hashed with this deployment's secret: make one with the migrate"
            " function's create_key (docs/deploy.md)"
        )
    elif source:
        hint = (
            "keys are hashed with the secret of the data dir they were made in, and this"
            f" server's data dir is {source}: make one with `kontex keys create --label L"
            f" --data-dir {source}` (and the server's --database-url, if it has one)"
        )
    else:
        hint = "make one for this server with `kontex keys create`"
    return Unauthorized(
        f"this server does not know this API key, or it was revoked; {hint}",
        details={"reason": "unknown_key"},
    )


def hash_key(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode("utf-8"), hashlib.sha256).hexdigest()


def _check_label(label: str) -> str:
    label = label.strip()
    if not 1 <= len(label) <= 200:
        raise InvalidInput("label must be 1 to 200 characters")
    return label


def create_key(deps: Deps, label: str, account_id: str | None = None) -> tuple[ApiKey, str]:
    """A new key for ``account_id``, or for a new account when it is None.

    Returns the stored key record and the plaintext key, which is never stored.
    """
    label = _check_label(label)
    now = deps.clock()
    if account_id is None:
        account = Account(id=new_id("acct"), created_at=now)
        with deps.store.unit() as uow:
            uow.keys.add_account(account)
        account_id = account.id
    else:
        with deps.store.unit(write=False) as uow:
            if uow.keys.account(account_id) is None:
                raise NotFound(f"account {account_id} not found")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)  # 43 characters of randomness
    key = ApiKey(
        id=new_id("key"),
        account_id=account_id,
        label=label,
        prefix=plaintext[:_DISPLAY_CHARS],
        created_at=now,
    )
    with deps.store.unit() as uow:
        uow.keys.add(key, hash_key(deps.key_secret(), plaintext))
    return key, plaintext


def authenticate(deps: Deps, presented: Credential | str | None) -> ApiKey:
    """The key presented, if valid; ``Unauthorized`` naming the cause (``key_text``,
    ``unknown_key``)."""
    text = key_text(presented)
    with deps.store.unit(write=False) as uow:
        key = uow.keys.find(hash_key(deps.key_secret(), text))
    if key is None or key.revoked_at is not None:
        raise unknown_key(deps)
    return key


def list_keys(deps: Deps, account_id: str) -> list[ApiKey]:
    with deps.store.unit(write=False) as uow:
        return uow.keys.of_account(account_id)


def revoke_key(deps: Deps, account_id: str, key_id: str) -> None:
    with deps.store.unit() as uow:
        revoked = uow.keys.revoke(account_id, key_id, deps.clock())
    if not revoked:
        raise NotFound(f"key {key_id} not found")
