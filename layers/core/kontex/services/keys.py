"""Accounts and API keys. A key is shown once; only its HMAC-SHA256 and a prefix are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from kontex.domain.errors import InvalidInput, NotFound, Unauthorized
from kontex.domain.models import Account, ApiKey
from kontex.ids import new_id
from kontex.services.deps import Deps

KEY_PREFIX = "kontex_"
_DISPLAY_CHARS = 12


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


def authenticate(deps: Deps, presented: str | None) -> ApiKey:
    if not presented or not presented.startswith(KEY_PREFIX):
        raise Unauthorized("a valid API key is required")
    with deps.store.unit(write=False) as uow:
        key = uow.keys.find(hash_key(deps.key_secret(), presented))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("a valid API key is required")
    return key


def list_keys(deps: Deps, account_id: str) -> list[ApiKey]:
    with deps.store.unit(write=False) as uow:
        return uow.keys.of_account(account_id)


def revoke_key(deps: Deps, account_id: str, key_id: str) -> None:
    with deps.store.unit() as uow:
        revoked = uow.keys.revoke(account_id, key_id, deps.clock())
    if not revoked:
        raise NotFound(f"key {key_id} not found")
