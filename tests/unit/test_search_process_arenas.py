"""The search process holds its malloc arenas to a few (kontex/local/search_process.py). The
local stack runs on Linux with glibc, where the test runs: no skip, which would only hide a
failure."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import ctypes, ctypes.util, os, sys, tempfile, threading
from kontex.local.search_process import fewer_arenas
if sys.argv[1] == "fewer":
    assert fewer_arenas()
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype = libc.fdopen.restype = ctypes.c_void_p
start, go, kept = threading.Barrier(8), threading.Event(), []
def work():
    start.wait()
    kept.append(libc.malloc(4096))  # each new thread's first malloc picks its arena
    go.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
while len(kept) < 8: pass
go.set()
for t in threads: t.join()
with tempfile.TemporaryFile("w+") as out:
    stream = libc.fdopen(os.dup(out.fileno()), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream)); libc.fflush(ctypes.c_void_p(stream))
    out.seek(0)
    print(out.read().count("<heap nr="))
"""


def _arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_eight_threads_share_two_arenas_in_the_search_process() -> None:
    assert _arenas("default") > 2  # glibc: an arena per new thread, up to 8 a core
    assert _arenas("fewer") <= 2
