"""bench/ingest.py's profile summary finds the span threads however deep py-spy's raw stacks
nest their process: here a pipeline process under a fork server, whose command line holds a
";" (as when the pipeline processes were forked; they are spawned now, one level up). Timings
are printed by the benchmark, never asserted."""

from __future__ import annotations

from pathlib import Path

from bench.ingest import summarize_profile

SERVER = 'process 1:"python -m kontex.cli dev --port 1"'
FORK_SERVER = (
    'process 2:"python -B -c from multiprocessing.forkserver import main; main(14, 15,'
    " ['kontex.local.pipeline_preload'])\""
)
PIPELINE = 'process 3:"python -B -c from multiprocessing.forkserver import main; main()"'
SPANS = "thread (4): kontex-queue-spans-0;Thread._bootstrap (threading.py:1002)"


def test_the_span_threads_of_forked_pipeline_processes_are_summarised(tmp_path: Path) -> None:
    raw = tmp_path / "ingest.txt"
    raw.write_text(
        "\n".join(
            [
                f"{SERVER};{FORK_SERVER};{PIPELINE};{SPANS};lambda_handler (spans.py:40);"
                "store_batch (kontex/services/spans.py:80);encode (tiktoken/core.py:76) 30",
                f"{SERVER};{FORK_SERVER};{PIPELINE};{SPANS};lambda_handler (spans.py:40);"
                "store_batch (kontex/services/spans.py:80);wait (psycopg/connection.py:495) 10",
                f"{SERVER};{FORK_SERVER};{PIPELINE};{SPANS};Condition.wait (threading.py:331) 40",
                f"{SERVER};thread (5): kontex-handler_0;lambda_handler (ingest.py:9) 99",
            ]
        )
        + "\n"
    )
    summary = summarize_profile(raw)
    assert summary["worker_busy_percent"] == 50.0  # 40 busy of 80 span-thread samples
    assert summary["inclusive_percent"]["store_batch"] == 100.0
    assert summary["self_percent"]["encode (tiktoken/core.py:76)"] == 75.0
