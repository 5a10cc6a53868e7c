"""Planning: a pure function of (config, now) -> the provider calls to make.

No clock, no I/O. A window is [start, end) in absolute time. Real-time windows are cut into
back-to-back chunks of at most 30 minutes, each sent at its own start; scheduled windows into
tasks of at most one day, each created `lead` before its start.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduler import cron, live_plan, web_plan
from scheduler.calls import Call, LvbCall
from scheduler.chunks import Window, chunk_window
from scheduler.config import (
    CST,
    REALTIME_MAX_CHUNK,
    SCHEDULED_MAX_CHUNK,
    Config,
    LvbProvider,
    Provider,
    Recording,
)
from scheduler.config_live import LiveProvider
from scheduler.config_web import WebProvider
from scheduler.providers import lvb

#: More than any day's length and any zone's offset change: a day this far from a range has no
#: time in it.
_FAR = timedelta(days=2)


@dataclass
class _Memo:
    """What planning one recording computed last time, kept for the next plan: re-planning
    (every `replan_every`, on each reload) asks again for nearly the same range, and cron fire
    times and Call objects are most of a plan's cost. Keyed by the recording, its provider and
    the zone, all compared by value, so an edited recording is planned afresh."""

    begin: datetime | None = None  # cron starts were computed for [begin, until)
    until: datetime | None = None
    starts: list[datetime] = field(default_factory=list)
    nexts: list[datetime | None] | None = None  # the cron's first start at/after `until`
    #: (window start, its fold) -> the window's chunks. The fold is part of the key because
    #: datetimes in one zone compare equal across a DST fold (PEP 495) though they are an hour
    #: apart.
    calls: dict[tuple[datetime, int], list[Call]] = field(default_factory=dict)


#: Memos are found by the recording's and its provider's names and the zone (strings hash
#: once, ZoneInfo by identity) and used only if the recording and provider are equal by value
#: too: hashing each 20-field Recording three times per plan was a tenth of a reload's plan.
_MemoKey = tuple[str, str | None, ZoneInfo]
_Held = tuple[Recording, Provider | None, _Memo]
_memos: dict[_MemoKey, _Held] = {}  # filled by the plan being made
_previous_memos: dict[_MemoKey, _Held] = {}  # from the plan before; dropped at its end
_MAX_MEMOS = 200_000  # only windows()/recording_calls() called outside plan() could pass it


def _memo(rec: Recording, provider: Provider | None, tz: ZoneInfo) -> _Memo:
    key = (rec.name, None if provider is None else provider.name, tz)
    held = _memos.get(key)
    if held is not None and _same(held, rec, provider):
        return held[2]
    held = _previous_memos.pop(key, None)
    memo = held[2] if held is not None and _same(held, rec, provider) else _Memo()
    if len(_memos) >= _MAX_MEMOS:
        _memos.clear()
    _memos[key] = (rec, provider, memo)
    return memo


def _same(held: _Held, rec: Recording, provider: Provider | None) -> bool:
    """Whether a memo was made for this recording and provider (a reload hands back the
    unchanged recordings themselves: `is` settles most)."""
    return (held[0] is rec or held[0] == rec) and (held[1] is provider or held[1] == provider)


def windows(rec: Recording, tz: ZoneInfo, since: datetime, until: datetime) -> list[Window]:
    """The recording's windows that are still open at `since` and start before `until`."""
    if rec.start is not None:
        candidates: list[datetime] = [rec.start.astimezone(UTC)]
    else:
        candidates = _cron_window_starts(rec, tz, since - rec.duration, until)
    return [(s, s + rec.duration) for s in candidates if s + rec.duration > since and s < until]


def _cron_window_starts(
    rec: Recording, tz: ZoneInfo, begin: datetime, until: datetime, memo: _Memo | None = None
) -> list[datetime]:
    """sorted(set(_cron_starts(rec, tz, begin, until))), reusing the starts computed for an
    earlier range that `begin` falls in: only what lies past that range's end is computed, and
    not even that when the cron's next start after it is known to be past `until`.

    Exact because every start is a whole second (cron has no seconds field) and a cron's
    first time at or after `begin` is its first at or after `begin` rounded up to the second:
    the starts in [begin, until) are the earlier ones at or after `begin` plus those from the
    earlier range's end on. Only taken when `begin` and `until` are not in `tz` itself, so that
    every comparison with a start (which is in `tz`) is between instants, not wall times."""
    # Instants from here on: window arithmetic (start + duration) on a zone's wall time would
    # stretch or shrink a window that crosses a DST change.
    begin, until = begin.astimezone(UTC), until.astimezone(UTC)
    memo = memo or _memo(rec, None, tz)
    b0, u0 = memo.begin, memo.until
    instants = begin.tzinfo is not tz and until.tzinfo is not tz
    if instants and b0 is not None and u0 is not None and b0 <= begin <= u0:
        kept = [s for s in memo.starts if begin <= s]
        if until > u0:
            nexts = memo.nexts
            if rec.extra_dates or nexts is None or any(t is not None and t < until for t in nexts):
                nexts = []
                kept = sorted(set(kept).union(_cron_starts(rec, tz, u0, until, nexts)))
            # else: the cron does not fire in [u0, until); its next start is still its next
            memo.until, memo.nexts = until, nexts
        memo.begin, memo.starts = begin, kept
        return [s for s in kept if s < until]
    nexts = []
    starts = sorted(set(_cron_starts(rec, tz, begin, until, nexts)))
    if instants:
        memo.begin, memo.until, memo.starts, memo.nexts = begin, until, starts, nexts
    else:
        memo.begin, memo.until, memo.starts, memo.nexts = None, None, [], None
    return starts


def _cron_starts(
    rec: Recording,
    tz: ZoneInfo,
    begin: datetime,
    until: datetime,
    nexts: list[datetime | None] | None = None,
) -> Iterator[datetime]:
    """The cron's window starts in [begin, until) (instants, in UTC), as Debian cron would run
    the job (cron.py: its DST rules included), less skip_dates and the days outside from /
    until, plus its times on extra_dates. Appends to `nexts` its first start at or after
    `until` (None: none ever), extra_dates aside."""
    assert rec.cron is not None
    found, after = cron.starts(rec.cron, tz, begin, until)
    if nexts is not None:
        nexts.append(after)
    if not (rec.skip_dates or rec.from_date or rec.until_date):
        yield from found  # no day to leave out: no start's date is needed
    else:
        yield from _in_dates(rec, tz, found)
    for day in sorted(rec.extra_dates):
        midnight = datetime.combine(day, time(0), tzinfo=tz)
        if midnight - _FAR > until or midnight + _FAR < begin:
            continue  # no time of this day can be in [begin, until)
        yield from (s for s in cron.day_starts(rec.cron, tz, day) if begin <= s < until)


def _in_dates(rec: Recording, tz: ZoneInfo, starts: list[datetime]) -> Iterator[datetime]:
    """The starts whose day (in `tz`) is not in skip_dates and is within from / until."""
    for start in starts:
        day = start.astimezone(tz).date()
        if day in rec.skip_dates:
            continue
        if (rec.from_date and day < rec.from_date) or (rec.until_date and day > rec.until_date):
            continue
        yield start


def _open_windows(
    config: Config, rec: Recording, memo: _Memo, now: datetime, until: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The windows not over at `now` that start before `until` + the recording's lead (the
    same test as windows())."""
    end_of_range = until + _lead(rec)
    if rec.start is not None:
        found = [rec.start.astimezone(UTC)]
    else:
        found = _cron_window_starts(rec, config.timezone, now - rec.duration, end_of_range, memo)
    for window_start in found:
        window_end = window_start + rec.duration
        if window_end > now and window_start < end_of_range:
            yield window_start, window_end


def _lead(rec: Recording) -> timedelta:
    return rec.lead if rec.mode == "scheduled" else timedelta(0)


def recording_calls(config: Config, rec: Recording, now: datetime, until: datetime) -> list[Call]:
    provider = config.providers[rec.provider]
    memo = _memo(rec, provider, config.timezone)
    lead = _lead(rec)
    calls: list[Call] = []
    reused: dict[tuple[datetime, int], list[Call]] = {}
    for window_start, window_end in _open_windows(config, rec, memo, now, until):
        key = (window_start, window_start.fold)
        chunks = memo.calls.get(key)
        if chunks is None:
            if isinstance(provider, WebProvider):
                chunks = web_plan.window_calls(provider, rec, window_start, window_end)
            elif isinstance(provider, LiveProvider):
                chunks = live_plan.window_calls(provider, rec, window_start, window_end)
            else:
                chunks = _window_calls(provider, rec, window_start, window_end, lead)
        reused[key] = chunks
        calls.extend(c for c in chunks if not (c.deadline <= now or c.start - lead >= until))
    memo.calls = reused
    return calls


#: Parameters that are the same in many calls (appid, interface, channel, formats) are kept
#: once: a large plan holds tens of thousands of calls of eight parameters each.
_SHARED_PARAMS: dict[lvb.Params, lvb.Params] = {}


def _shared(params: lvb.Params) -> lvb.Params:
    if len(_SHARED_PARAMS) > 100_000:
        _SHARED_PARAMS.clear()
    return _SHARED_PARAMS.setdefault(params, params)


def _chunks(rec: Recording, window_start: datetime, window_end: datetime) -> list[Window]:
    """An LVB window's chunks: at most 30 minutes real-time, one day scheduled."""
    limit = REALTIME_MAX_CHUNK if rec.mode == "realtime" else SCHEDULED_MAX_CHUNK
    return chunk_window(window_start, window_end, rec.chunk, rec.min_chunk, limit)


def _window_calls(
    provider: LvbProvider,
    rec: Recording,
    window_start: datetime,
    window_end: datetime,
    lead: timedelta,
) -> list[Call]:
    """Every chunk's call of one window (which of them are due is decided by the caller)."""
    target = lvb.target(provider, rec.channel_id)
    pieces = _chunks(rec, window_start, window_end)
    stamp = window_start.astimezone(CST).isoformat()
    before, after = (_shared(part) for part in lvb.recording_params(provider, rec))
    return [
        LvbCall(
            key=f"{rec.name}/{stamp}/{index}/{lvb.START}",
            at=start - lead,
            start=start,
            deadline=end,
            recording=rec.name,
            provider=provider.name,
            action=lvb.START,
            target=target,
            params=lvb.with_times(before, after, start, end),
            chunk=index,
            chunks=len(pieces),
            window_start=window_start,
            window_end=window_end,
        )
        for index, (start, end) in enumerate(pieces, 1)
    ]


#: A plan's order: by instant, then key (the key is unique, so the order is total), made by
#: two stable sorts, by key and then by instant: half the time of one sort by (at, key),
#: whose tuples are built per call and compared item by item.
_BY_KEY, _BY_AT = operator.attrgetter("key"), operator.attrgetter("at")


def plan(config: Config, now: datetime, horizon: timedelta | None = None) -> list[Call]:
    """Every call due before `now + horizon` whose chunk is not over at `now`, sorted by time.

    A call whose instant has passed but whose chunk is still open is included (it is sent late,
    with its original end_time); one whose chunk is over is not.
    """
    global _memos, _previous_memos
    if now.tzinfo is None:
        raise ValueError("plan() needs an aware `now`")
    until = now + (config.daemon.horizon if horizon is None else horizon)
    _previous_memos, _memos = _memos, {}
    try:
        calls = [c for rec in config.recordings for c in recording_calls(config, rec, now, until)]
    finally:
        _previous_memos = {}  # recordings this plan did not ask about: removed or changed
    calls.sort(key=_BY_KEY)
    calls.sort(key=_BY_AT)
    return calls


def summary(
    config: Config, now: datetime, horizon: timedelta | None = None
) -> tuple[int, datetime | None]:
    """`len(plan(config, now, horizon))` and the first call's instant, without building the
    LVB calls (their parameters and times are most of a plan's cost): `recsched check`'s
    one-line summary. Web and LIVE API 3.0 recordings are planned as plan() does."""
    if now.tzinfo is None:
        raise ValueError("summary() needs an aware `now`")
    until = now + (config.daemon.horizon if horizon is None else horizon)
    count, first = 0, None
    for rec in config.recordings:
        provider = config.providers[rec.provider]
        if isinstance(provider, LvbProvider):
            lead = _lead(rec)
            instants = [
                start - lead
                for window in _open_windows(config, rec, _Memo(), now, until)
                for start, end in _chunks(rec, *window)
                if not (end <= now or start - lead >= until)  # recording_calls' test
            ]
        else:
            instants = [c.at for c in recording_calls(config, rec, now, until)]
        count += len(instants)
        if instants:
            earliest = min(instants)
            first = earliest if first is None or earliest < first else first
    return count, first
