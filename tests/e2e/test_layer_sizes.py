"""The Lambda layers as `make build` makes them (layers/build.py: pip's wheels for arm64 and
Python 3.12, from the package registry), checked against Lambda's 250 MB unzipped limit for
every function with its layers. The wheels grow from release to release: this fails CI when
they no longer fit, before a deploy does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_every_function_with_its_layers_fits_lambdas_limit(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "layers" / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    rows = [line for line in done.stdout.splitlines() if line.startswith("function ")]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the api and the workers are also checked with the search layer and each embedder
    assert sum("+search+" in row for row in rows) == 4, rows
    assert rows and all(row.split()[-1] == "ok" or "ok  (" in row for row in rows), rows
    # the AWS SDK is the runtime's, not the layer's
    assert not (tmp_path / "layers" / "core" / "python" / "botocore").exists()
