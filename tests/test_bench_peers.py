"""The benchmarks' CPU reader (bench/peers.py): the CPU of the servers' process groups, and with
``unniced`` only of their processes at full priority (the niced search process of `kontex dev`
takes only what the others leave, so bench/proxy.py's idle wait does not count it)."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.peers import group_cpu_seconds

# told to, it spends 0.4 s of CPU, says so, and waits to be killed
CHILD = """import os, time
os.nice({nice})
print("ready", flush=True)
input()
end = time.process_time() + 0.4
while time.process_time() < end:
    pass
print("done", flush=True)
input()
"""


def _burn(nice: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD.format(nice=nice)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as each benchmarked server
    )


def _said(child: subprocess.Popen[str], word: str) -> None:
    assert child.stdout is not None
    assert child.stdout.readline().strip() == word


def test_the_cpu_of_a_group_and_of_its_unniced_processes() -> None:
    plain, niced = _burn(0), _burn(10)
    try:
        for child in (plain, niced):
            _said(child, "ready")  # started: their start-up CPU is left out (subtracted below)
        groups = [plain.pid, niced.pid]
        before_all, before_plain = group_cpu_seconds(groups), group_cpu_seconds(groups, True)
        for child in (plain, niced):
            assert child.stdin is not None
            child.stdin.write("\n")
            child.stdin.flush()
        for child in (plain, niced):
            _said(child, "done")
        spent_all = group_cpu_seconds(groups) - before_all
        spent_plain = group_cpu_seconds(groups, unniced=True) - before_plain
        assert 0.75 <= spent_all <= 0.9, spent_all
        assert 0.35 <= spent_plain <= 0.45, spent_plain
    finally:
        for child in (plain, niced):
            os.killpg(child.pid, 9)
            child.wait()
