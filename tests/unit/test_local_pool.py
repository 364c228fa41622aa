"""The API's environments in `kontex dev` (kontex/local/server.py, ``LocalStack``): one in the
server's process; worker processes only for requests that meet it busy, let go when idle."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from kontex.local.server import LocalStack
from kontex.settings import Settings

HANDLER = """
import os, time

def lambda_handler(event, context):
    time.sleep(float(event.get("body") or 0))
    return {"statusCode": 200, "body": str(os.getpid())}
"""


def test_the_pool_starts_for_a_request_that_meets_the_resident_busy_and_goes_when_idle(
    tmp_path: Path,
) -> None:
    root = tmp_path / "functions"
    (root / "api").mkdir(parents=True)
    (root / "api" / "handler.py").write_text(HANDLER)
    settings = Settings.from_env({"KONTEX_API_KEY_SECRET": "t"}, kontex_data_dir=tmp_path)
    stack = LocalStack(settings, root)
    try:
        stack.warm()
        assert stack.environments("api") == 0  # no worker process at start
        started = threading.Event()
        answers: list[Any] = []

        def slow() -> None:
            started.set()
            answers.append(stack.invoke("api", {"body": "3"}))

        first = threading.Thread(target=slow)
        first.start()
        started.wait()
        time.sleep(0.1)  # the first request holds the resident environment
        second = stack.invoke("api", {"body": "0"})
        first.join()
        # one ran in the resident environment (this process), the other in a worker process
        # started for it
        [pooled] = {int(answers[0]["body"]), int(second["body"])} - {os.getpid()}
        assert stack.environments("api") == 1

        stack.retire_idle(idle=60)  # used a moment ago: kept
        assert stack.environments("api") == 1
        stack.retire_idle(idle=60, now=time.monotonic() + 61)
        assert stack.environments("api") == 0
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pooled}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pooled}").exists()
    finally:
        stack.close()
