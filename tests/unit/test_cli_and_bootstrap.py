"""The `kontex` command and the composition root."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import boto3
import pytest

from kontex import cli
from kontex.bootstrap import Container, load_or_create_secret
from kontex.domain.errors import KontexError
from kontex.services import keys
from kontex.settings import Settings


def _create(capsys: Any, *args: str) -> dict[str, str]:
    assert cli.main(["keys", "create", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_keys_create_json_on_sqlite_stores_no_key_in_clear(tmp_path: Any, capsys: Any) -> None:
    data = tmp_path / "data"
    first = _create(capsys, "--label", "laptop", "--data-dir", str(data))
    assert set(first) == {"id", "key", "label", "account_id", "secret", "database"}
    # which server takes it (issue 24): the one with this data dir's secret and database
    assert first["secret"] == str(data.resolve())
    assert first["database"] == str((data / "kontex.db").resolve())
    assert first["key"].startswith("kontex_") and len(first["key"]) >= 39
    assert first["label"] == "laptop"
    second = _create(
        capsys, "--label", "ci", "--account", first["account_id"], "--data-dir", str(data)
    )
    assert second["account_id"] == first["account_id"] and second["key"] != first["key"]

    # no key in clear anywhere in the table
    with sqlite3.connect(data / "kontex.db") as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
    flat = json.dumps(rows)
    assert len(rows) == 2
    assert first["key"] not in flat and second["key"] not in flat
    assert first["key"][len("kontex_") :] not in flat

    # and the key authenticates against the same data dir (same secret file)
    container = Container(Settings.from_env({}, kontex_data_dir=data))
    assert keys.authenticate(container.deps, first["key"]).id == first["id"]


@pytest.mark.postgres
def test_keys_create_against_postgres_url(
    pg_url: str, tmp_path: Any, capsys: Any, monkeypatch: Any
) -> None:
    import psycopg

    monkeypatch.setenv("KONTEX_API_KEY_SECRET", "pg-secret")
    made = _create(capsys, "--label", "pg", "--database-url", pg_url, "--data-dir", str(tmp_path))
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, key_hash, prefix FROM api_keys").fetchall()
    assert [r[0] for r in rows] == [made["id"]]
    assert made["key"] not in json.dumps(rows)
    assert rows[0][2] == made["key"][:12]
    assert made["secret"] == "KONTEX_API_KEY_SECRET" and made["database"] == pg_url
    container = Container(
        Settings.from_env({"KONTEX_API_KEY_SECRET": "pg-secret"}, kontex_database_url=pg_url)
    )
    assert keys.authenticate(container.deps, made["key"]).account_id == made["account_id"]


def test_keys_create_says_which_servers_take_the_key(
    tmp_path: Any, capsys: Any, monkeypatch: Any
) -> None:
    """Issue 24: a key is hashed with the data dir's secret (or KONTEX_API_KEY_SECRET) and
    stored in one database; `keys create` says which, with no password shown."""
    data = tmp_path / "data"
    assert cli.main(["keys", "create", "--label", "laptop", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert (
        f"It works on a server with the secret of the data dir {data.resolve()} and the"
        f" database {(data / 'kontex.db').resolve()}"
    ) in out
    monkeypatch.setenv("KONTEX_API_KEY_SECRET", "s3cret")
    monkeypatch.setattr(
        cli,
        "_container",
        lambda args: Container(
            Settings.from_env(
                {"KONTEX_API_KEY_SECRET": "s3cret"},
                kontex_data_dir=data,
                kontex_database_url="postgresql://kx:pw@db.example:5432/kontex",
            ),
            store=Container(Settings.from_env({}, kontex_data_dir=data)).store,
        ),
    )
    assert cli.main(["keys", "create", "--label", "ci", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["secret"] == "KONTEX_API_KEY_SECRET"
    assert made["database"] == "postgresql://kx:***@db.example:5432/kontex"


def test_keys_create_with_unknown_account_fails_cleanly(tmp_path: Any, capsys: Any) -> None:
    code = cli.main(
        ["keys", "create", "--label", "x", "--account", "acct_nope", "--data-dir", str(tmp_path)]
    )
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_keys_list_and_revoke(tmp_path: Any, capsys: Any) -> None:
    made = _create(capsys, "--label", "a", "--data-dir", str(tmp_path))
    assert (
        cli.main(
            [
                "keys",
                "revoke",
                made["id"],
                "--account",
                made["account_id"],
                "--data-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        cli.main(
            ["keys", "list", "--account", made["account_id"], "--json", "--data-dir", str(tmp_path)]
        )
        == 0
    )
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["id"] == made["id"] and listed[0]["revoked_at"]
    assert "key" not in listed[0]


def test_migrate_command_is_idempotent(tmp_path: Any, capsys: Any) -> None:
    assert cli.main(["migrate", "--data-dir", str(tmp_path)]) == 0
    assert "applied: 0001_foundation" in capsys.readouterr().out
    assert cli.main(["migrate", "--data-dir", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_secret_file_is_private_and_stable(tmp_path: Any) -> None:
    first = load_or_create_secret(tmp_path)
    assert load_or_create_secret(tmp_path) == first and len(first) == 64
    assert (tmp_path / "api_key_secret").stat().st_mode & 0o077 == 0


def test_deployed_function_without_a_secret_refuses_key_work_only(tmp_path: Any) -> None:
    config = Settings.from_env(
        {"AWS_LAMBDA_FUNCTION_NAME": "kontex-spans"}, kontex_data_dir=tmp_path
    )
    container = Container(config)
    deps = container.deps  # a worker builds its deps without the secret...
    with pytest.raises(KontexError):  # ...and only key operations need it
        keys.authenticate(deps, "kontex_" + "x" * 43)
    assert not (tmp_path / "api_key_secret").exists()  # no local secret made on AWS


def test_unknown_database_url_scheme_is_refused(tmp_path: Any) -> None:
    config = Settings.from_env({"KONTEX_DATABASE_URL": "mysql://x"}, kontex_data_dir=tmp_path)
    with pytest.raises(KontexError):
        Container(config).store  # noqa: B018


def test_secrets_come_from_secrets_manager_on_aws(mocked_aws: None) -> None:
    sm = boto3.client("secretsmanager")
    key_arn = sm.create_secret(Name="k", SecretString="hmac-secret")["ARN"]
    db_arn = sm.create_secret(
        Name="db",
        SecretString=json.dumps(
            {
                "username": "kontex",
                "password": "p@ss/word",
                "host": "db",
                "port": 5432,
                "dbname": "kontex",
            }
        ),
    )["ARN"]
    config = Settings.from_env(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "kontex-api",
            "KONTEX_API_KEY_SECRET_ARN": key_arn,
            "KONTEX_DATABASE_SECRET_ARN": db_arn,
            "KONTEX_DATABASE_HOST": "proxy.example",
        }
    )
    container = Container(config)
    assert container.api_key_secret == b"hmac-secret"
    store = container.store
    assert store.url == (  # type: ignore[attr-defined]
        "postgresql://kontex:p%40ss%2Fword@proxy.example:5432/kontex?sslmode=require"
    )
    # through RDS Proxy: no prepared statements (they would pin each client's session)
    assert store.prepare is False  # type: ignore[attr-defined]
    direct = Container(Settings.from_env({"KONTEX_DATABASE_URL": "postgresql://db/kontex"}))
    assert direct.store.prepare is True  # type: ignore[attr-defined]
