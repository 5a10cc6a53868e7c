"""The building blocks of the config: strict YAML scalars, human durations, standard cron."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given
from hypothesis import strategies as st

from scheduler.cron import cron_trigger
from scheduler.durations import format_duration, parse_duration
from scheduler.errors import Problem
from scheduler.yamlstrict import format_path, load

CST = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 30, tzinfo=CST)  # 2026-11-30 is a Monday


# -- strict YAML -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML 1.1 (plain PyYAML) turns each of these into something else; we keep text
        ("10:30", "10:30"),  # sexagesimal 630 in YAML 1.1
        ("0123", "0123"),  # octal 83 in YAML 1.1
        ("0x1F", "0x1F"),
        ("no", "no"),
        ("on", "on"),
        ("yes", "yes"),
        ("off", "off"),
        ("2026-12-01", "2026-12-01"),  # a date object in YAML 1.1
        ("2026-12-01 10:00:00", "2026-12-01 10:00:00"),
        # YAML 1.2 core scalars still get their types
        ("true", True),
        ("false", False),
        ("True", True),
        ("~", None),
        ("null", None),
        ("", None),
        ("0", 0),
        ("45", 45),
        ("-7", -7),
        ("1.5", 1.5),
        ('"true"', "true"),  # quoting always means text
        ("'45'", "45"),
    ],
)
def test_strict_scalars(text: str, expected: object) -> None:
    value, _, problems = load(f"v: {text}\n", "t.yaml")
    assert problems == []
    assert value == {"v": expected}
    assert type(value["v"]) is type(expected)


def test_plain_pyyaml_would_have_changed_these_values() -> None:
    """Why the strict loader exists: the same text through yaml.safe_load."""
    import yaml

    assert yaml.safe_load("v: 10:30")["v"] == 630
    assert yaml.safe_load("v: 0123")["v"] == 83
    assert yaml.safe_load("v: no")["v"] is False
    assert load("v: 10:30\nw: 0123\nx: no\n", "t.yaml")[0] == {"v": "10:30", "w": "0123", "x": "no"}


def test_duplicate_key_is_a_problem_naming_both_lines() -> None:
    text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\na: 2\n"
    value, _, problems = load(text, "t.yaml")
    assert problems == [
        Problem("t.yaml", 5, 3, "b.c", "duplicate key (first given on line 3)"),
        Problem("t.yaml", 6, 1, "a", "duplicate key (first given on line 1)"),
    ]
    assert value == {"a": 1, "b": {"c": 1, "d": 2}}  # the first value is kept, not the last


def test_marks_are_one_based_key_positions() -> None:
    text = (
        "top: 1\n"  # line 1
        "outer:\n"  # line 2
        "  inner: x\n"  # line 3
        "  items:\n"  # line 4
        "    - first\n"  # line 5
        "    - name: second\n"  # line 6
        "      size: 2\n"  # line 7
    )
    value, marks, problems = load(text, "t.yaml")
    assert problems == []
    assert value["outer"]["items"][1] == {"name": "second", "size": 2}
    assert marks[("top",)] == (1, 1)
    assert marks[("outer",)] == (2, 1)
    assert marks[("outer", "inner")] == (3, 3)
    assert marks[("outer", "items")] == (4, 3)
    assert marks[("outer", "items", 0)] == (5, 7)
    assert marks[("outer", "items", 1)] == (6, 7)
    assert marks[("outer", "items", 1, "size")] == (7, 7)


def test_syntax_error_is_a_located_problem() -> None:
    value, marks, problems = load("a: 1\nb: c: d\n", "t.yaml")
    assert value is None
    assert marks == {}
    [problem] = problems
    assert (problem.file, problem.line, problem.path) == ("t.yaml", 2, "")
    assert problem.message.startswith("YAML syntax error: mapping values are not allowed")


def test_empty_document() -> None:
    assert load("", "t.yaml") == (None, {}, [])
    assert load("# only a comment\n", "t.yaml") == (None, {}, [])


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("timezone",), "timezone"),
        (("recordings", 1, "chunk"), "recordings[1].chunk"),
        (("recordings", 0, "skip_dates", 2), "recordings[0].skip_dates[2]"),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


# -- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1d2h3m4s", 93784),
        ("1h0m", 3600),
        (" 1h 30m ", 5400),  # spaces are allowed
        ("1h 30m", 5400),
        (45, 45),  # a YAML int is seconds
        (1, 1),
    ],
)
def test_parse_duration(value: object, seconds: int) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


def test_parse_duration_accepts_quoted_seconds() -> None:
    assert parse_duration("45") == timedelta(seconds=45)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "must be longer than zero"),
        ("0s", "must be longer than zero"),
        (-5, "must be longer than zero"),
        ("-5", "is not a duration"),
        ("1.5h", "is not a duration"),
        (1.5, "is not a duration"),
        ("10:30", "is not a duration"),
        ("abc", "is not a duration"),
        ("30m1h", "is not a duration"),  # units must come in d/h/m/s order
        ("5x", "is not a duration"),
        (True, "is not a duration"),  # bool is an int subclass: must not be 1 second
        (False, "is not a duration"),
        ("", "is not a duration"),
        ("   ", "is not a duration"),
        (None, "is not a duration"),
    ],
)
def test_parse_duration_rejects(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        parse_duration(value)
    assert repr(value) in str(info.value)  # the operator sees what they wrote


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45s"),
        (90, "1m30s"),
        (1800, "30m"),
        (5400, "1h30m"),
        (86400, "1d"),
        (172800, "2d"),
        (93784, "1d2h3m4s"),
        (0, "0s"),
    ],
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    if seconds:
        assert parse_duration(text) == timedelta(seconds=seconds)


@given(st.integers(min_value=1, max_value=10**9))
def test_duration_round_trip(seconds: int) -> None:
    delta = parse_duration(seconds)
    text = format_duration(delta)
    assert parse_duration(text) == delta == timedelta(seconds=seconds)
    assert format_duration(parse_duration(text)) == text  # the formatted form is canonical


# -- cron ------------------------------------------------------------------------------------


def _week(trigger: CronTrigger, start: datetime = MONDAY) -> list[datetime]:
    """Every fire time of `trigger` in the 7 days from `start`."""
    times = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment < start + timedelta(days=7):
        times.append(moment)
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return times


def _days(trigger: CronTrigger) -> list[str]:
    return [f"{moment:%a}" for moment in _week(trigger)]


def test_weekdays_1_to_5_are_monday_to_friday() -> None:
    times = _week(cron_trigger("0 20 * * 1-5", CST))
    assert [t.isoformat() for t in times] == [
        "2026-11-30T20:00:00+08:00",  # Mon
        "2026-12-01T20:00:00+08:00",  # Tue
        "2026-12-02T20:00:00+08:00",  # Wed
        "2026-12-03T20:00:00+08:00",  # Thu
        "2026-12-04T20:00:00+08:00",  # Fri
    ]


def test_apscheduler_from_crontab_is_the_trap_we_avoid() -> None:
    """APScheduler 3's own from_crontab numbers weekdays from Monday=0 (apscheduler#286)."""
    theirs = _days(CronTrigger.from_crontab("0 20 * * 1-5", timezone=CST))
    ours = _days(cron_trigger("0 20 * * 1-5", CST))
    assert theirs == ["Tue", "Wed", "Thu", "Fri", "Sat"]
    assert ours == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert theirs != ours


@pytest.mark.parametrize(
    ("day_of_week", "days"),
    [
        ("*", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("0,7", ["Sun"]),
        ("1", ["Mon"]),
        ("6", ["Sat"]),
        ("5-7", ["Fri", "Sat", "Sun"]),
        ("0-2", ["Mon", "Tue", "Sun"]),
        ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("MON-FRI", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("sat,sun", ["Sat", "Sun"]),
        ("sun", ["Sun"]),
        ("1,3,5", ["Mon", "Wed", "Fri"]),
        ("*/2", ["Tue", "Thu", "Sat", "Sun"]),  # 0,2,4,6
        ("1-5/2", ["Mon", "Wed", "Fri"]),
    ],
)
def test_cron_weekday_numbering(day_of_week: str, days: list[str]) -> None:
    assert _days(cron_trigger(f"0 20 * * {day_of_week}", CST)) == days


def test_cron_fires_in_the_given_zone() -> None:
    times = _week(cron_trigger("0 20 * * 1", CST))
    assert [t.astimezone(ZoneInfo("UTC")).isoformat() for t in times] == [
        "2026-11-30T12:00:00+00:00"
    ]


def test_cron_step_in_hour_field() -> None:
    day = [t for t in _week(cron_trigger("0 */2 * * *", CST)) if t.date() == MONDAY.date()]
    assert [t.hour for t in day] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]
    quarter = _week(cron_trigger("*/15 9 * * 1", CST))
    assert [f"{t:%H:%M}" for t in quarter] == ["09:00", "09:15", "09:30", "09:45"]


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 20 * *", "has 4 fields; cron needs 5"),
        ("0 20 * * * *", "has 6 fields"),
        ("", "has 0 fields"),
        ("0 25 * * *", "higher than the maximum"),
        ("61 20 * * *", "higher than the maximum"),
        ("0 20 32 * *", "higher than the maximum"),
        ("0 20 * 13 *", "higher than the maximum"),
        ("0 20 * * 8", "'8' is not a weekday"),
        ("0 20 * * funday", "'funday' is not a weekday"),
        ("0 20 * * 5-1", "runs backwards"),
        ("0 20 * * 1/0", "bad step"),
    ],
)
def test_bad_cron(expression: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        cron_trigger(expression, CST)


def test_day_of_month_and_weekday_are_ored_like_cron() -> None:
    trigger = cron_trigger("0 20 1 * 1", CST)  # the 1st of the month, and every Monday
    days = [f"{t:%a %d}" for t in _week(trigger)]
    assert days == ["Mon 30", "Tue 01"]


def test_an_invalid_field_is_an_error_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="higher than the maximum"):
            cron_trigger.__wrapped__("0 25 * * *", CST)
