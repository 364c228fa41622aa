"""A process of ``kontex dev``'s own beside the server (the search process, the pipeline
process): spawned, it holds the one pipe to the server and takes its orders there; when the
server is gone, even by SIGKILL, its end of the pipe closes and the process exits, so none
outlives ``kontex dev`` (docs/design.md, "The local stack")."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("kontex.dev")


class WorkerProcess:
    """The server's handle on one such process: started at once, ``target(*args, conn)`` its
    body, where ``conn`` is the process's end of the pipe; ``name`` says which in messages
    ("the search process ...")."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=_main,
            args=(f"kontex-{name}", target, *args, child),
            name=f"kontex-{name}",
            # a safety net: should the server exit without close() (an error in its own
            # shutdown), multiprocessing terminates it at exit rather than waiting for it
            daemon=True,
        )
        self.process.start()
        child.close()  # ours is the only other end: EOF there when this process dies

    def tell(self, word: Any) -> None:
        self._conn.send(word)

    def answer(self, kind: str, timeout: float) -> Any:
        """The value of the process's next word, which must be ``(kind, value)``; an error
        word, an exit or ``timeout`` seconds of silence raise."""
        if not self._conn.poll(timeout):
            raise RuntimeError(f"the {self.name} process did not start in {timeout:.0f} s")
        try:
            got, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the {self.name} process exited at start") from None
        if got != kind:
            raise RuntimeError(f"the {self.name} process could not start: {value}")
        return value

    def close(self, timeout: float) -> None:
        """Stop it: told "stop", it finishes what it holds; killed if it hangs."""
        with contextlib.suppress(OSError):  # it has gone already
            self._conn.send("stop")
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning("the %s process did not stop in %.0f s: killed", self.name, timeout)
            self.process.kill()
            self.process.join(5)
        self._conn.close()


def _main(title: str, target: Callable[..., None], *args: Any) -> None:
    """The process's entry: named ``title`` for ps and top, then its body."""
    name_process(title)
    target(*args)


PR_SET_NAME = 15  # prctl(2): the calling thread's name, the main thread's is the process's


def name_process(title: str) -> bool:
    """Name this process ``title`` (up to 15 bytes), as ``ps -o comm``, ``top`` and
    ``/proc/<pid>/comm`` show it: the server's processes told apart by name. True when set
    (Linux), else False."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_NAME, title.encode()[:15], 0, 0, 0) == 0)
    except (OSError, AttributeError):  # no libc found
        return False


def told(conn: Connection) -> Any:
    """The server's next word; "stop" when it is gone (its end closed)."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return "stop"


def lower_priority(increment: int, name: str) -> None:
    """Run this process (its threads with it: those started after) ``increment`` steps nicer
    than the server: when both cores are busy the server's requests get them first; on idle
    cores it runs as fast as before. ``name`` says which in the warning."""
    if increment <= 0:
        return
    try:
        os.nice(increment)
    except (AttributeError, OSError) as error:  # no os.nice (Windows), or not permitted
        log.warning("the %s process keeps the server's priority: %s", name, error)
