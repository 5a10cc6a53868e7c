"""Standard 5-field crontab expressions on top of APScheduler 3's CronTrigger.

Two differences from cron are corrected here:
- APScheduler 3.x numbers weekdays from Monday=0, unlike cron (Sunday=0, also 7), so its own
  `CronTrigger.from_crontab("0 20 * * 1-5")` fires Tuesday to Saturday (apscheduler#286, fixed
  only in 4.x). We translate the day-of-week field to weekday *names*, which both agree on.
- When both day-of-month and day-of-week are restricted, cron fires when *either* matches
  (`0 20 1 * 1`: the 1st and every Monday); CronTrigger requires both. We OR two triggers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import tzinfo
from typing import ClassVar

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.fields import BaseField

_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _shared_fields(field_class: type[BaseField]) -> Callable[..., BaseField]:
    """`field_class(name, exprs, is_default)`, one instance per distinct argument triple.

    A field is its parsed expressions and is never changed after it is made (CronTrigger only
    reads it), so triggers can share one: a 10,000-recording file builds ~30,000 fields from a
    few hundred distinct ones, and parsing them was most of the cost of its cron triggers. An
    invalid expression raises each time (exceptions are not cached)."""

    @functools.lru_cache(maxsize=4096)
    def make(name: str, exprs: str | int, is_default: bool = False) -> BaseField:
        return field_class(name, exprs, is_default)

    return make


class _CronTrigger(CronTrigger):  # type: ignore[misc]
    """APScheduler's CronTrigger, computing exactly the same times, with shared fields."""

    __slots__ = ()
    FIELDS_MAP: ClassVar[dict[str, Callable[..., BaseField]]] = {
        name: _shared_fields(cls) for name, cls in CronTrigger.FIELDS_MAP.items()
    }


def _weekday(token: str) -> int:
    token = token.strip().lower()
    if token in _NAMES:
        return _NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ValueError(f"{token!r} is not a weekday (0-7 or sun..sat)")


def _cron_weekdays(field: str) -> list[int]:
    """Expand a cron day-of-week field into the sorted weekdays (0=Sunday) it selects."""
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1 or (step_text and not step_text.isdigit()):
            raise ValueError(f"bad step in day-of-week {part!r}")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            low, high = span.split("-", 1)
            first = _weekday(low)
            last = 7 if high.strip() == "7" else _weekday(high)
            if last < first:
                raise ValueError(f"day-of-week range {span!r} runs backwards")
        else:
            first = last = _weekday(span)
            if step_text:
                last = 6
        days.update(day % 7 for day in range(first, last + 1, step))
    return sorted(days)


@functools.lru_cache(maxsize=4096)
def cron_trigger(expression: str, timezone: tzinfo) -> BaseTrigger:
    """Build a CronTrigger for a standard crontab `expression`; ValueError if it is not one.

    Cached: validating a file and planning it build the same triggers, and the daemon re-plans
    every `replan_every` and on each reload. Triggers are never mutated (APScheduler computes
    fire times without changing the trigger), so sharing one is safe."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; cron needs 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    minute, hour, day, month, dow = fields
    weekdays = "*" if dow == "*" else ",".join(_NAMES[d] for d in _cron_weekdays(dow))

    def trigger(day: str, day_of_week: str) -> CronTrigger:
        return _CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=timezone,
        )

    if day != "*" and dow != "*":
        return OrTrigger([trigger(day, "*"), trigger("*", weekdays)])
    return trigger(day, weekdays)
