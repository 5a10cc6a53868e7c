"""Planning is a pure function of (config, now): chunking, windows, late starts."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.config import Config, parse_config
from scheduler.planner import chunk_window, plan

CST = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 20, 0, tzinfo=CST)
M = timedelta(minutes=1)
S = timedelta(seconds=1)


def _config(recordings: str, *, timezone: str = "Asia/Shanghai") -> Config:
    text = f"""
timezone: {timezone}
providers:
  lvb: {{appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
{recordings}
"""
    return parse_config(text, "t.yaml", env={"LVB_KEY": "k"})


def _times(calls: list, name: str = "Param.s.start_time") -> list[str]:  # type: ignore[type-arg]
    return [c.param(name)[11:16] for c in calls]


@pytest.mark.parametrize(
    ("length", "chunk", "min_chunk", "expected"),
    [
        (90 * M, 30 * M, S, [30, 30, 30]),  # the 90-minute show
        (75 * M, 30 * M, S, [30, 30, 15]),
        (30 * M, 30 * M, S, [30]),
        (10 * M, 30 * M, S, [10]),
        (60 * M + 30 * S, 30 * M, 60 * S, [30, 30.5]),  # 30 s tail would exceed 30m: kept...
        (50 * M + 30 * S, 25 * M, 60 * S, [25, 25.5]),  # ...merged when the result fits 30m
        (12 * S, 4 * S, S, [4 / 60, 4 / 60, 4 / 60]),  # seconds-long windows work
    ],
)
def test_chunk_table(
    length: timedelta, chunk: timedelta, min_chunk: timedelta, expected: list[float]
) -> None:
    pieces = chunk_window(T0, T0 + length, chunk, min_chunk)
    minutes = [(end - start) / M for start, end in pieces]
    if length == 60 * M + 30 * S:
        # merging would make a 30.5-minute task, over the provider's limit: the tail stays
        assert minutes == [30, 30, 0.5]
    else:
        assert minutes == pytest.approx(expected)


@given(
    length=st.integers(1, 3 * 86400),
    chunk=st.integers(3, 1800),
    min_chunk=st.integers(1, 600),
)
def test_chunks_tile_the_window_and_respect_the_limit(
    length: int, chunk: int, min_chunk: int
) -> None:
    min_chunk = min(min_chunk, chunk - 1)  # config validation requires min_chunk < chunk
    end = T0 + timedelta(seconds=length)
    pieces = chunk_window(T0, end, timedelta(seconds=chunk), timedelta(seconds=min_chunk))
    assert pieces[0][0] == T0 and pieces[-1][1] == end  # covers the window
    for (_, first_end), (second_start, _) in itertools.pairwise(pieces):
        assert first_end == second_start  # back to back: no gap, no overlap
    assert all(timedelta(0) < e - s <= timedelta(minutes=30) for s, e in pieces)
    if len(pieces) > 1:
        tail = pieces[-1][1] - pieces[-1][0]
        merged = pieces[-1][1] - pieces[-2][0]
        assert tail >= timedelta(seconds=min_chunk) or merged > timedelta(minutes=30)


@given(
    offset=st.integers(-2 * 86400, 2 * 86400),
    duration=st.integers(3, 3 * 3600),
    chunk=st.integers(3, 1800),
)
def test_plan_never_contains_a_call_whose_chunk_is_over(
    offset: int, duration: int, chunk: int
) -> None:
    config = _config(
        f"  - {{name: a, channel_id: c, cron: '0 20 * * *', duration: {duration}, chunk: {chunk}}}"
    )
    now = T0 + timedelta(seconds=offset)
    calls = plan(config, now, timedelta(hours=48))
    assert all(c.deadline > now for c in calls)
    assert all(c.at < now + timedelta(hours=48) for c in calls)
    assert [c.at for c in calls] == sorted(c.at for c in calls)
    assert len({c.key for c in calls}) == len(calls)  # idempotency keys are unique


def test_plan_is_in_time_order_and_calls_due_together_in_key_order() -> None:
    """`recsched plan`, `--json` and the daemon's arming order: by instant, then by key,
    whatever the file's order (later recordings first here, one due earlier than the rest)."""
    config = _config(
        "  - {name: c, channel_id: c, start: '2026-12-01T21:00', duration: 30m}\n"
        "  - {name: b, channel_id: b, start: '2026-12-01T21:00', duration: 30m}\n"
        "  - {name: z, channel_id: z, start: '2026-12-01T20:30', duration: 30m}\n"
        "  - {name: a, channel_id: a, start: '2026-12-01T21:00', duration: 30m}"
    )
    calls = plan(config, T0, timedelta(hours=2))
    assert [c.recording for c in calls] == ["z", "a", "b", "c"]


def test_ninety_minute_show_is_three_back_to_back_real_time_tasks() -> None:
    config = _config("  - {name: news, channel_id: 8888_news, cron: '0 20 * * 1-5', duration: 90m}")
    calls = plan(config, T0 - M, timedelta(hours=2))
    assert _times(calls) == ["20:00", "20:30", "21:00"]
    assert _times(calls, "Param.s.end_time") == ["20:30", "21:00", "21:30"]
    assert [c.at for c in calls] == [T0, T0 + 30 * M, T0 + 60 * M]
    assert {c.param("Param.n.task_sub_type") for c in calls} == {"1"}
    assert [f"{c.chunk}/{c.chunks}" for c in calls] == ["1/3", "2/3", "3/3"]


def test_weekday_cron_uses_cron_numbering() -> None:
    config = _config("  - {name: news, channel_id: c, cron: '0 20 * * 1-5', duration: 10m}")
    monday = datetime(2026, 11, 30, 0, 0, tzinfo=CST)
    days = [c.at.strftime("%a") for c in plan(config, monday, timedelta(days=7))]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_late_start_sends_open_chunk_with_original_end_and_skips_ended_ones() -> None:
    config = _config("  - {name: news, channel_id: c, cron: '0 20 * * *', duration: 90m}")
    calls = plan(config, T0 + 40 * M, timedelta(hours=1))
    # chunk 1 (20:00-20:30) is over; chunk 2 is open and due now; chunk 3 at 21:00
    assert _times(calls) == ["20:30", "21:00"]
    assert calls[0].at < T0 + 40 * M and calls[0].param("Param.s.end_time").endswith("21:00:00")


def test_window_crossing_midnight_and_holiday_calendar() -> None:
    config = _config(
        "  - name: late\n    channel_id: c\n    cron: '30 23 * * 1-5'\n    duration: 90m\n"
        "    skip_dates: [2026-10-01]\n    extra_dates: [2026-10-11]\n"
        "    from: 2026-09-30\n    until: 2026-10-12\n"
    )
    calls = plan(config, datetime(2026, 9, 28, tzinfo=CST), timedelta(days=20))
    starts = sorted({c.window_start.date() for c in calls})
    # from 09-30 (Wed); 10-01 (Thu) skipped as a holiday; weekdays; 10-11 (Sun) make-up workday;
    # `until` 10-12 is the last. Each window runs past midnight: 23:30, 00:00, 00:30 tasks.
    october = [2, 5, 6, 7, 8, 9, 11, 12]
    assert starts == [date(2026, 9, 30)] + [date(2026, 10, d) for d in october]
    first = [c for c in calls if c.window_start.date() == date(2026, 9, 30)]
    assert [c.param("Param.s.start_time") for c in first] == [
        "2026-09-30 23:30:00",
        "2026-10-01 00:00:00",
        "2026-10-01 00:30:00",
    ]


@pytest.mark.parametrize(
    ("calendar", "days"),
    [
        ("skip_dates: [2026-12-03]", [1, 2, 4, 5, 7]),  # Tuesday 1st to Monday 7th
        ("from: 2026-12-04", [4, 5, 7]),
        ("until: 2026-12-03", [1, 2, 3]),
        ("extra_dates: [2026-12-06]", [1, 2, 3, 4, 5, 6, 7]),  # Sunday too
    ],
)
def test_each_calendar_key_alone_is_honoured(calendar: str, days: list[int]) -> None:
    config = _config(
        "  - {name: n, channel_id: c, cron: '0 20 * * 1-6', duration: 10m, " + calendar + "}"
    )
    calls = plan(config, datetime(2026, 12, 1, tzinfo=CST), timedelta(days=7))
    assert [c.window_start.astimezone(CST).day for c in calls] == days


def test_scheduled_mode_creates_day_long_tasks_ahead_by_lead() -> None:
    config = _config(
        "  - {name: launch, channel_id: c, mode: scheduled, start: 2026-12-01 10:00:00,"
        " duration: 30h, lead: 10m}"
    )
    calls = plan(config, datetime(2026, 12, 1, 0, 0, tzinfo=CST), timedelta(days=3))
    assert [c.at.astimezone(CST).strftime("%d %H:%M") for c in calls] == ["01 09:50", "02 09:50"]
    assert [(c.param("Param.s.start_time"), c.param("Param.s.end_time")) for c in calls] == [
        ("2026-12-01 10:00:00", "2026-12-02 10:00:00"),
        ("2026-12-02 10:00:00", "2026-12-02 16:00:00"),
    ]
    assert {c.param("Param.n.task_sub_type") for c in calls} == {"0"}


def test_times_in_the_yaml_follow_the_timezone_key_not_the_host(host_tz: str) -> None:
    config = _config(
        "  - {name: a, channel_id: c, start: 2026-12-01 12:00:00, duration: 10m}", timezone="UTC"
    )
    (call,) = plan(config, datetime(2026, 12, 1, tzinfo=UTC), timedelta(days=1))
    assert call.param("Param.s.start_time") == "2026-12-01 20:00:00"  # 12:00 UTC = 20:00 CST
    assert call.to_json()["at"] == "2026-12-01T20:00:00+08:00"


def test_plan_is_pure() -> None:
    config = _config("  - {name: news, channel_id: c, cron: '*/7 * * * *', duration: 5m}")
    assert plan(config, T0, timedelta(hours=5)) == plan(config, T0, timedelta(hours=5))


def test_scheduled_tail_merges_up_to_the_one_day_limit() -> None:
    config = _config(
        "  - {name: launch, channel_id: c, mode: scheduled, start: 2026-12-01 00:00:00,"
        " duration: 25h, chunk: 12h, min_chunk: 2h}"
    )
    calls = plan(config, datetime(2026, 11, 30, tzinfo=CST), timedelta(days=3))
    # 12h + 12h + 1h: the 1 h tail is under min_chunk and 12h + 1h fits in a day, so it merges
    assert [(c.deadline - c.start) / timedelta(hours=1) for c in calls] == [12, 13]


def test_dst_changes_neither_hang_nor_double_nor_stretch_a_window() -> None:
    """A New York daily 01:30 show, 60 minutes: on 2026-11-01 01:30 happens twice (the clock
    falls back at 02:00) and on 2026-03-08 02:00-03:00 does not exist. Cron records the
    repeated time once; every window lasts exactly its duration in real time."""
    config = _config(
        "  - {name: night, channel_id: c, cron: '30 1 * * *', duration: 60m, chunk: 30m}",
        timezone="America/New_York",
    )
    autumn = plan(config, datetime(2026, 10, 31, 12, tzinfo=UTC), timedelta(days=2))
    windows = sorted({(c.window_start, c.window_end) for c in autumn})
    assert [s.astimezone(UTC).isoformat() for s, _ in windows] == [
        "2026-11-01T05:30:00+00:00",  # 01:30 EDT; not again at 01:30 EST
        "2026-11-02T06:30:00+00:00",
    ]
    assert {e - s for s, e in windows} == {timedelta(hours=1)}
    spring = plan(config, datetime(2026, 3, 7, 12, tzinfo=UTC), timedelta(days=2))
    spans = [(c.start, c.deadline) for c in spring]
    assert all(e - s == timedelta(minutes=30) for s, e in spans)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans[:2]))
