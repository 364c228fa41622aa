"""The proxy's admission from what its process already knows (docs/design.md, "The proxy's
admission").

Every proxied call needs the caller's key, its rate-limit count and, for a session name, a
session id or a task header, what they stand for. The REST API reads them from the store on
every request; the proxy, whose added latency is what it is judged by, keeps them per process,
so that the common call is admitted without a round trip to the store (nor a thread hop):

- a key the store found valid is trusted for ``ttl`` seconds
  (``KONTEX_PROXY_ADMISSION_CACHE_SECONDS``): a revoked key is refused by the proxy within that
  time at most (the REST API refuses it at once);
- a session name's session id, a session id found to be the caller's, a task's session: for
  ``ttl`` seconds too, and at most ``MAX_ENTRIES`` of each (the oldest go first), so a purged
  session is not served from memory after that;
- the rate-limit count: the window's count as the store last answered it plus the calls this
  process let through and has not counted yet. Those are counted in the store after the
  answer (``flush``, by the proxy's hand-off thread), several in one statement, so the store's
  count stays exact and a key over its limit still gets the 429. A call whose key, count or
  window is not known here (the first of a key, of a window, after ``ttl``) is admitted from
  the store as before, and counted then.

``ttl`` 0 turns all of it off: every call is admitted from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kontex.domain.models import ApiKey
from kontex.services import limits
from kontex.services.deps import Deps
from kontex.services.keys import Credential, hash_key, key_text, unknown_key

log = logging.getLogger("kontex.proxy")

MAX_ENTRIES = 10_000  # of each cache
K = TypeVar("K")
V = TypeVar("V")


class Miss(Exception):  # noqa: N818 (not an error: the store must be asked)
    """What the admission needs is not known in this process: ask the store (on a thread).
    ``key``: the caller's key when it was admitted (and counted) already."""

    def __init__(self, key: ApiKey | None = None) -> None:
        super().__init__("not known in this process")
        self.key = key


@dataclass
class _Count:
    window: int
    known: int  # the window's count, as the store last answered it
    pending: int = 0  # let through by this process, not yet counted in the store


class Admission:
    """One process's caches (thread-safe). ``clock``: seconds, for the entries' age."""

    def __init__(
        self,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.ttl, self.clock, self.max_entries = ttl, clock, max_entries
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[float, ApiKey]] = OrderedDict()
        self._sessions: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._tasks: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._counts: dict[tuple[str, str], _Count] = {}
        self._uncounted: dict[tuple[str, str, int], int] = {}  # (key id, kind, window) -> uses

    # -- the caller's key and its count ------------------------------------------------------

    def key(
        self, deps: Deps, presented: Credential | str | None, kind: str, limit: int, *, store: bool
    ) -> ApiKey:
        """The key presented, with one use of ``kind`` counted (``limits.admit``'s answers and
        refusals); ``Miss`` when it would need the store and ``store`` is False."""
        text = key_text(presented)
        if not store and callable(deps.api_key_secret):  # not fetched yet (Secrets Manager)
            raise Miss
        digest = hash_key(deps.key_secret(), text)
        now, window = limits.window_of(deps)
        if self.ttl > 0:
            with self._lock:
                known = self._fresh(self._keys, digest)
                count = self._counts.get((known.id, kind)) if known is not None else None
                if known is not None and count is not None and count.window == window:
                    count.pending += 1
                    uncounted = (known.id, kind, window)
                    self._uncounted[uncounted] = self._uncounted.get(uncounted, 0) + 1
                    used = count.known + count.pending
                else:
                    known = None
            if known is not None:
                limits.check(used, limit, kind, window, now)
                return known
        if not store:
            raise Miss
        # the key found and this call counted, in one round trip (as limits.admit)
        with deps.store.unit(durable=False, autocommit=True) as uow:
            key, used = uow.keys.find_and_hit(digest, kind, window, limits.shard())
        if key is None or key.revoked_at is not None:
            with self._lock:
                self._keys.pop(digest, None)
            raise unknown_key(deps)
        if self.ttl > 0:
            with self._lock:
                self._put(self._keys, digest, key)
                count = self._counts.get((key.id, kind))
                if count is None or count.window != window:
                    if len(self._counts) >= self.max_entries:
                        self._counts.clear()
                    self._counts[(key.id, kind)] = _Count(window, used)
                else:
                    count.known = max(count.known, used)
        limits.check(used, limit, kind, window, now)
        return key

    @property
    def uncounted(self) -> bool:
        return bool(self._uncounted)

    def flush(self, deps: Deps) -> None:
        """Count in the store the uses let through and not counted yet; never raises (what
        the store refuses stays to be counted at the next flush)."""
        with self._lock:
            todo, self._uncounted = self._uncounted, {}
        for (key_id, kind, window), uses in todo.items():
            try:
                used = limits.count(deps, key_id, kind, window, uses)
            except Exception:
                log.exception("the proxy's rate-limit counts were not written; kept for later")
                with self._lock:
                    again = (key_id, kind, window)
                    self._uncounted[again] = self._uncounted.get(again, 0) + uses
                continue
            with self._lock:
                count = self._counts.get((key_id, kind))
                if count is not None and count.window == window:
                    count.pending -= uses
                    count.known = max(count.known, used)

    # -- sessions and tasks ------------------------------------------------------------------

    def session(self, account_id: str, given: str) -> str | None:
        """The session id a name (or a session id) of the account stood for, if known."""
        with self._lock:
            return self._fresh(self._sessions, (account_id, given))

    def remember_session(self, account_id: str, given: str, session_id: str) -> None:
        if self.ttl > 0:
            with self._lock:
                self._put(self._sessions, (account_id, given), session_id)

    def task(self, account_id: str, task_id: str) -> str | None:
        """The session of the account's task, if known."""
        with self._lock:
            return self._fresh(self._tasks, (account_id, task_id))

    def remember_task(self, account_id: str, task_id: str, session_id: str) -> None:
        if self.ttl > 0:
            with self._lock:
                self._put(self._tasks, (account_id, task_id), session_id)

    # -- the caches (under the lock) ---------------------------------------------------------

    def _fresh(self, cache: OrderedDict[K, tuple[float, V]], key: K) -> V | None:
        entry = cache.get(key)
        if entry is None:
            return None
        if self.clock() - entry[0] >= self.ttl:
            del cache[key]
            return None
        return entry[1]

    def _put(self, cache: OrderedDict[K, tuple[float, V]], key: K, value: V) -> None:
        cache[key] = (self.clock(), value)
        cache.move_to_end(key)
        while len(cache) > self.max_entries:
            cache.popitem(last=False)
