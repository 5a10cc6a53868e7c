"""Per-provider limits: a burst is spread at the configured rate, never more in flight than the
cap, and nothing is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST, load_config
from scheduler.dispatch import Dispatcher
from scheduler.fakes.lvb import Delay, FakeLvb
from scheduler.ledger import MemoryLedger, State
from scheduler.parsing import parse_rate
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.transport import Transport
from tests.conftest import LogCapture


@pytest.mark.parametrize(
    ("text", "per_second"), [("20/s", 20.0), ("600/m", 10.0), ("0.5/s", 0.5), (" 3 / sec ", 3.0)]
)
def test_rates_parse(text: str, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["20", "0/s", "-1/s", "20/h", "fast"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(text)


async def _burst(
    fake: FakeLvb, write_config: Callable[[str], Path], limits: str, n: int, seconds: int = 60
) -> list[State]:
    start = (datetime.now(UTC) - timedelta(seconds=1)).astimezone(CST)
    recordings = "".join(
        f"  - {{name: r{i}, channel_id: c{i}, start: '{start:%Y-%m-%d %H:%M:%S}', "
        f"duration: {seconds}s}}\n"
        for i in range(n)
    )
    config = load_config(
        write_config(
            f"providers:\n  lvb: {{endpoint: '{fake.url}', appid: 1234, key: '${{LVB_KEY}}', "
            f"{limits}}}\nrecordings:\n{recordings}"
        )
    )
    dispatcher = Dispatcher(config, Transport(), MemoryLedger(), senders=provider_senders)
    calls = plan(config, datetime.now(UTC))
    try:
        return await asyncio.gather(*(dispatcher.fire(c) for c in calls))
    finally:
        await dispatcher.transport.close()


@pytest.mark.usefixtures("lvb_env")
async def test_a_burst_is_spread_at_the_rate(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    states = await _burst(fake_lvb, write_config, "rate: 5/s", 8)
    assert states == [State.OK] * 8  # late, never dropped
    arrivals = sorted(r.arrived_at for r in fake_lvb.received)
    # a bucket of 5 lets the first 5 through at once, then one every 0.2 s
    assert arrivals[-1] - arrivals[0] >= 3 * 0.2 - 0.05
    assert arrivals[4] - arrivals[0] < arrivals[-1] - arrivals[4]  # the burst, then the pace


@pytest.mark.usefixtures("lvb_env")
async def test_no_more_than_the_cap_in_flight(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    fake_lvb.inject(*[Delay(0.5)] * 6)
    states = await _burst(fake_lvb, write_config, "concurrency: 2", 6)
    assert states == [State.OK] * 6
    arrivals = sorted(r.arrived_at for r in fake_lvb.received)
    # each answer takes 0.5 s and only 2 may be out at once: 3 waves
    assert arrivals[2] - arrivals[0] >= 0.45 and arrivals[4] - arrivals[0] >= 0.95


@pytest.mark.usefixtures("lvb_env")
async def test_a_call_that_waited_past_its_chunk_is_missed_not_sent(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path], captured_logs: LogCapture
) -> None:
    # 8 chunks ending 3-4 s from now, 1 request a second: the last ones cannot make it
    states = await _burst(fake_lvb, write_config, "rate: 1/s", 8, seconds=5)
    assert State.OK in states and states.count(State.MISSED) >= 3
    assert set(states) == {State.OK, State.MISSED}  # none sent to be refused (ret != 0)
    assert len(fake_lvb.received) == states.count(State.OK)
    assert all(r.ok for r in fake_lvb.received)
    missed = captured_logs.events("call.missed")
    assert len(missed) == states.count(State.MISSED)
    assert {m["reason"] for m in missed} == {"chunk over while the call waited its turn"}
