"""Behind a transaction pooler nothing stays on the server session (docs/design.md, "Behind
RDS Proxy").

RDS Proxy pins a client to one server connection, for the rest of the client's connection,
when it sees session state: a ``SET`` (``SET LOCAL`` and ``set_config`` included), a prepared
statement, a session advisory lock, ``LISTEN``, a temporary table, a cursor, ``nextval``.
PgBouncer in transaction mode (its stand-in here, ``tests/pgbouncer.py``) pins nothing but
lets such state leak to the next client of the connection, which makes it visible: every
request of a realistic client runs through an alias with ONE server connection, and then a
second client, necessarily on that same connection, looks for what the first one left. Every
statement sent is also checked against the list of statements RDS Proxy pins on.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from kontex import bootstrap
from kontex.adapters.postgres_store import PostgresStore
from kontex.services import keys
from tests import pgbouncer
from tests.api.conftest import Client, conversation, new_container
from tests.conftest import PG_URL, schema_url

pytestmark = pytest.mark.postgres

# what RDS Proxy for PostgreSQL pins a client on ("Avoiding pinning an RDS Proxy")
PINNING = re.compile(
    r"^\s*(SET|RESET|PREPARE|EXECUTE|DEALLOCATE|DISCARD|LISTEN|UNLISTEN|LOAD|DECLARE"
    r"|CREATE\s+(TEMP|TEMPORARY)\b)"
    r"|\b(set_config|pg_advisory_lock|pg_try_advisory_lock|pg_advisory_unlock|nextval|setval)"
    r"\s*\(",
    re.IGNORECASE | re.MULTILINE,
)
# a DO block's body is PL/pgSQL: its EXECUTE runs a statement inside the transaction (and is
# checked as that statement), not the SQL EXECUTE of a prepared statement
DOLLAR_BODY = re.compile(r"\$(\w*)\$(.*?)\$\1\$", re.DOTALL)
DYNAMIC = re.compile(r"^\s*EXECUTE\s+'([^']*)'", re.IGNORECASE | re.MULTILINE)


def pins(statement: str) -> bool:
    """Whether ``statement`` (one, or a script of several) would pin a pooled connection."""
    inner = [m.group(2) for m in DOLLAR_BODY.finditer(statement)]
    outer = DOLLAR_BODY.sub("", statement)
    dynamic = [m.group(1) for body in inner for m in DYNAMIC.finditer(body)]
    return bool(PINNING.search(outer)) or any(PINNING.search(d) for d in dynamic)


def test_the_pinning_probe_reads_a_do_blocks_body_as_pl_pgsql() -> None:
    lz4 = "DO $$\nBEGIN\n    EXECUTE 'ALTER TABLE spans ALTER COLUMN body SET COMPRESSION lz4';\n"
    lz4 += "END $$;"
    assert not pins(lz4)
    assert pins("DO $$\nBEGIN\n    EXECUTE 'SET search_path TO x';\nEND $$;")
    assert pins("SELECT 1;\nSET statement_timeout = 0;")
    assert pins("EXECUTE stmt_1")


@pytest.fixture
def one_connection() -> Iterator[str]:
    """A fresh schema behind PgBouncer with one server connection for all its clients."""
    if not Path(pgbouncer.BINARY).exists():  # as the browser tests: CI installs it, never skips
        reason = f"no pgbouncer at {pgbouncer.BINARY} (apt-get install pgbouncer)"
        if os.environ.get("KONTEX_REQUIRE_PGBOUNCER"):
            pytest.fail(f"pgbouncer required (KONTEX_REQUIRE_PGBOUNCER) but {reason}")
        pytest.skip(reason)
    bouncer = pgbouncer.instance(PG_URL)
    schema = f"kontex_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL unreachable at {PG_URL}: {error}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield bouncer.url_for(schema, pool_size=1)
        finally:
            bouncer.forget(schema)
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement text the store sends (psycopg cursors: execute and executemany)."""
    texts: list[str] = []
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def recorded(query: Any) -> str:
        return query.decode() if isinstance(query, bytes) else str(query)

    def spy_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        texts.append(recorded(query))
        return execute(self, query, *args, **kwargs)

    def spy_executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        texts.append(recorded(query))
        return executemany(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy_execute)
    monkeypatch.setattr(psycopg.Cursor, "executemany", spy_executemany)
    return texts


def a_client_session(store: PostgresStore, data_dir: Path, clock: Any) -> None:
    """What a client does: every kind of unit (reads, writes, non-durable counts, outbox)."""
    store.migrate()  # its advisory lock is the transaction-scoped one
    container = new_container(store, data_dir, clock)
    bootstrap.configure(container)
    try:
        _, key = keys.create_key(container.deps, "pooled")
        client = Client(key)
        session = client.post("/v1/sessions", {"name": "pooled"}).body
        task = client.post(f"/v1/sessions/{session['id']}/tasks", {"name": "t"}).body
        for turns in (1, 2, 3):  # statements run more than twice: prepared when allowed
            made = client.post(
                f"/v1/tasks/{task['id']}/snapshots",
                {"label": f"s{turns}", "bundle": {"messages": conversation(turns)}},
            )
            assert made.status == 201, made.body
            assert client.get(f"/v1/snapshots/{made.body['id']}").status == 200
        assert client.get(f"/v1/sessions/{session['id']}/snapshots").status == 200
        assert client.patch(f"/v1/sessions/{session['id']}", {"name": "renamed"}).status == 200
        assert client.get("/v1/sessions").status == 200
    finally:
        bootstrap.configure(None)


def left_on_the_session(url: str) -> dict[str, Any]:
    """What a second client of the one server connection finds there."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as probe:
        row = probe.execute(
            "SELECT (SELECT count(*) FROM pg_prepared_statements) AS prepared,"
            " current_setting('synchronous_commit') AS synchronous_commit,"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            "  AND pid = pg_backend_pid()) AS advisory_locks,"
            " (SELECT count(*) FROM pg_listening_channels()) AS listening,"
            " pg_my_temp_schema()::oid::bigint AS temp_schema,"
            " (SELECT count(*) FROM pg_cursors) AS cursors"
        ).fetchone()
    assert row is not None
    names = ("prepared", "synchronous_commit", "advisory_locks", "listening", "temp_schema")
    return dict(zip((*names, "cursors"), row, strict=True))


def direct(url: str) -> str:
    """The server's URL for the schema that ``url`` (PgBouncer's alias of it) reaches."""
    return schema_url(urlsplit(url).path.lstrip("/"))


def bouncer_log() -> str:
    """PgBouncer's log, for a failure's message: whether it closed or replaced the one server
    connection (a probe on a fresh server connection finds nothing, whatever was left)."""
    return pgbouncer.instance(PG_URL).log_text()


CLEAN = {
    "prepared": 0,
    "synchronous_commit": "on",
    "advisory_locks": 0,
    "listening": 0,
    "temp_schema": 0,
    "cursors": 0,
}


def test_a_pooled_store_leaves_nothing_on_the_session(
    one_connection: str, sent: list[str], tmp_path: Path, clock: Any
) -> None:
    store = PostgresStore(one_connection, max_size=4, pooled=True)
    try:
        a_client_session(store, tmp_path, clock)
        left = left_on_the_session(one_connection)  # while the store is still connected
    finally:
        store.close()
    assert [s for s in sent if pins(s)] == []
    assert left == CLEAN, bouncer_log()


def test_an_unpooled_store_leaves_what_the_probe_sees(
    one_connection: str, sent: list[str], tmp_path: Path, clock: Any
) -> None:
    """Both checks above can fail. The same client on the direct-connection settings, straight
    to the server, prepares statements on its connection and sets a local parameter in its
    non-durable units (which RDS Proxy pins on); and what a client leaves on the one server
    connection behind PgBouncer, the probe finds there.

    Not that client behind PgBouncer itself: a pipelined client that prepares statements is
    what PgBouncer 1.18 cannot pool (now and then it kept the server linked to the idle client,
    and the probe waited for ``query_wait_timeout``), which is why the store is ``pooled`` there.
    """
    store = PostgresStore(direct(one_connection), max_size=4)
    try:
        a_client_session(store, tmp_path, clock)
        with store.pool.connection() as conn:  # the session's one connection (never two at once)
            row = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()
    finally:
        store.close()
    assert any(s.startswith("SELECT set_config('synchronous_commit'") for s in sent)
    assert row is not None and row["n"] > 0

    with psycopg.connect(one_connection, autocommit=True, prepare_threshold=None) as leaver:
        leaver.execute("PREPARE left_behind AS SELECT 1")
        leaver.execute("SET synchronous_commit = off")
    left = left_on_the_session(one_connection)
    assert left == {**CLEAN, "prepared": 1, "synchronous_commit": "off"}, bouncer_log()


def test_settings_on_aws_make_a_pooled_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the RDS Proxy endpoint and the secret (how every function is configured) the
    store is pooled unless KONTEX_DATABASE_POOLED says otherwise; with a URL it is not; a
    pooled store never prepares."""
    from kontex.adapters import aws_secrets
    from kontex.settings import Settings

    secret = '{"username": "u", "password": "p", "dbname": "d", "port": 5432}'
    monkeypatch.setattr(aws_secrets, "read_secret", lambda arn, client=None: secret)
    aws = {"KONTEX_DATABASE_SECRET_ARN": "arn:secret", "KONTEX_DATABASE_HOST": "proxy"}
    url = {"KONTEX_DATABASE_URL": "postgresql://u@h/d"}
    for env, pooled, prepare in (
        (aws, True, False),
        ({**aws, "KONTEX_DATABASE_POOLED": "false"}, False, False),
        ({**aws, "KONTEX_DATABASE_POOLED": "0", "KONTEX_DATABASE_PREPARE": "1"}, False, True),
        (url, False, True),
        ({**url, "KONTEX_DATABASE_POOLED": "1"}, True, False),
    ):
        store = bootstrap.Container(Settings.from_env(env)).store
        assert isinstance(store, PostgresStore)
        assert (store.pooled, store.prepare) == (pooled, prepare), env
