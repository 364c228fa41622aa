"""A Lambda function's cold start without the cyclic garbage collector.

What a handler module makes while it loads (modules, classes, its app and logger) lives as long
as the process, so the collections its allocations would trigger meanwhile find nearly nothing:
7-11 ms of each function's cold start (docs/benchmarks.md, "Cold start of the api, seventh round
(issue 25)" and "Cold start, eighth round: every function (issue 25)"). Each handler module wraps
its imports in ``with loading():``; once they are done, what they made is frozen out of every
later collection (``gc.freeze``) and the collector is on again for the requests (only if it was
on: a process that had it off keeps it off). Standard library only (``gc``): it is imported
before anything else of the cold start.
"""

import gc


class Loading:
    """The context manager ``loading()`` gives. Nested (the proxy's ``server.py`` around its
    ``handler.py``), the inner one finds the collector off and leaves it off; the outer one
    turns it on again. When the block raises, nothing is frozen and the collector is left as it
    was found."""

    __slots__ = ("_collecting",)

    def __init__(self) -> None:
        self._collecting = False

    def __enter__(self) -> None:
        self._collecting = gc.isenabled()
        gc.disable()

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is None:
            gc.freeze()
        if self._collecting:
            gc.enable()


def loading() -> Loading:
    """``with loading():`` around a handler module's imports and the objects it makes once."""
    return Loading()
