"""`kontex dev`'s pipeline process (kontex/local/pipeline_process.py) says why its workers do
not run: a start that failed, or an exit; the server prints it (its sweeper's chore)."""

from __future__ import annotations

import time
from pathlib import Path

from kontex.functions import functions_dir
from kontex.local.pipeline_process import PipelineProcess
from kontex.settings import Settings


def checked(pipeline: PipelineProcess, timeout: float = 60) -> str | None:
    deadline = time.monotonic() + timeout
    while (found := pipeline.check()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_a_worker_that_does_not_load_is_reported(tmp_path: Path) -> None:
    (tmp_path / "workers").mkdir()
    (tmp_path / "workers" / "spans.py").write_text("raise ImportError('no such module')\n")
    pipeline = PipelineProcess(Settings(kontex_data_dir=tmp_path / "data"), root=tmp_path)
    try:
        assert checked(pipeline) == (
            "the pipeline process could not start: ImportError: no such module"
        )
        assert pipeline.check() == checked(pipeline)  # the same, said once
    finally:
        pipeline.close()


def test_workers_that_consume_are_not_reported_until_the_process_exits(tmp_path: Path) -> None:
    pipeline = PipelineProcess(Settings(kontex_data_dir=tmp_path / "data"), functions_dir())
    try:
        pipeline.consume({})
        deadline = time.monotonic() + 60
        while pipeline.pid is None and time.monotonic() < deadline:
            assert pipeline.check() is None
            time.sleep(0.05)
        assert pipeline.pid == pipeline.process.pid
        pipeline.process.kill()
        assert checked(pipeline) == "the pipeline process exited (status -9)"
    finally:
        pipeline.close()
