"""Generate ``kontex_client/_sync_client.py`` from ``_async_client.py`` with unasync (the
tool httpcore uses): ``async def`` -> ``def``, ``await`` dropped, Async* names -> sync ones.

    python clients/python/scripts/gen_sync.py [--check]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import unasync
from _generated import finish, ruff

PACKAGE = Path(__file__).resolve().parents[1] / "kontex_client"
SOURCE, TARGET = "_async_client.py", "_sync_client.py"
HEADER = f"# Generated from {SOURCE} by clients/python/scripts/gen_sync.py: do not edit by hand.\n"
REPLACEMENTS = {
    "AsyncClient": "Client",
    "AsyncKontex": "Kontex",
    "AsyncTransport": "Transport",
    "AsyncKeys": "Keys",
    "AsyncSessions": "Sessions",
    "AsyncTasks": "Tasks",
    "AsyncSnapshots": "Snapshots",
    "AsyncThreads": "Threads",
    "AsyncCheckpoints": "Checkpoints",
    "AsyncQueries": "Queries",
    "AsyncUsageResource": "UsageResource",
    "AsyncLiveFeed": "LiveFeed",
    "AsyncIngest": "Ingest",
    "AsyncProxy": "Proxy",
    "aclose": "close",
    "asyncio": "time",  # asyncio.sleep -> time.sleep
}


def generate(source: Path) -> str:
    """The sync module's text for an async source file."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / SOURCE
        shutil.copy(source, work)
        rule = unasync.Rule(f"/{SOURCE}", f"/{TARGET}", additional_replacements=REPLACEMENTS)
        unasync.unasync_files([str(work)], rules=[rule])
        text = (Path(tmp) / TARGET).read_text()
    first = text.index('"""', 3) + 3  # the async module's docstring gives way to the header
    text = (
        HEADER
        + '"""The synchronous client (``Kontex``): the same API as ``AsyncKontex``."""'
        + text[first:]
    )
    # imports renamed may sort otherwise; lines that lost ``await`` may now fit on one line
    return ruff(text, PACKAGE / TARGET, ["check", "--fix", "--select", "I", "--quiet"], ["format"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args()
    return finish({PACKAGE / TARGET: generate(PACKAGE / SOURCE)}, check=args.check, script=__file__)


if __name__ == "__main__":
    sys.exit(main())
