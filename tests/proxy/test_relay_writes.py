"""The proxy writes what arrived together in one write (``kontex.proxy.app.arrived``): the
events of a stream read in one go reach the caller in one write instead of one each, none is
held back while the next is awaited, and errors and an early close behave as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kontex.proxy.app import arrived


class Upstream:
    """Parts in groups: a group's parts come without waiting, each group after ``go``."""

    def __init__(
        self, *groups: list[bytes], fail: Exception | None = None, bare: bool = False
    ) -> None:
        self.groups, self.fail, self.bare = groups, fail, bare
        self.go = asyncio.Event()
        self.waiting = asyncio.Event()
        self.closed = False

    async def parts(self) -> AsyncIterator[bytes]:
        try:
            for index, group in enumerate(self.groups):
                if index:
                    self.waiting.set()
                    await self.go.wait()
                    self.go.clear()
                    self.waiting.clear()
                for part in group:
                    if self.bare:
                        await asyncio.sleep(0)  # a bare yield to the loop (None to the task)
                    yield part
            if self.fail is not None:
                raise self.fail
        finally:
            await asyncio.sleep(0)  # its clean-up awaits, as giving a connection back does
            self.closed = True


def test_parts_that_came_together_go_in_one_write_before_the_next_wait() -> None:
    async def run() -> list[bytes]:
        upstream = Upstream([b"a", b"b", b"", b"c"], [b"d"], [b"e", b"f"])
        got: list[bytes] = []
        async for write in arrived(upstream.parts()):
            got.append(write)
            if len(got) < 3:  # written while the upstream waits for its next group
                assert upstream.waiting.is_set()
                upstream.go.set()
        return got

    assert asyncio.run(run()) == [b"abc", b"d", b"ef"]


def test_a_bare_yield_to_the_loop_counts_as_a_wait() -> None:
    async def run() -> list[bytes]:
        upstream = Upstream([b"a", b"b"], bare=True)
        return [write async for write in arrived(upstream.parts())]

    assert asyncio.run(run()) == [b"a", b"b"]


def test_what_came_before_an_upstream_error_goes_first() -> None:
    async def run() -> tuple[list[bytes], BaseException | None]:
        upstream = Upstream([b"a", b"b"], fail=ConnectionError("cut"))
        got: list[bytes] = []
        try:
            async for write in arrived(upstream.parts()):
                got.append(write)
        except ConnectionError as error:
            return got, error
        return got, None

    got, error = asyncio.run(run())
    assert got == [b"ab"] and isinstance(error, ConnectionError)


def test_a_caller_gone_mid_stream_closes_the_upstream() -> None:
    """The caller's write fails while the next part is awaited: the pending read is closed and
    so is the upstream's body (back to the pool or dropped), with no error of its own."""

    async def run() -> bool:
        upstream = Upstream([b"a"], [b"b"])
        parts = upstream.parts()
        writes = arrived(parts)
        with pytest.raises(OSError):
            async for _ in writes:
                raise OSError("the caller went away")
        await writes.aclose()
        await parts.aclose()
        return upstream.closed

    assert asyncio.run(run()) is True
