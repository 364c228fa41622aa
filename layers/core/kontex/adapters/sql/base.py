"""What every repository of the SQL adapters shares: the transaction it runs in and a few
conversions.

The statements are written once, in the subset SQLite 3.35+ and PostgreSQL 15+ both accept
(``ON CONFLICT DO NOTHING``, ``RETURNING``, ``WITH RECURSIVE``), with ``?`` placeholders that
the PostgreSQL adapter rewrites to ``%s``. Each repository keeps its statements as named
constants beside the code that runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

CHUNK = 500  # keeps IN (...) lists well under both drivers' parameter limits


class Tx(Protocol):
    """One open transaction of a driver."""

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...
    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def batch(self, statements: Sequence[tuple[str, list[Sequence[Any]]]]) -> None:
        """Run writes whose results nobody reads, in order (pipelined where the driver can)."""
        ...

    def q_many(self, statements: Sequence[tuple[str, list[Any]]]) -> list[list[dict[str, Any]]]:
        """Several queries in order, their answers together (one round trip on PostgreSQL)."""
        ...

    def ask(self, sql: str, rows: list[Sequence[Any]]) -> Callable[[], list[dict[str, Any]]]:
        """A write of ``rows`` whose answer (``RETURNING``) is read later: sent now (pipelined
        where the driver can, so it travels with the next round trip), its rows read by the
        function returned."""
        ...


class Work:
    """A unit of work's transaction as its repositories see it.

    ``later`` keeps a write whose answer nobody reads; ``run`` and ``run_many`` first send what
    was kept, so statements reach the database in the order the use case made them, and the
    kept writes of a unit that reads nothing after them travel together with its commit.
    """

    def __init__(self, tx: Tx, dialect: str, lock_clause: str, json: Callable[[Any], Any]) -> None:
        self.tx = tx
        self.dialect = dialect
        self.lock_clause = lock_clause  # how a writer locks the task row (PostgreSQL: FOR UPDATE)
        self.json = json  # how a JSON document is passed as a parameter
        self._later: list[tuple[str, list[Sequence[Any]]]] = []

    def later(self, sql: str, rows: list[Sequence[Any]]) -> None:
        """Keep a write; one right after a kept write of the same statement joins its rows
        (one ``executemany`` for a bulk write's rows of a table, in the same order)."""
        if not rows:
            return
        if self._later and self._later[-1][0] == sql:
            self._later[-1][1].extend(rows)
        else:
            self._later.append((sql, list(rows)))

    def flush(self) -> None:
        kept, self._later = self._later, []
        if kept:
            self.tx.batch(kept)

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.flush()
        return self.tx.q(sql, [plain(p) for p in params])

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.run(sql, params)
        return rows[0] if rows else None

    def ask(self, sql: str, rows: list[Sequence[Any]]) -> Callable[[], list[dict[str, Any]]]:
        """A write whose answer is read after the unit's next round trip (``Tx.ask``): the
        answer of an ``INSERT ... RETURNING`` that a later read carries, not a round trip of
        its own. Kept writes go first, in order."""
        self.flush()
        return self.tx.ask(sql, rows)

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.flush()
        self.tx.many(sql, rows)

    def run_together(
        self, statements: Sequence[tuple[str, list[Any]]]
    ) -> list[list[dict[str, Any]]]:
        self.flush()
        return self.tx.q_many(statements)


class Repository:
    """What every repository is: statements run in one unit of work's transaction."""

    def __init__(self, work: Work) -> None:
        self._work = work


def as_time(value: Any) -> datetime:
    """Aggregates lose SQLite's declared column type: times may come back as text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def as_bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


def chunked(values: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def marks(values: Sequence[Any]) -> str:
    """``?, ?, ...``: one placeholder per value."""
    return ", ".join("?" for _ in values)


def by_account(keys: Iterable[tuple[str, str]]) -> Iterable[tuple[str, list[str]]]:
    """(account_id, x) pairs as (account_id, up to ``CHUNK`` distinct x) groups."""
    grouped: dict[str, list[str]] = {}
    for account_id, value in keys:
        grouped.setdefault(account_id, []).append(value)
    for account_id, values in grouped.items():
        distinct = list(dict.fromkeys(values))
        for start in range(0, len(distinct), CHUNK):
            yield account_id, distinct[start : start + CHUNK]


def after_cursor(
    sql: str,
    params: list[Any],
    after: tuple[str, str] | None,
    table: str = "",
    before: bool = False,
) -> tuple[str, list[Any]]:
    """Rows after the cursor ``(created_at, id)`` in the listing's order (``before``: a
    newest-first listing, so the rows older than the cursor)."""
    if after is None:
        return sql, params
    created_at = datetime.fromisoformat(after[0])
    op = "<" if before else ">"
    sql += f" AND ({table}created_at {op} ? OR ({table}created_at = ? AND {table}id {op} ?))"
    return sql, [*params, created_at, created_at, after[1]]


def update_sql(
    table: str, allowed: set[str], changes: dict[str, Any], columns: str, work: Work
) -> tuple[str, list[Any]]:
    """``UPDATE`` of one row of the account by id, answering its columns."""
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)} of {table}")
    values = [work.json(v) if k == "metadata" else plain(v) for k, v in changes.items()]
    assignments = ", ".join(f"{k} = ?" for k in changes)
    return (
        f"UPDATE {table} SET {assignments} WHERE account_id = ? AND id = ? RETURNING {columns}",
        values,
    )
