"""Peers the benchmarks run side by side with Kontex, each in a venv of its own (their
dependencies do not resolve beside ours), built once per machine from the package index and
cached outside the clone: `$XDG_CACHE_HOME/kontex/<name>-venv-<hash of its pins and Python>`
(`~/.cache` by default).

And what every side-by-side run measures the same way: the proportional set size (PSS) of a
process and all its children, so a server of several processes and one of one process are
compared on the memory they really hold (RSS would count pages shared by forked workers once
per process).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

PHOENIX = ["arize-phoenix==20.26.1"]
# LiteLLM's proxy server (`litellm --config`; 1.106, the version the issues measured), the peer
# of bench/proxy.py and bench/captures.py
LITELLM = ["litellm[proxy]==1.106.12"]
STAMP = ".kontex-complete"
TICKS = os.sysconf("SC_CLK_TCK")


def venv(name: str, requirements: list[str]) -> Path:
    """The cached venv's folder, built when missing. It is built where it stays (a venv's
    console scripts name their interpreter by its full path: one built elsewhere and renamed
    has scripts that point nowhere) and stamped last, so an interrupted build is found
    unstamped and built again."""
    key = hashlib.sha256("\n".join([*requirements, sys.version]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kontex"
    folder = cache / f"{name}-venv-{key}"
    if (folder / STAMP).exists():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    print(f"building {folder} (once per machine)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "--quiet", *requirements], check=True)
    (folder / STAMP).write_text(key)
    return folder


def group_cpu_seconds(pgids: Iterable[int], unniced: bool = False) -> float:
    """User + system CPU, in seconds, of every live process in the process groups (each server
    a benchmark starts runs in a group of its own); ``unniced``: only of those no nicer than
    this process, which started them (`kontex dev`'s niced search process, which takes only what
    the others leave, not counted)."""
    wanted = set(pgids)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) in wanted and not (unniced and int(fields[16]) > ours):
            # fields 5 and 19: the process group and the nice value
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / TICKS


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def tree_pss_mb(pid: int) -> float:
    """PSS of ``pid`` and its descendants, in MB (Linux ``/proc/<pid>/smaps_rollup``)."""
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
        todo += _children(current)
    return round(total_kb / 1024, 1)


def tree_processes(pid: int) -> int:
    count, todo = 0, [pid]
    while todo:
        current = todo.pop()
        if Path(f"/proc/{current}").exists():
            count += 1
            todo += _children(current)
    return count
