"""The planner's window starts for generated cron expressions, checked three ways:

1. against an independent model written here from cron(8) and Vixie's entry.c / cron.c (field
   sets, DOM_STAR/DOW_STAR, Sunday 0 and 7, `a/step` = `a-max/step` as cronie) and the
   README's DST policy, minute by minute in UTC, so no cron library decides what is right;
2. against cronsim iterated on its own (the engine the planner uses: this catches the
   planner's own range, memo and filtering mistakes, not cronsim's);
3. invariants: every start is a wall time the fields match, or a fixed-time job's wall time
   in a spring-forward gap moved to the jump.

In Asia/Shanghai and three DST zones, across their 2027 transitions.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from scheduler.config import parse_config
from scheduler.cron import starts, validate
from scheduler.planner import windows

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
#: field: (lowest, highest, names)
LIMITS = [(0, 59, []), (0, 23, []), (1, 31, []), (1, 12, MONTHS), (0, 7, DAYS)]
#: 2027's transitions (local wall time of the change) and a no-DST zone.
ZONES = {
    "Asia/Shanghai": [datetime(2027, 3, 14, 2), datetime(2027, 11, 7, 1)],
    "America/New_York": [datetime(2027, 3, 14, 2), datetime(2027, 11, 7, 1)],
    "Europe/London": [datetime(2027, 3, 28, 1), datetime(2027, 10, 31, 1)],
    "Australia/Lord_Howe": [datetime(2027, 4, 4, 1, 30), datetime(2027, 10, 3, 2)],
}
MINUTE = timedelta(minutes=1)


def _value_text(field: int, value: int, draw: st.DrawFn) -> str:
    names = LIMITS[field][2]
    if names and value - LIMITS[field][0] < len(names) and draw(st.booleans()):  # 7: no name
        name = names[value - LIMITS[field][0]]
        return draw(st.sampled_from([name, name.upper(), name.title()]))
    return str(value)


SHAPES = ["*", "*/s", "a", "a-b", "a-b/s", "a/s"]


@st.composite
def _item(draw: st.DrawFn, field: int, shapes: tuple[str, ...] = tuple(SHAPES)) -> str:
    low, high, _ = LIMITS[field]
    if field == 2:
        high = 28  # keep every expression able to fire; 29-31 come in _dom below
    shape = draw(st.sampled_from(shapes))
    step = draw(st.integers(1, high - low + 5))  # a step larger than the range is valid
    a = draw(st.integers(low, high))
    b = draw(st.integers(a, high))
    if shape == "*":
        return "*"
    if shape == "*/s":
        return f"*/{step}"
    first = _value_text(field, a, draw)
    if shape == "a":
        return first
    if shape == "a/s":
        return f"{first}/{step}"
    span = f"{first}-{_value_text(field, b, draw)}"
    return span if shape == "a-b" else f"{span}/{step}"


#: Each field's list of items, built once (a strategy built per draw costs more than the draw).
_FIELD_ITEMS = [st.lists(_item(field), min_size=1, max_size=3) for field in range(5)]
#: A minute or hour field whose first item is not '*' or '*/s': a fixed-time job's (`_fixed`).
_FIXED_FIELD = [
    st.tuples(
        _item(field, tuple(s for s in SHAPES if not s.startswith("*"))),
        st.lists(_item(field), max_size=2),
    ).map(lambda first_rest: [first_rest[0], *first_rest[1]])
    for field in (0, 1)
]


@st.composite
def expressions(draw: st.DrawFn, fixed: bool = False) -> str:
    """A cron expression; with `fixed`, only those `_fixed` accepts (drawn, not filtered: most
    of the others would be thrown away)."""
    fields = []
    for field in range(5):
        items = draw(_FIXED_FIELD[field] if fixed and field < 2 else _FIELD_ITEMS[field])
        if field == 2 and draw(st.integers(0, 9)) == 0:
            items.append(str(draw(st.integers(29, 31))))
        fields.append(",".join(items))
    return " ".join(fields)


# -- the independent model -------------------------------------------------------------------


def _number(field: int, text: str) -> int:
    low, _, names = LIMITS[field]
    return int(text) if text.isdigit() else names.index(text.lower()) + low


def _field_set(field: int, text: str) -> set[int]:
    low, high, _ = LIMITS[field]
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (_number(field, v) for v in span.split("-"))
        else:
            first = _number(field, span)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    if field == 4 and 7 in values:
        values = (values - {7}) | {0}
    return values


@functools.lru_cache(maxsize=64)
def _fields(expression: str) -> tuple[list[set[int]], bool]:
    """The five field sets, and whether day-of-month or day-of-week starts with '*' (both
    must then match, else either). Worked out once per expression, not once per minute."""
    fields = expression.split()
    sets = [_field_set(i, f) for i, f in enumerate(fields)]
    return sets, fields[2].startswith("*") or fields[4].startswith("*")


def _matches(expression: str, wall: datetime) -> bool:
    sets, star = _fields(expression)
    if wall.minute not in sets[0] or wall.hour not in sets[1] or wall.month not in sets[3]:
        return False
    day_ok, weekday_ok = wall.day in sets[2], (wall.isoweekday() % 7) in sets[4]
    if star:
        return day_ok and weekday_ok
    return day_ok or weekday_ok


def _fixed(expression: str) -> bool:
    minute, hour = expression.split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


def model(expression: str, tz: ZoneInfo, begin: datetime, until: datetime) -> list[datetime]:
    """Every UTC minute in [begin, until) whose wall time matches (a fixed-time job: only in a
    repeated hour's first pass), plus a fixed-time job's gap wall times, at the jump."""
    found: set[datetime] = set()
    moment = begin
    previous = (moment - MINUTE).astimezone(tz)
    while moment < until:
        local = moment.astimezone(tz)
        jump = local.utcoffset() - previous.utcoffset()  # type: ignore[operator]
        if jump > timedelta(0) and _fixed(expression):  # the wall times of a gap end here
            wall = local.replace(tzinfo=None) - jump
            while wall < local.replace(tzinfo=None):
                if _matches(expression, wall):
                    found.add(moment)
                wall += MINUTE
        second_pass = local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()
        if _matches(expression, local.replace(tzinfo=None)) and not (
            second_pass and _fixed(expression)
        ):
            found.add(moment)
        previous, moment = local, moment + MINUTE
    return sorted(found)


# -- the test ----------------------------------------------------------------------------------


def _planned(expression: str, zone: str, begin: datetime, until: datetime) -> list[datetime]:
    text = f"""
timezone: {zone}
providers:
  lvb: {{appid: 1234, key: "${{LVB_KEY}}"}}
recordings:
  - {{name: r, channel_id: c, cron: "{expression}", duration: 1m}}
"""
    config = parse_config(text, "t.yaml", env={"LVB_KEY": "k"})
    found = windows(config.recordings[0], config.timezone, begin, until)
    return [s for s, _ in found if begin <= s]


def _cronsim(expression: str, tz: ZoneInfo, begin: datetime, until: datetime) -> list[datetime]:
    found: set[datetime] = set()
    for moment in CronSim(expression, (begin - timedelta(seconds=1)).astimezone(tz)):
        instant = moment.astimezone(UTC)
        if instant >= until:
            break
        if instant >= begin:
            found.add(instant)
    return sorted(found)


@settings(max_examples=300, deadline=None)
@given(
    expression=expressions(),
    zone=st.sampled_from(sorted(ZONES)),
    which=st.integers(0, 1),
    offset_min=st.integers(-30 * 60, 6 * 60),
    hours=st.integers(1, 36),
)
def test_window_starts_are_debian_crons(
    expression: str, zone: str, which: int, offset_min: int, hours: int
) -> None:
    tz = ZoneInfo(zone)
    change = ZONES[zone][which].replace(tzinfo=tz)
    begin = (change + timedelta(minutes=offset_min)).astimezone(UTC)
    until = begin + timedelta(hours=hours)
    expected = model(expression, tz, begin, until)
    assume(expected or hours > 30)  # mostly ranges with something in them
    planned = _planned(expression, zone, begin, until)
    assert planned == expected
    # cronsim reads `5-5/2` as `5/2`, unlike cron: the planner hands it `5` (cron.validate)
    theirs = _cronsim(validate(expression), tz, begin, until)
    if theirs != expected:
        # cronsim 2.8's other known deviation: stepping a wildcard job's hours in a zone whose
        # offset changes by half an hour skips wall times (the planner steps fixed offsets)
        assert zone == "Australia/Lord_Howe" and not _fixed(expression)
        event("cronsim deviates from cron across Lord Howe's half-hour change")
    else:
        assert planned == theirs
    for start in planned:  # the invariant, stated directly
        local = start.astimezone(tz)
        moved = local.utcoffset() != (start - MINUTE).astimezone(tz).utcoffset()
        assert _matches(expression, local.replace(tzinfo=None)) or (moved and _fixed(expression))


def test_the_model_agrees_with_the_hand_written_instants() -> None:
    """The model itself, on cron-semantics.md's reproducers (Debian cron's answers)."""
    ny = ZoneInfo("America/New_York")

    def run(expression: str, begin: str, hours: int) -> list[str]:
        start = datetime.fromisoformat(begin).astimezone(UTC)
        found = model(expression, ny, start, start + timedelta(hours=hours))
        return [f"{s.astimezone(ny):%m-%d %H:%M%z}" for s in found]

    assert run("0 0 * * *", "2027-03-13T12:00-05:00", 48) == [
        "03-14 00:00-0500",
        "03-15 00:00-0400",
    ]
    assert run("30 2 * * *", "2027-03-14T00:00-05:00", 12) == ["03-14 03:00-0400"]
    assert run("*/20 2 * * *", "2027-03-14T00:00-05:00", 12) == []
    assert run("0 * * * *", "2027-11-07T00:30-04:00", 3) == [
        "11-07 01:00-0400",
        "11-07 01:00-0500",
        "11-07 02:00-0500",
    ]
    assert run("30 1 * * *", "2027-11-07T00:00-04:00", 4) == ["11-07 01:30-0400"]


# -- the fast path for fixed-time jobs, against cronsim stepping on its own ---------------------


def _cronsim_starts(
    expression: str, tz: ZoneInfo, begin: datetime, until: datetime
) -> tuple[list[datetime], datetime | None]:
    """cron.starts() as it was before the fast path: every time from cronsim's iterator."""
    found: list[datetime] = []
    for moment in CronSim(expression, (begin - timedelta(seconds=1)).astimezone(tz)):
        instant = moment.astimezone(UTC)
        if instant >= until:
            return found, instant
        if instant >= begin and (not found or instant != found[-1]):
            found.append(instant)
    return found, None


@settings(max_examples=400, deadline=None)
@given(
    expression=expressions(fixed=True),
    zone=st.sampled_from([*sorted(ZONES), "UTC"]),
    which=st.integers(0, 1),
    offset_min=st.integers(-40 * 24 * 60, 3 * 24 * 60),
    hours=st.integers(0, 24 * 10),
)
# a time in each change's skipped or repeated hour, from just before it
@example(expression="30 2 * * *", zone="America/New_York", which=0, offset_min=-180, hours=30)
@example(expression="30 1 * * *", zone="America/New_York", which=1, offset_min=-180, hours=30)
@example(expression="*/20 1 * * *", zone="America/New_York", which=1, offset_min=-5, hours=3)
@example(expression="45 1 * * *", zone="Europe/London", which=0, offset_min=-60, hours=3)
@example(expression="10,50 2 * * *", zone="Australia/Lord_Howe", which=1, offset_min=-60, hours=3)
@example(expression="40 1 * * *", zone="Australia/Lord_Howe", which=0, offset_min=-60, hours=3)
def test_fixed_time_fast_path_is_cronsim(
    expression: str, zone: str, which: int, offset_min: int, hours: int
) -> None:
    """Every instant cron.starts() gives a fixed-time job, and its next one after the range,
    are cronsim's own: over ranges from an hour to ten days, across DST changes (Lord Howe's
    half hour included) and in months where a job fires rarely (29-31)."""
    canonical = validate(expression)
    assume(_fixed(canonical))
    tz = ZoneInfo(zone)
    change = ZONES.get(zone, ZONES["Europe/London"])[which].replace(tzinfo=tz)
    begin = (change + timedelta(minutes=offset_min)).astimezone(UTC)
    until = begin + timedelta(hours=hours)
    assert starts(expression, tz, begin, until) == _cronsim_starts(canonical, tz, begin, until)


@pytest.mark.parametrize(
    "expression",
    ["0 0 29 2 *", "30 2 31 * *", "15 3 29 feb mon", "0 12 1 jan *", "59 23 31 dec *"],
)
def test_a_job_that_fires_years_apart_hands_over_to_cronsim(expression: str) -> None:
    """Past the days the fast path lays out (cron.FAST_DAYS), cronsim steps on: a Feb 29 job's
    next time is years away, and still cronsim's."""
    tz = ZoneInfo("America/New_York")
    begin = datetime(2027, 3, 1, tzinfo=UTC)
    for until in (begin + timedelta(days=2), begin + timedelta(days=3 * 365)):
        assert starts(expression, tz, begin, until) == _cronsim_starts(
            validate(expression), tz, begin, until
        )
