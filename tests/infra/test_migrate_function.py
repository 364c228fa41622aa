"""The deploy-time migration function, on SQLite: what the CDK Trigger and an operator get back."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kontex import bootstrap
from kontex.services import keys
from kontex.settings import Settings

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "migrate" / "handler.py"


@pytest.fixture
def migrate(tmp_path: Path) -> Iterator[ModuleType]:
    config = Settings.from_env({}, kontex_data_dir=tmp_path, kontex_api_key_secret="test-secret")
    bootstrap.configure(bootstrap.Container(config))
    spec = importlib.util.spec_from_file_location("migrate_handler", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        bootstrap.configure(None)


def test_deploy_applies_migrations_once(migrate: ModuleType) -> None:
    # Given a fresh database, when the Trigger invokes the function (no payload) twice
    first = migrate.lambda_handler({}, None)
    second = migrate.lambda_handler({}, None)

    # Then the first run applies every migration and the second finds nothing to do
    assert first["applied"] and second == {"applied": []}
    assert "key" not in first  # the deploy-time answer (logged by the Trigger) holds no key


def test_operator_creates_the_first_api_key(migrate: ModuleType) -> None:
    answer = migrate.lambda_handler({"create_key": {"label": "first"}}, None)

    assert answer["key"].startswith(keys.KEY_PREFIX)
    found = keys.authenticate(bootstrap.container().deps, answer["key"])
    assert (found.id, found.account_id) == (answer["id"], answer["account_id"])
