"""The APScheduler adapter: timers fire on time, a re-applied plan never fires a call twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST, Config, load_config
from scheduler.dispatch import Dispatcher
from scheduler.engine import Engine
from scheduler.fakes.lvb import FakeLvb
from scheduler.fakes.web import FakeWeb
from scheduler.ledger import MemoryLedger
from scheduler.planner import plan
from scheduler.provider_senders import provider_senders
from scheduler.transport import Transport


def _config(write_config: Callable[[str], Path], endpoint: str, recording: str) -> Config:
    return load_config(
        write_config(
            f"providers:\n  lvb: {{endpoint: '{endpoint}', appid: 1234, key: '${{LVB_KEY}}'}}\n"
            f"recordings:\n  - {recording}\n"
        )
    )


@pytest.mark.usefixtures("lvb_env")
async def test_reapplying_the_same_plan_arms_nothing_new_and_sends_once(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)  # 1-2 s ahead
    config = _config(
        write_config,
        fake_lvb.url,
        f"{{name: a, channel_id: c, start: '{start.astimezone(CST):%Y-%m-%d %H:%M:%S}', "
        "duration: 6s, chunk: 3s}",
    )
    transport = Transport()
    engine = Engine(Dispatcher(config, transport, MemoryLedger(), senders=provider_senders))
    engine.start()
    try:
        now = datetime.now(UTC)
        assert engine.schedule(plan(config, now), now) == 2
        assert engine.schedule(plan(config, now), now) == 0  # a reload or re-plan
        assert engine.pending() == 2
        assert engine.next_at() == start
        await fake_lvb.wait_for_requests(2, timeout=10)
        # after the first chunk fired, re-plan again: APScheduler would fire a re-added job
        now = datetime.now(UTC)
        assert engine.schedule(plan(config, now), now) == 0
    finally:
        await engine.stop(5)
        await transport.close()
    assert [r.params["Param.s.start_time"][-8:] for r in fake_lvb.received] == [
        f"{start.astimezone(CST):%H:%M:%S}",
        f"{(start + timedelta(seconds=3)).astimezone(CST):%H:%M:%S}",
    ]


@pytest.mark.usefixtures("lvb_env")
async def test_rolling_horizon_takes_on_later_windows(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    config = _config(
        write_config, fake_lvb.url, "{name: a, channel_id: c, cron: '0 20 * * *', duration: 1h}"
    )
    transport = Transport()
    engine = Engine(
        Dispatcher(config, transport, MemoryLedger(), dry_run=True, senders=provider_senders)
    )
    engine.start()
    try:
        day1 = datetime(2030, 1, 1, 12, tzinfo=CST)
        assert engine.schedule(plan(config, day1, timedelta(hours=24)), day1) == 2
        day2 = day1 + timedelta(hours=12)
        # 12 hours later the horizon reaches the next evening: only those two are new
        assert engine.schedule(plan(config, day2, timedelta(hours=24)), day2) == 2
        assert engine.pending() == 4
    finally:
        await engine.stop(1)
        await transport.close()
    assert fake_lvb.received == []


@pytest.mark.usefixtures("web_env")
async def test_a_reload_that_drops_a_live_web_recording_still_stops_its_task(
    fake_web: FakeWeb, write_config: Callable[[str], Path]
) -> None:
    start = (datetime.now(UTC) - timedelta(seconds=1)).astimezone(CST).replace(microsecond=0)
    head = (
        f"providers:\n  web: {{endpoint: '{fake_web.url}', app_key: '${{WEB_APP_KEY}}',"
        " app_secret: '${WEB_APP_SECRET}'}\nrecordings:\n"
    )
    when = f"{start:%Y-%m-%d %H:%M:%S}"
    lesson = f"  - {{name: lesson, url: 'https://a/', start: '{when}', duration: 4s}}\n"
    other = "  - {name: other, url: 'https://b/', start: '2030-01-01 10:00', duration: 1h}\n"
    config = load_config(write_config(head + lesson))
    transport = Transport()
    engine = Engine(Dispatcher(config, transport, MemoryLedger(), senders=provider_senders))
    engine.start()
    try:
        now = datetime.now(UTC)
        engine.schedule(plan(config, now), now)
        await fake_web.wait_for(lambda: len(fake_web.tasks) == 1, timeout=10)
        assert engine.active(datetime.now(UTC)) == 1  # one page recording
        edited = load_config(write_config(head + other))  # the live lesson is deleted
        now = datetime.now(UTC)
        diff = engine.apply(plan(edited, now), now)
        assert [c.action for c in diff.kept_live] == ["Start"]
        (task_id,) = fake_web.tasks
        await fake_web.wait_for_status(task_id, "canceled", timeout=10)  # Stop still came
        assert engine.active(datetime.now(UTC)) == 0  # a Stop records nothing
    finally:
        await engine.stop(5)
        await transport.close()
    (stop,) = [r for r in fake_web.received if r.action == "Stop"]
    assert stop.data == {"TaskID": task_id}
    assert stop.at - start.timestamp() >= 4.0  # at the window's end, not cut short


@pytest.mark.usefixtures("lvb_env")
async def test_a_reload_drops_the_window_close_of_a_removed_window_only(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    """A removed recording's window gets no `window.closed`; the windows kept (planned, or
    fired and still recording) keep theirs."""
    start = (datetime.now(UTC) + timedelta(hours=2)).astimezone(CST)
    one = f"{{name: a, channel_id: c, start: '{start:%Y-%m-%d %H:%M:%S}', duration: 1h}}"
    two = one.replace("name: a", "name: b")
    both = _config(write_config, fake_lvb.url, f"{one}\n  - {two}")
    transport = Transport()
    engine = Engine(Dispatcher(both, transport, MemoryLedger(), senders=provider_senders))
    engine.start()

    def windows() -> list[str]:
        return sorted(j.id for j in engine._scheduler.get_jobs() if j.id.startswith("window:"))

    try:
        now = datetime.now(UTC)
        assert engine.schedule(plan(both, now), now) == 4
        assert [w.split("/")[0] for w in windows()] == ["window:a", "window:b"]
        only_a = _config(write_config, fake_lvb.url, one)
        diff = engine.apply(plan(only_a, now), now)
        assert (diff.removed, diff.unchanged) == (2, 2)
        assert [w.split("/")[0] for w in windows()] == ["window:a"]
    finally:
        await engine.stop(5)
        await transport.close()
