"""Where the Lambda functions' code lies (the source tree's, or a wheel's copy):
``functions/<name>/handler.py`` for each function, ``functions/workers/<queue>.py`` for each
queue's worker.

Read by ``kontex dev`` (it loads them) and by the composition root (the local topic delivers
an event only to a consumer that has a worker)."""

from __future__ import annotations

from pathlib import Path


def functions_dir() -> Path:
    """The copy a wheel carries (``kontex/local/functions``, setup.py), else ``functions/`` of
    the source tree this package was installed from (editable install)."""
    bundled = Path(__file__).resolve().parent / "local" / "functions"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[3] / "functions"


def worker_paths(root: Path | None = None) -> dict[str, Path]:
    """Queue name -> worker module file."""
    folder = (root or functions_dir()) / "workers"
    return {p.stem: p for p in sorted(folder.glob("*.py")) if not p.stem.startswith("_")}
