"""What the generators (gen_sync.py, gen_restore.py, gen_models.py) share: ruff over a
generated text, and writing the files or, with ``--check``, failing when one is stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ruff(text: str, path: Path, *steps: list[str]) -> str:
    """``text`` through each ruff command of ``steps`` (as if it were the file ``path``)."""
    for step in steps:
        text = subprocess.run(
            [sys.executable, "-m", "ruff", *step, "--stdin-filename", str(path), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return text


def finish(files: dict[Path, str], *, check: bool, script: str) -> int:
    """Write ``files`` (path -> text), or with ``check`` report the stale ones: the exit code."""
    if check:
        stale = [str(p) for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale:
            print(f"stale: {', '.join(stale)}: run python {script}", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0
