"""The wait of early calls for their instant (release.py): never before it by the wall clock,
and a burst woken a slice per turn of the event loop, not all in one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.release import Release, release_in_slices


async def test_waiters_are_woken_a_slice_per_turn_of_the_loop() -> None:
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = [loop.create_future() for _ in range(5)]
    task = asyncio.create_task(release_in_slices(waiters, 2))
    woken = []
    for _ in range(4):
        await asyncio.sleep(0)  # one turn: the releaser wakes one slice, then yields
        woken.append(sum(w.done() for w in waiters))
    await task
    assert woken[:3] == [2, 4, 5]  # not [5, 5, 5]: the first slice goes on before the rest


async def test_a_cancelled_waiter_is_skipped_and_the_rest_still_woken() -> None:
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = [loop.create_future() for _ in range(3)]
    waiters[1].cancel()  # its call was cancelled (a forced stop) while it waited
    await release_in_slices(waiters, 1)
    assert waiters[0].done() and waiters[2].done() and waiters[1].cancelled()


async def test_every_call_of_an_instant_returns_at_it_and_not_before() -> None:
    release = Release(lambda: datetime.now(UTC), size=3)
    at = datetime.now(UTC) + timedelta(milliseconds=80)
    returned: list[datetime] = []

    async def call() -> None:
        await release.until(at)
        returned.append(datetime.now(UTC))

    async with asyncio.timeout(10):
        await asyncio.gather(*(call() for _ in range(10)))
        assert len(returned) == 10 and min(returned) >= at
        late = datetime.now(UTC)
        await release.until(at)  # the instant has passed: at once
    assert datetime.now(UTC) - late < timedelta(seconds=1)


async def test_the_wall_clock_decides_when_the_timer_ends_early_by_it() -> None:
    # The timer runs on the monotonic clock; the wall clock reads 50 ms behind it when the
    # timer fires (an NTP slew, a step): the call still waits until the wall reads its instant.
    lag = timedelta(0)

    def wall() -> datetime:
        return datetime.now(UTC) - lag

    release = Release(wall)
    at = wall() + timedelta(milliseconds=30)
    waiting = asyncio.create_task(release.until(at))
    await asyncio.sleep(0)  # registered: its timer is armed for 30 ms from now
    lag = timedelta(milliseconds=50)
    async with asyncio.timeout(10):
        await waiting
    assert wall() >= at


@pytest.mark.parametrize("size", [1, 50])
async def test_calls_of_different_instants_wait_for_their_own(size: int) -> None:
    release = Release(lambda: datetime.now(UTC), size=size)
    now = datetime.now(UTC)
    first, second = now + timedelta(milliseconds=40), now + timedelta(milliseconds=120)
    order: list[str] = []

    async def call(name: str, at: datetime) -> None:
        await release.until(at)
        assert datetime.now(UTC) >= at
        order.append(name)

    async with asyncio.timeout(10):
        await asyncio.gather(call("second", second), call("first", first))
    assert order == ["first", "second"]
