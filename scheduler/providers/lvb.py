"""The legacy LVB API (`fcgi.video.qcloud.com/common_access`): build and parse, no I/O.

Facts from Tencent's Live_Tape_Start page (cloud.tencent.com/document/api/267/9567): plain HTTP
GET; `t` is the request's expiry in UNIX seconds and `sign = md5(key + str(t))` as lowercase
hex; times are China Standard Time strings regardless of the host zone; the answer is `{"ret":
0, "message": "", "output": {"task_id": <uint64>}}` and the task id may exceed 2**53, so it is
kept as text.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

from scheduler.config import CST, LvbProvider, Recording
from scheduler.errors import OutcomeUnknown, PermanentError, TransientError

START = "Live_Tape_Start"
#: The calls recsched makes of this API (metrics declare one series each).
ACTIONS = (START,)
#: Param.n.task_sub_type per recording mode. [C]
SUB_TYPE = {"realtime": "1", "scheduled": "0"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_cst(moment: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` in China Standard Time, whatever zone `moment` carries."""
    if moment.tzinfo is UTC:
        return _format_utc(moment)  # the planner's instants: two per call it builds
    if moment.tzinfo is None:
        raise ValueError("refusing to format a naive datetime: its zone would be the host's")
    # TIME_FORMAT, written by isoformat (strftime costs twice as much: a plan formats two
    # times per call); seconds are truncated as strftime does. Years 1000-9999.
    return moment.astimezone(CST).isoformat(" ")[:19]


#: "MM:SS" for each second of an hour.
_MINUTE_SECOND = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
#: A UTC hour (days since year 1 * 24 + hour) -> its CST "YYYY-MM-DD HH:" ("" if the hour
#: has no one whole-hour offset in CST), as met.
_CST_HOURS: dict[int, str] = {}
_HOUR, _MICROSECOND = timedelta(hours=1), timedelta(microseconds=1)


def _format_utc(moment: datetime) -> str:
    """format_cst of a UTC instant, in a fifth of the time: through an hour in which CST is
    UTC + a whole number of hours (every hour since 1901), the minute and second are the
    instant's own and only the hour's text needs the zone, once per hour. A 48-hour plan of
    10,000 recordings formats 48,000 times, 13,500 distinct (a cache of whole texts missed on
    most of them)."""
    hour = moment.toordinal() * 24 + moment.hour
    prefix = _CST_HOURS.get(hour)
    if prefix is None:
        if len(_CST_HOURS) > 100_000:  # a daemon running for years
            _CST_HOURS.clear()
        prefix = _CST_HOURS[hour] = _hour_prefix(moment.replace(minute=0, second=0, microsecond=0))
    if not prefix:
        return moment.astimezone(CST).isoformat(" ")[:19]
    return prefix + _MINUTE_SECOND[moment.minute * 60 + moment.second]


def _hour_prefix(hour: datetime) -> str:
    """CST's "YYYY-MM-DD HH:" of the UTC hour starting at `hour`, if one whole-hour offset
    holds through it; else "" (Shanghai's local mean time before 1901)."""
    first, last = hour.astimezone(CST), (hour + _HOUR - _MICROSECOND).astimezone(CST)
    offset = first.utcoffset()
    if offset is None or offset != last.utcoffset() or offset % _HOUR:
        return ""
    return first.isoformat(" ")[:14]


def sign(key: str, t: int) -> str:
    """The request signature: lowercase hex md5 of the key followed by decimal `t`."""
    return hashlib.md5((key + str(t)).encode("utf-8"), usedforsecurity=False).hexdigest()


def expiry(now: datetime, ttl: timedelta) -> int:
    """`t`: the UNIX second (never milliseconds) after which the request is invalid."""
    return int(now.timestamp()) + int(ttl.total_seconds())


def target(provider: LvbProvider, channel_id: str, interface: str = START) -> str:
    return f"lvb:{provider.endpoint}:{provider.appid}:{channel_id}:{interface}"


Params = tuple[tuple[str, str], ...]
#: Where start_params() puts the channel and the two times, in every call's Params (their
#: wire order): `params[CHANNEL_AT][1]` is the channel id, without a dict of eight pairs.
CHANNEL_AT, START_TIME_AT, END_TIME_AT = 2, 3, 4


def start_params(provider: LvbProvider, rec: Recording, start: datetime, end: datetime) -> Params:
    """Every Live_Tape_Start parameter except `t` and `sign`, as raw (unencoded) text."""
    before, after = recording_params(provider, rec)
    return with_times(before, after, start, end)


def recording_params(provider: LvbProvider, rec: Recording) -> tuple[Params, Params]:
    """The parameters that are the same in every chunk of a recording: those before its
    times and those after them, in wire order."""
    before = (
        ("appid", str(provider.appid)),
        ("interface", START),
        ("Param.s.channel_id", rec.channel_id),
    )
    after = [
        ("Param.n.task_sub_type", SUB_TYPE[rec.mode]),
        ("Param.s.file_format", rec.file_format),
        ("Param.s.record_type", rec.record_type),
    ]
    if rec.path:
        after.append(("Param.s.path", rec.path))
    if rec.domain:
        after.append(("Param.s.domain", rec.domain))
    return before, tuple(after)


def with_times(before: Params, after: Params, start: datetime, end: datetime) -> Params:
    """One chunk's parameters: the recording's, with its start and end times between."""
    times = (("Param.s.start_time", format_cst(start)), ("Param.s.end_time", format_cst(end)))
    return before + times + after


def query(params: tuple[tuple[str, str], ...], key: str, t: int) -> str:
    """The signed query string, URL-encoded exactly once (t and sign after `interface`), as
    `urllib.parse.urlencode` writes it (tests/test_lvb_provider.py holds it to that). It is
    built at the instant of each send, and urlencode was half of a burst's work before its
    `sent` commit (docs/benchmarks.md): each name and value is escaped once per distinct text
    instead (`t` is digits and `sign` hex: nothing to escape)."""
    pairs = [f"{_quoted(name)}={_quoted(value)}" for name, value in params if name in _FIRST]
    pairs.append(f"t={t}&sign={sign(key, t)}")
    pairs += [f"{_quoted(name)}={_quoted(value)}" for name, value in params if name not in _FIRST]
    return "&".join(pairs)


_FIRST = frozenset({"appid", "interface"})


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    """`quote_plus` (urlencode's escaping) once per distinct text: the names are few, and the
    calls of a burst share their times. Only parameters pass here, never the key."""
    return quote_plus(text)


def parse_response(status: int, body: str) -> str:
    """Return the created task id (as text), or raise Permanent/TransientError.

    HTTP 5xx and 429 are transient; other non-200 statuses (403, 404) are permanent; a 200 whose
    `ret` is not 0 is a permanent refusal (bad sign, stream not live, quota…); a 200 we cannot
    read reached the provider, so its outcome is unknown (transient, logged as uncertain).
    """
    if status >= 500 or status == 429:
        raise TransientError(f"HTTP {status}", status=status)
    if status != 200:
        raise PermanentError(f"HTTP {status}: {body[:200].strip()}", status=status)
    try:
        answer = json.loads(body)
    except ValueError:
        raise OutcomeUnknown(f"answer is not JSON: {body[:80]!r}", status=status) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ret"), int):
        raise OutcomeUnknown(f"answer has no integer 'ret': {body[:80]!r}", status=status)
    ret = answer["ret"]
    message = str(answer.get("message") or "")
    if ret != 0:
        raise PermanentError(message or f"ret {ret}", ret=ret, status=status)
    output = answer.get("output")
    task_id = output.get("task_id") if isinstance(output, dict) else None
    return "" if task_id is None else str(task_id)
