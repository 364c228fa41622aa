"""Generated files must not go stale: ``_sync_client.py`` (from ``_async_client.py``),
``_restore.py`` (from the server's ``services/restore.py``), and the client's models and the
dashboard's types (from the server's OpenAPI document). ``make generate`` writes them all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "clients" / "python" / "scripts"


def check(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / script), "--check"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


def test_sync_client_is_generated_from_the_async_one() -> None:
    check("gen_sync.py")


def test_client_restore_is_generated_from_the_servers() -> None:
    check("gen_restore.py")


def test_client_models_and_web_types_are_generated_from_the_openapi_document() -> None:
    """``_api_models.py`` and ``web/src/api.gen.ts`` match the server's ``/v1/openapi.json``."""
    check("gen_models.py")


def test_the_generated_models_read_values_a_newer_server_may_add() -> None:
    from kontex_client import Session, Task

    # Given answers with an enum value this client's schema does not list yet
    session = Session.model_validate(
        {
            "id": "sess_1",
            "name": "run",
            "metadata": {},
            "status": "archived",
            "created_at": "2026-12-04T10:00:00Z",
            "updated_at": "2026-12-04T10:00:00Z",
        }
    )
    task = Task.model_validate(
        {
            "id": "task_1",
            "session_id": "sess_1",
            "name": "plan",
            "status": "blocked",
            "created_at": "2026-12-04T10:00:00Z",
            "updated_at": "2026-12-04T10:00:00Z",
        }
    )
    # Then they still read, with the value as given
    assert (session.status, task.status) == ("archived", "blocked")
