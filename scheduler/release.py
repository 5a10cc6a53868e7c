"""The wait of a call handed over early for its instant (engine.STAGE_LEAD).

One timer per instant, not one per call. When it fires, the calls waiting for that instant are
woken `RELEASE_SLICE` at a time, one slice per turn of the event loop: the first slice's `sent`
commit and requests then go out while the next slices are still preparing theirs, instead of
every call of a 1,000-call burst preparing before the first commit starts (docs/benchmarks.md:
the burst's p99 lateness 1.5x -> 1.35x the aiohttp floor's). No call is woken before its
instant by the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

#: Calls woken per turn of the event loop at a burst's instant. 20 and 50 did equally well,
#: 100 worse, all at once worst (bench/run.py --burst-only). A choice: one constant to change.
RELEASE_SLICE = 50


async def release_in_slices(waiters: Sequence[asyncio.Future[None]], size: int) -> None:
    """Wake `waiters` in order, `size` of them per turn of the event loop."""
    for first in range(0, len(waiters), size):
        for waiter in waiters[first : first + size]:
            if not waiter.done():  # a call cancelled while it waited (a forced stop)
                waiter.set_result(None)
        await asyncio.sleep(0)


class Release:
    """Where early calls wait for their instant."""

    def __init__(self, clock: Callable[[], datetime], *, size: int = RELEASE_SLICE) -> None:
        self.clock = clock
        self.size = size
        self._waiting: dict[datetime, list[asyncio.Future[None]]] = {}
        self._releasing: set[asyncio.Task[None]] = set()

    async def until(self, at: datetime) -> None:
        """Return once the wall clock reads `at` (at once if it already does)."""
        delay = (at - self.clock()).total_seconds()
        if delay > 0:
            loop = asyncio.get_running_loop()
            waiters = self._waiting.get(at)
            if waiters is None:
                waiters = self._waiting[at] = []
                loop.call_later(delay, self._open, at)
            waiter: asyncio.Future[None] = loop.create_future()
            waiters.append(waiter)
            await waiter
        # the timer runs on the monotonic clock, which may end a hair early by the wall's
        while (delay := (at - self.clock()).total_seconds()) > 0:  # noqa: ASYNC110 (a clock)
            await asyncio.sleep(delay)

    def _open(self, at: datetime) -> None:
        task = asyncio.ensure_future(release_in_slices(self._waiting.pop(at), self.size))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
