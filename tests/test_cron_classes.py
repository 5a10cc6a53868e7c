"""Window starts as Debian cron runs the job: one table per class of issue 13.

Every expected instant is the one ../shared/reference/cron-semantics.md gives for Debian cron
(or worked out by hand from cron(8)'s rules), written in the file's zone with its UTC offset.
Each class failed with the planner that stepped APScheduler 3.11's CronTrigger.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import ConfigError, parse_config
from scheduler.planner import windows


def _starts(cron: str, zone: str, now: str, hours: float, duration: str = "30m") -> list[str]:
    """The window starts `recsched plan --now NOW --hours HOURS` would show, in `zone`."""
    text = f"""
timezone: {zone}
providers:
  lvb: {{appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - {{name: r, channel_id: c, cron: "{cron}", duration: {duration}}}
"""
    config = parse_config(text, "t.yaml", env={"LVB_KEY": "k"})
    since = datetime.fromisoformat(now)
    found = windows(config.recordings[0], config.timezone, since, since + timedelta(hours=hours))
    tz = ZoneInfo(zone)
    return [f"{start.astimezone(tz):%m-%d %H:%M%z}" for start, _ in found]


NY, LONDON, LORD_HOWE, SHANGHAI = (
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Shanghai",
)


@pytest.mark.parametrize(
    ("cron", "zone", "now", "hours", "expected"),
    [
        (
            "0 0 * * *",
            NY,
            "2027-03-13T12:00:00-05:00",
            96,
            ["03-14 00:00-0500", "03-15 00:00-0400", "03-16 00:00-0400", "03-17 00:00-0400"],
        ),
        ("0 0 1 * *", NY, "2027-03-02T00:00:00-05:00", 24 * 35, ["04-01 00:00-0400"]),
        ("0 0 * * 1", LONDON, "2027-03-27T00:00:00+00:00", 72, ["03-29 00:00+0100"]),
        (
            "15 0 * * *",
            LORD_HOWE,
            "2027-10-02T12:00:00+10:30",
            48,
            ["10-03 00:15+1030", "10-04 00:15+1100"],
        ),
        (
            "11-50/6 0 * * *",
            LORD_HOWE,
            "2027-10-03T12:00:00+11:00",
            13,
            [f"10-04 00:{m}+1100" for m in ("11", "17", "23", "29", "35", "41", "47")],
        ),
    ],
)
def test_class_1_spring_forward_keeps_the_next_days_midnight_hour(
    cron: str, zone: str, now: str, hours: float, expected: list[str]
) -> None:
    assert _starts(cron, zone, now, hours, "5m") == expected


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 0 1 jan-dec/3 *", ["01-01", "04-01", "07-01"]),
        ("0 0 1 JAN-DEC/3 *", ["01-01", "04-01", "07-01"]),
        ("0 0 1 jan-6 *", ["01-01", "02-01", "03-01", "04-01", "05-01", "06-01"]),
        ("0 0 1 Feb-Apr,6 *", ["02-01", "03-01", "04-01", "06-01"]),
        ("0 0 1 feb/2 *", ["02-01", "04-01", "06-01"]),
    ],
)
def test_class_2_month_names_with_ranges_and_steps(cron: str, expected: list[str]) -> None:
    found = _starts(cron, SHANGHAI, "2027-01-01T00:00:00+08:00", 4800)
    assert found == [f"{day} 00:00+0800" for day in expected]


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 10 */2 * 1", ["01-11", "01-25"]),  # a `*` day field: both must match
        ("0 10 15 * */1", ["01-15"]),
        ("0 10 */1 * 1", ["01-04", "01-11", "01-18", "01-25"]),
        ("0 10 1,15 * 5", ["01-01", "01-08", "01-15", "01-22", "01-29"]),  # neither: either
    ],
)
def test_class_3_a_star_prefixed_day_field_means_both_must_match(
    cron: str, expected: list[str]
) -> None:
    found = _starts(cron, SHANGHAI, "2027-01-01T00:00:00+08:00", 744)
    assert found == [f"{day} 10:00+0800" for day in expected]


@pytest.mark.parametrize(
    ("cron", "zone", "now", "hours", "duration", "expected"),
    [
        (
            "0 * * * *",
            NY,
            "2027-11-07T00:00:00-04:00",
            4,
            "1h",
            ["11-07 00:00-0400", "11-07 01:00-0400", "11-07 01:00-0500", "11-07 02:00-0500"],
        ),
        (
            "*/20 1 * * *",
            NY,
            "2027-11-07T00:00:00-04:00",
            4,
            "20m",
            [f"11-07 01:{m}{o}" for o in ("-0400", "-0500") for m in ("00", "20", "40")],
        ),
        (
            "30 * * * *",
            LONDON,
            "2027-10-31T00:00:00+01:00",
            3,
            "30m",
            ["10-31 00:30+0100", "10-31 01:30+0100", "10-31 01:30+0000"],
        ),
        (
            "*/15 1 * * *",
            LORD_HOWE,
            "2027-04-04T00:00:00+11:00",
            3,
            "15m",  # 01:30-02:00 repeats on Lord Howe: the half hour's both passes
            [f"04-04 01:{m}+1100" for m in ("00", "15", "30", "45")]
            + ["04-04 01:30+1030", "04-04 01:45+1030"],
        ),
        (  # cronsim 2.8 alone loses this one: its hour steps miss 02:00 after 01:30 repeats
            "0 */2 * * *",
            LORD_HOWE,
            "2027-04-04T00:30:00+11:00",
            3,
            "30m",
            ["04-04 02:00+1030"],
        ),
        (  # a fixed time in the repeated hour: once, in the first pass
            "30 1 * * *",
            NY,
            "2027-11-07T00:00:00-04:00",
            4,
            "1h",
            ["11-07 01:30-0400"],
        ),
    ],
)
def test_class_4_fall_back_wildcard_jobs_run_in_both_passes(
    cron: str, zone: str, now: str, hours: float, duration: str, expected: list[str]
) -> None:
    assert _starts(cron, zone, now, hours, duration) == expected


@pytest.mark.parametrize("dow", ["7-7", "7", "0", "sun", "SUN-sun", "0-0", "7,0"])
def test_class_5_day_of_week_7_7_is_sunday(dow: str) -> None:
    found = _starts(f"0 10 * * {dow}", SHANGHAI, "2027-01-01T00:00:00+08:00", 24 * 14)
    assert found == ["01-03 10:00+0800", "01-10 10:00+0800"]


@pytest.mark.parametrize(
    ("dow", "expected"),
    [
        ("1/3", ["01-03", "01-04", "01-07", "01-10"]),  # 1-7/3: Mon, Thu, Sun
        ("7/2", ["01-03", "01-10"]),  # 7-7/2: Sunday
        ("mon/3", ["01-03", "01-04", "01-07", "01-10"]),
        ("5/1", ["01-01", "01-02", "01-03", "01-08", "01-09", "01-10"]),  # Fri-Sun
        ("mon-7/2", ["01-01", "01-03", "01-04", "01-06", "01-08", "01-10"]),  # M W F Su
    ],
)
def test_class_6_day_of_week_step_reaches_sunday(dow: str, expected: list[str]) -> None:
    found = _starts(f"0 10 * * {dow}", SHANGHAI, "2027-01-01T00:00:00+08:00", 24 * 10)
    assert found == [f"{day} 10:00+0800" for day in expected]


@pytest.mark.parametrize(
    ("cron", "zone", "now", "expected"),
    [
        ("30 2 * * *", NY, "2027-03-14T00:00:00-05:00", ["03-14 03:00-0400"]),
        ("0 2 * * *", NY, "2027-03-14T00:00:00-05:00", ["03-14 03:00-0400"]),
        ("0 2,3 * * *", NY, "2027-03-14T00:00:00-05:00", ["03-14 03:00-0400"]),  # one window
        ("*/20 2 * * *", NY, "2027-03-14T00:00:00-05:00", []),  # wall clock: no 02:xx today
        ("15 2 * * *", LORD_HOWE, "2027-10-03T00:00:00+10:30", ["10-03 02:30+1100"]),
        ("0 1 * * *", LONDON, "2027-03-28T00:00:00+00:00", ["03-28 02:00+0100"]),
    ],
)
def test_class_7_a_fixed_time_in_the_spring_forward_gap_runs_at_the_jump(
    cron: str, zone: str, now: str, expected: list[str]
) -> None:
    assert _starts(cron, zone, now, 20, "10m") == expected


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 */30 * * *", ["01-01 00:00", "01-02 00:00", "01-03 00:00"]),  # step > range
        ("10-12/5 8 * * *", ["01-01 08:10", "01-02 08:10", "01-03 08:10"]),
        ("0 0 1 1-dec *", ["01-01 00:00"]),  # a number-name range
        ("0 0 * 1-feb 7-7", ["01-03 00:00"]),
        ("0 */24 1 jan/12 *", ["01-01 00:00"]),
        ("0-0/5 0 * * *", ["01-01 00:00", "01-02 00:00", "01-03 00:00"]),  # not cronsim's 0/5
    ],
)
def test_class_8_valid_cron_is_accepted_at_check(cron: str, expected: list[str]) -> None:
    found = _starts(cron, SHANGHAI, "2027-01-01T00:00:00+08:00", 60)
    assert found == [f"{start}+0800" for start in expected]


@pytest.mark.parametrize(
    ("cron", "fragment"),
    [
        ("0 0 1 jan6 *", "'jan6' is not a month"),
        ("0 0 L * *", "'L' is not a day-of-month"),
        ("0 0 * * 1#2", "is not cron"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 * * 5-1", "runs backwards"),
        ("0 */0 * * *", "bad step"),
        ("0 0 * 0 *", "lower than the minimum"),
    ],
)
def test_what_cron_rejects_is_an_error_naming_the_place(cron: str, fragment: str) -> None:
    text = f"""timezone: Asia/Shanghai
providers:
  lvb: {{appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - name: r
    channel_id: c
    cron: "{cron}"
    duration: 30m
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "t.yaml", env={"LVB_KEY": "k"})
    message = str(caught.value)
    assert "t.yaml:7:" in message and "recordings[0].cron" in message
    assert fragment in message
