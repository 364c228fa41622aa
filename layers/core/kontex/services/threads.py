"""Thread state: a small per-thread document agent runtimes save and restore."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kontex.domain.errors import InvalidInput, NotFound, PayloadTooLarge
from kontex.domain.models import THREAD_STATE_MAX_BYTES, validate_thread_id
from kontex.services.deps import Deps

if TYPE_CHECKING:  # a snapshot's content models (kontex.domain.snapshot_content): the live
    # feed and the sweeper import this module and never make a thread's state
    from kontex.domain.models import ThreadState


def _thread_id(thread_id: str) -> str:
    try:
        return validate_thread_id(thread_id)
    except ValueError as error:
        raise InvalidInput(str(error), details={"thread_id": thread_id}) from None


def save(deps: Deps, account_id: str, thread_id: str, user_data: str) -> ThreadState:
    thread_id = _thread_id(thread_id)
    if len(user_data.encode("utf-8")) > THREAD_STATE_MAX_BYTES:
        raise PayloadTooLarge("user_data is larger than 1 MiB")
    with deps.store.unit() as uow:
        return uow.threads.put(account_id, thread_id, user_data, deps.clock())


def restore(deps: Deps, account_id: str, thread_id: str) -> ThreadState | None:
    with deps.store.unit(write=False) as uow:
        return uow.threads.get(account_id, _thread_id(thread_id))


def get(deps: Deps, account_id: str, thread_id: str) -> ThreadState:
    state = restore(deps, account_id, thread_id)
    if state is None:
        raise NotFound(f"thread {thread_id} has no saved state")
    return state


def delete(deps: Deps, account_id: str, thread_id: str) -> None:
    with deps.store.unit() as uow:
        deleted = uow.threads.delete(account_id, _thread_id(thread_id))
    if not deleted:
        raise NotFound(f"thread {thread_id} has no saved state")
