"""Standard 5-field crontab expressions, planned as Debian cron runs them.

The arithmetic is cronsim's, whose stated goal is Debian (Vixie) cron compatibility, DST
included; this module only checks the grammar first, so that an error names the field and
the value, and refuses the non-standard extensions cronsim also accepts (`L`, `W`, `#`, `?`).

The rules, all Debian cron's (`entry.c` parses, `cron.c` matches):
- a field is a comma list of `*` or `a` or `a-b`, each with an optional `/step`; `a` and `b`
  are numbers or, in the month and day-of-week fields, names (`jan`, `mon`, any case), mixable
  (`1-dec`, `mon-7`). A step larger than its range is allowed (`*/30` hours: 00:00 only);
  `a/step` means `a-max/step`. Day-of-week `0` and `7` are both Sunday.
- if the day-of-month or the day-of-week field *starts with* `*` (DOM_STAR/DOW_STAR), a day
  must match both; otherwise either (`0 10 1 * 1`: the 1st and every Monday).
- DST: a *fixed-time* job (neither the minute nor the hour field starts with `*`) runs once a
  day: a wall time the spring-forward change skips runs right after the jump, one the
  fall-back change repeats runs in its first pass. Any other job follows the wall clock: it
  runs in both passes of a repeated hour and not at all in a skipped one.

Pure: no clock, no I/O, no scheduler.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from cronsim import CronSim, CronSimError

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
#: name, lowest, highest, the names (index + lowest is the value)
_FIELDS: tuple[tuple[str, int, int, list[str]], ...] = (
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day-of-month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9a-z]*))?", re.IGNORECASE)
_SECOND = timedelta(seconds=1)


def _value(field: int, text: str) -> int:
    name, low, high, names = _FIELDS[field]
    if text.isdigit():
        value = int(text)
        if field == 4 and value > high:
            raise ValueError(f"{text!r} is not a weekday (0-7 or sun..sat)")
        if value > high:
            raise ValueError(f"{name} {value} is higher than the maximum ({high})")
        if value < low:
            raise ValueError(f"{name} {value} is lower than the minimum ({low})")
        return value
    if text.lower() in names:
        return names.index(text.lower()) + (1 if field == 3 else 0)
    if field == 4:
        raise ValueError(f"{text!r} is not a weekday (0-7 or sun..sat)")
    if field == 3:
        raise ValueError(f"{text!r} is not a month (1-12 or jan..dec)")
    raise ValueError(f"{text!r} is not a {name} (a number {low}-{high})")


def _check_field(field: int, text: str) -> str:
    """The field as cronsim should read it; ValueError if it is not cron."""
    name = _FIELDS[field][0]
    items = []
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ValueError(
                f"{name} {item!r} is not cron: expected *, a or a-b, each with an optional "
                "/step (L, W, # and ? are not standard cron)"
            )
        _star, first, last, step = match.groups()
        if step is not None and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"bad step in {name} {item!r} (a whole number from 1)")
        if first is not None and last is not None:
            low, high = _value(field, first), _value(field, last)
            if high < low:
                raise ValueError(f"{name} range {item!r} runs backwards")
            if high == low:  # cronsim 2.8 reads `5-5/2` as `5/2` (5 to the maximum): say `5`
                item = first
        elif first is not None:
            _value(field, first)
        items.append(item)
    return ",".join(items)


@functools.lru_cache(maxsize=8192)
def validate(expression: str) -> str:
    """`expression` as cronsim is to read it, if it is a standard 5-field cron that can fire;
    ValueError saying why not.

    Cached: checking a file and planning it validate the same expressions."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; cron needs 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    canonical = " ".join(_check_field(index, text) for index, text in enumerate(fields))
    try:
        _parsed(canonical)
    except CronSimError as exc:  # the grammar is fine: a day that is in none of the months
        raise ValueError(f"it never fires ({exc}: no such day in the months given)") from None
    return canonical


def is_fixed_time(expression: str) -> bool:
    """Debian cron's test: neither the minute nor the hour field starts with `*`."""
    minute, hour = expression.split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


def starts(
    expression: str, tz: tzinfo, begin: datetime, until: datetime
) -> tuple[list[datetime], datetime | None]:
    """The instants (in UTC, sorted, distinct) at which `expression` fires in [begin, until)
    with its fields read in `tz`, and its first instant at or after `until` (None: never).

    Independent of where the search starts: a fixed-time job's fire instant in a fall-back
    hour is its first pass, whichever pass `begin` is in, and is dropped here if before it."""
    found: list[datetime] = []
    for moment in _iterate(validate(expression), tz, begin):
        if moment >= until:
            return found, moment
        if moment >= begin and (not found or moment != found[-1]):
            found.append(moment)
    return found, None


def _iterate(expression: str, tz: tzinfo, begin: datetime) -> Iterator[datetime]:
    """cronsim's fire times from `begin` on (at or after it, to the second), as UTC instants.

    cronsim yields times strictly after its start, and a fixed-time job's times in wall-clock
    order, which can map to an instant before `begin` (see starts())."""
    start = begin.astimezone(UTC)
    if start.microsecond:
        start += timedelta(microseconds=1_000_000 - start.microsecond)
    if not is_fixed_time(expression):
        yield from _by_wall_clock(expression, tz, start)
        return
    # cronsim yields times after its start: one second before `begin` (a whole second) is
    # enough even from a fall-back hour's second pass, whose wall times it reads as the first.
    yield from _fixed_time(expression, tz, (start - _SECOND).astimezone(tz))


#: Days a fixed-time job's times are laid out for by `_fixed_time` before it hands over to
#: cronsim: a plan's range plus the gap to a weekly or monthly job's next time, in one day's
#: arithmetic each. Beyond it (a job on Feb 29, say) cronsim steps on.
FAST_DAYS = 400


def _fixed_time(expression: str, tz: tzinfo, start: datetime) -> Iterator[datetime]:
    """What `_cronsim(expression, start)` yields for a fixed-time job, as UTC instants, in a
    fraction of its time: cronsim's own field sets and day test (`match_day`), its wall-time
    order, and its DST rule, applied a day at a time instead of stepping second, minute, hour
    and day. The rule (cronsim's `__next__`, Debian cron's): a matching wall time is read in
    its first pass (fold=0); one the spring-forward gap skips moves a minute at a time to the
    first wall time that exists. tests/test_cron_property.py holds it to cronsim itself.

    `start` is aware in `tz` and a whole second; times after its wall time are yielded."""
    fields, times = _parsed(expression)
    day = start.date()
    for _ in range(FAST_DAYS):
        if day.month in fields.months and fields.match_day(day):
            year, month, dom = day.year, day.month, day.day
            for hour, minute in times:
                # aware in `tz`, built at once (replace() costs twice a conversion); against
                # `start`, in the same zone, it compares as the wall time
                wall = datetime(year, month, dom, hour, minute, 0, 0, tz)
                if wall > start:
                    yield _first_real(wall, tz)
        day += _DAY
    # cronsim steps on from the last second of the days laid out (it reads the wall time)
    resume = datetime(day.year, day.month, day.day, tzinfo=tz) - _SECOND
    yield from _cronsim(expression, resume)


_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)


def _first_real(wall: datetime, tz: tzinfo) -> datetime:
    """The instant (UTC) of `wall` (in `tz`), first pass; in a spring-forward gap, of the
    first minute after it that exists (cronsim's `is_imaginary` loop)."""
    while True:
        instant = wall.astimezone(UTC)
        if instant.astimezone(tz) == wall:  # same zone: compares the wall times
            return instant
        wall += _MINUTE  # wall-clock arithmetic: the same zone, fold 0


@functools.lru_cache(maxsize=8192)
def _parsed(expression: str) -> tuple[CronSim, tuple[tuple[int, int], ...]]:
    """cronsim's reading of an expression (its field sets and day test) and its times of day
    in order; CronSimError if no day can match. Built once per expression (validate() builds
    it): parsing is most of what a CronSim costs."""
    fields = CronSim(expression, datetime(2000, 1, 1))
    return fields, tuple(sorted((h, m) for h in fields.hours for m in fields.minutes))


def _cronsim(expression: str, start: datetime) -> Iterator[datetime]:
    search = CronSim(expression, start)
    while True:
        try:
            moment = next(search)
        except StopIteration:  # no fire time in the next 50 years
            return
        yield moment.astimezone(UTC)


def _by_wall_clock(expression: str, tz: tzinfo, start: datetime) -> Iterator[datetime]:
    """A wildcard job's fire instants from `start` on: every instant whose wall time matches.

    Between two offset changes the zone is a fixed offset, which cronsim steps exactly; across
    a change its own stepping of a zone can skip wall times (cronsim 2.8, stepping an hour at
    a time from 01:00 on Lord Howe's fall-back day, never sees 02:00-02:29 +10:30)."""
    segment = start
    for year in range(start.year, start.year + 51):  # cronsim gives up after 50 years too
        for change in [*_changes(tz, year), datetime(year + 1, 1, 1, tzinfo=UTC)]:
            if change <= segment:
                continue
            offset = segment.astimezone(tz).utcoffset() or timedelta(0)
            fixed = timezone(offset)
            for moment in _cronsim(expression, (segment - _SECOND).astimezone(fixed)):
                if moment >= change:
                    break
                yield moment
            segment = change


@functools.lru_cache(maxsize=512)
def _changes(tz: tzinfo, year: int) -> tuple[datetime, ...]:
    """The instants (UTC, to the second) in `year` at which `tz`'s UTC offset changes."""
    found = []
    moment, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(tz).utcoffset()
    while moment < end:
        step = moment + timedelta(hours=1)  # no zone changes twice within an hour
        if step.astimezone(tz).utcoffset() != offset:
            low, high = moment, step  # the change is in (low, high]
            while high - low > _SECOND:
                middle = low + (high - low) / 2
                middle -= timedelta(microseconds=middle.microsecond)
                if middle.astimezone(tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high)
            offset = step.astimezone(tz).utcoffset()
        moment = step
    return tuple(found)


def fixed_offset(tz: tzinfo, begin: datetime, end: datetime) -> timedelta | None:
    """`tz`'s one UTC offset from a day before `begin` to a day after `end`, or None when it
    changes in between (a plan's table need not look for DST notes then)."""
    low, high = begin - timedelta(days=1), end + timedelta(days=1)
    years = range(low.year, high.year + 1)
    if any(low <= change <= high for year in years for change in _changes(tz, year)):
        return None
    return begin.astimezone(tz).utcoffset()


def day_starts(expression: str, tz: tzinfo, day: date) -> list[datetime]:
    """The instants of `day` (in `tz`) at the expression's minute and hour fields only: its
    day, month and weekday fields are ignored (`extra_dates`). Same DST rules as starts()."""
    minute, hour = expression.split()[:2]
    times = f"{minute} {hour} * * *"
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    found, _ = starts(times, tz, midnight - timedelta(hours=3), midnight + timedelta(hours=27))
    return [s for s in found if s.astimezone(tz).date() == day]


def dst_note(expression: str, tz: tzinfo, start: datetime) -> str:
    """Why a fire instant is where it is, when a DST change decided it; "" otherwise."""
    local = start.astimezone(tz)
    before = (start - timedelta(microseconds=1)).astimezone(tz)
    jump = (local.utcoffset() or timedelta()) - (before.utcoffset() or timedelta())
    if jump > timedelta(0) and is_fixed_time(expression):
        gap_start = local.replace(tzinfo=None) - jump
        matching = _first_match(expression, gap_start, local.replace(tzinfo=None))
        if matching is not None:
            return f"DST: {matching:%H:%M} does not exist on {local:%Y-%m-%d}, run at the jump"
    twin = local.replace(fold=1 - local.fold)
    if twin.utcoffset() != local.utcoffset():  # a wall time the fall-back change repeats
        if is_fixed_time(expression):
            return f"DST: {local:%H:%M} occurs twice, recorded once (first pass)"
        return f"DST: {local:%H:%M} occurs twice, {'second' if local.fold else 'first'} pass"
    return ""


def _first_match(expression: str, begin: datetime, until: datetime) -> datetime | None:
    """The first naive wall time in [begin, until) that the expression's fields match."""
    moment = next(CronSim(validate(expression), begin - _SECOND))
    return moment if moment < until else None


@functools.lru_cache(maxsize=4096)
def cron_trigger(expression: str, tz: tzinfo) -> CronSchedule:
    """The expression's schedule in `tz`; ValueError if it is not a standard cron."""
    return CronSchedule(validate(expression), tz)


class CronSchedule:
    """One expression in one zone, answering as an APScheduler trigger would."""

    __slots__ = ("expression", "tz")

    def __init__(self, expression: str, tz: tzinfo) -> None:
        self.expression, self.tz = expression, tz

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
        """The first fire time at or after `now`, in the zone (`previous` is not used)."""
        _, moment = starts(self.expression, self.tz, now, now)
        return None if moment is None else moment.astimezone(self.tz)
