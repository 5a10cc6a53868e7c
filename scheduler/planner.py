"""Planning: a pure function of (config, now) -> the provider calls to make.

No clock, no I/O. A window is [start, end) in absolute time. Real-time windows are cut into
back-to-back chunks of at most 30 minutes, each sent at its own start; scheduled windows into
tasks of at most one day, each created `lead` before its start.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from scheduler.calls import Call
from scheduler.config import CST, REALTIME_MAX_CHUNK, SCHEDULED_MAX_CHUNK, Config, Recording
from scheduler.cron import cron_trigger
from scheduler.providers import lvb

Window = tuple[datetime, datetime]


def chunk_window(
    start: datetime,
    end: datetime,
    chunk: timedelta,
    min_chunk: timedelta,
    limit: timedelta = REALTIME_MAX_CHUNK,
) -> list[Window]:
    """Tile [start, end) with pieces of length `chunk`; a last piece shorter than `min_chunk`
    is merged into the one before it when the merged piece stays within `limit`."""
    pieces: list[Window] = []
    cursor = start
    while cursor < end:
        piece_end = min(cursor + chunk, end)
        pieces.append((cursor, piece_end))
        cursor = piece_end
    if len(pieces) >= 2:
        last_start, last_end = pieces[-1]
        prev_start, _ = pieces[-2]
        if last_end - last_start < min_chunk and last_end - prev_start <= limit:
            pieces[-2:] = [(prev_start, last_end)]
    return pieces


def windows(rec: Recording, tz: ZoneInfo, since: datetime, until: datetime) -> list[Window]:
    """The recording's windows that are still open at `since` and start before `until`."""
    if rec.start is not None:
        candidates: list[datetime] = [rec.start]
    else:
        candidates = sorted(set(_cron_starts(rec, tz, since - rec.duration, until)))
    return [(s, s + rec.duration) for s in candidates if s + rec.duration > since and s < until]


def _cron_starts(
    rec: Recording, tz: ZoneInfo, begin: datetime, until: datetime
) -> Iterator[datetime]:
    assert rec.cron is not None
    for start in _fire_times(cron_trigger(rec.cron, tz), begin, until):
        day = start.astimezone(tz).date()
        if day in rec.skip_dates:
            continue
        if (rec.from_date and day < rec.from_date) or (rec.until_date and day > rec.until_date):
            continue
        yield start
    if not rec.extra_dates:
        return
    minute, hour = rec.cron.split()[:2]
    times_of_day = CronTrigger(minute=minute, hour=hour, timezone=tz)
    for day in sorted(rec.extra_dates):
        midnight = datetime.combine(day, time(0), tzinfo=tz)
        for start in _fire_times(times_of_day, midnight, midnight + timedelta(days=1)):
            if begin <= start < until and start.astimezone(tz).date() == day:
                yield start


def _fire_times(trigger: BaseTrigger, begin: datetime, until: datetime) -> Iterator[datetime]:
    """The trigger's fire times in [begin, until); in order, except that an OrTrigger's come
    member by member (callers only use the set)."""
    if isinstance(trigger, OrTrigger):
        # Stepping an OrTrigger yields the union of its members' times, but recomputes every
        # member's next time at each step: walk each member once instead.
        for member in trigger.triggers:
            yield from _fire_times(member, begin, until)
        return
    moment: datetime | None = trigger.get_next_fire_time(None, begin)
    while moment is not None and moment < until:
        yield moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))


def recording_calls(config: Config, rec: Recording, now: datetime, until: datetime) -> list[Call]:
    provider = config.providers[rec.provider]
    calls: list[Call] = []
    lead = rec.lead if rec.mode == "scheduled" else timedelta(0)
    limit = REALTIME_MAX_CHUNK if rec.mode == "realtime" else SCHEDULED_MAX_CHUNK
    target = lvb.target(provider, rec.channel_id)
    for window_start, window_end in windows(rec, config.timezone, now, until + lead):
        pieces = chunk_window(window_start, window_end, rec.chunk, rec.min_chunk, limit)
        stamp = window_start.astimezone(CST).isoformat()
        for index, (start, end) in enumerate(pieces, 1):
            if end <= now or start - lead >= until:
                continue
            calls.append(
                Call(
                    key=f"{rec.name}/{stamp}/{index}/{lvb.START}",
                    at=start - lead,
                    start=start,
                    deadline=end,
                    recording=rec.name,
                    provider=provider.name,
                    action=lvb.START,
                    target=target,
                    params=lvb.start_params(provider, rec, start, end),
                    chunk=index,
                    chunks=len(pieces),
                    window_start=window_start,
                    window_end=window_end,
                )
            )
    return calls


def plan(config: Config, now: datetime, horizon: timedelta | None = None) -> list[Call]:
    """Every call due before `now + horizon` whose chunk is not over at `now`, sorted by time.

    A call whose instant has passed but whose chunk is still open is included (it is sent late,
    with its original end_time); one whose chunk is over is not.
    """
    if now.tzinfo is None:
        raise ValueError("plan() needs an aware `now`")
    until = now + (config.daemon.horizon if horizon is None else horizon)
    calls = [c for rec in config.recordings for c in recording_calls(config, rec, now, until)]
    return sorted(calls, key=lambda c: (c.at, c.key))
