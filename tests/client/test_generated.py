"""Generated client files must not go stale: ``_sync_client.py`` (from ``_async_client.py``)
and ``_restore.py`` (from the server's ``services/restore.py``)."""

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
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_sync_client_is_generated_from_the_async_one() -> None:
    check("gen_sync.py")


def test_client_restore_is_generated_from_the_servers() -> None:
    check("gen_restore.py")
