"""Configuration of LIVE API 3.0 recording tasks (`type: live` providers and recordings).

Facts (../shared/reference/live-api-3.md; C = confirmed in Tencent's pages or SDK source, I =
inferred): POST https://live.tencentcloudapi.com/, Version 2018-08-01, TC3-HMAC-SHA256 [C]; 20
requests/s per API [C]; CreateRecordTask(DomainName, AppName, StreamName, StartTime, EndTime,
TemplateId, StreamType 0 push / 1 mixed) [C]; EndTime - StartTime <= 24 h and EndTime < now +
7 days [C]; StartTime <= now + 6 days [I: an older reading, kept as the stricter bound]; at most
3 overlapping tasks of one stream are started [C]; do not mix with CreateLiveRecord [C].
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler import cron
from scheduler.config_reader import Reader
from scheduler.parsing import parse_rate
from scheduler.secrets import Secret
from scheduler.yamlstrict import Path

DEFAULT_LIVE_ENDPOINT = "https://live.tencentcloudapi.com"
DEFAULT_REGION = "ap-guangzhou"
#: The documented frequency limit of each of the four actions. [C]
MAX_RATE = 20.0
#: recsched's default: half the limit, leaving room for the console and other tools. [I]
DEFAULT_RATE = 10.0
#: EndTime - StartTime of one task. [C]
MAX_TASK = timedelta(hours=24)
#: EndTime < now + 7 days. [C]
MAX_END_AHEAD = timedelta(days=7)
#: StartTime <= now + 6 days. [I] (the one constant to change if it is not a limit)
MAX_START_AHEAD = timedelta(days=6)
#: A task is created this long inside the forward limits, never at their edge. [I]
AHEAD_MARGIN = timedelta(hours=1)
#: Overlapping tasks of one stream that Tencent starts. [C]
MAX_OVERLAPPING = 3
#: How far ahead `check` counts overlapping cron windows of one stream. [I]
OVERLAP_SPAN = timedelta(days=8)
STREAM_TYPES = (0, 1)  # 0 push stream, 1 mixed stream [C]
LIVE_RECORDING_KEYS = "domain app stream template_id stream_type lead"


@dataclass(frozen=True)
class LiveProvider:
    name: str
    endpoint: str
    region: str
    secret_id: Secret | None  # None only when loaded with resolve_secrets=False
    secret_key: Secret | None
    token: Secret | None = None  # temporary credentials' session token (X-TC-Token)
    timeout: timedelta = timedelta(seconds=10)
    max_attempts: int = 3
    retry_spacing: timedelta = timedelta(seconds=5)
    concurrency: int = 20
    rate: float | None = DEFAULT_RATE
    type: str = "live"

    @property
    def host(self) -> str:
        return re.sub(r"^https?://", "", self.endpoint).split("/")[0]

    def secret_values(self) -> list[str]:
        return [s.reveal() for s in (self.secret_key, self.token) if s is not None]


@dataclass(frozen=True)
class LiveOptions:
    domain: str  # DomainName: the push domain
    app: str  # AppName
    stream: str  # StreamName
    template_id: int | None = None
    stream_type: int | None = None

    @property
    def stream_path(self) -> str:
        return f"{self.domain}/{self.app}/{self.stream}"


def live_provider(
    r: Reader,
    m: dict[str, object],
    p: Path,
    name: str,
    secret: Callable[[str], Secret | None],
    optional_secret: Callable[[str], Secret | None],
    timeout_error: Callable[[timedelta], str | None],
) -> LiveProvider:
    endpoint = r.text(m, p, "endpoint") or DEFAULT_LIVE_ENDPOINT
    if not re.match(r"https?://[^/\s]+/?$", endpoint):
        r.error((*p, "endpoint"), f"{endpoint!r} is not an API host URL (https://HOST)")
    timeout = r.duration(m, p, "timeout", default=timedelta(seconds=10))
    problem = timeout_error(timeout)
    if problem:
        r.error((*p, "timeout"), problem)
    spacing = r.duration(m, p, "retry_spacing", default=timedelta(seconds=5))
    if spacing < timedelta(seconds=3):
        r.error((*p, "retry_spacing"), "must be at least 3s (the duplicate window)")
    rate: float | None = DEFAULT_RATE
    rate_text = r.text(m, p, "rate")
    if rate_text is not None:
        try:
            rate = parse_rate(rate_text)
        except ValueError as exc:
            r.error((*p, "rate"), str(exc))
        if rate is not None and rate > MAX_RATE:
            r.error((*p, "rate"), "must be at most 20/s (the API's documented limit)")
    provider = LiveProvider(
        name=name,
        endpoint=endpoint.rstrip("/"),
        region=r.text(m, p, "region") or DEFAULT_REGION,
        secret_id=secret("secret_id"),
        secret_key=secret("secret_key"),
        token=optional_secret("token"),
        timeout=timeout,
        max_attempts=r.integer(m, p, "max_attempts", minimum=1, maximum=10, default=3) or 3,
        retry_spacing=spacing,
        concurrency=r.integer(m, p, "concurrency", minimum=1, maximum=1000, default=20) or 20,
        rate=rate,
    )
    r.finish(
        m,
        p,
        "type endpoint region secret_id secret_key token timeout max_attempts retry_spacing "
        "concurrency rate",
    )
    return provider


def live_options(r: Reader, m: dict[str, object], p: Path) -> tuple[LiveOptions, timedelta]:
    """The stream of one recording and its `lead` (default 1m; live_plan.py keeps creates
    within the forward limits whatever the lead)."""
    names = {k: r.text(m, p, k, required=True) or "" for k in ("domain", "app", "stream")}
    stream_type = r.integer(m, p, "stream_type", minimum=0, maximum=1, default=None)
    lead = r.duration(m, p, "lead", default=timedelta(minutes=1))
    if lead < timedelta(0) or lead > MAX_END_AHEAD:
        r.error((*p, "lead"), "must be between 0s and 7d (EndTime < now + 7 days)")
        lead = timedelta(minutes=1)
    elif lead > MAX_START_AHEAD - AHEAD_MARGIN:
        r.warn((*p, "lead"), "tasks are created at most 5d23h ahead (the forward limit)")
    options = LiveOptions(
        domain=names["domain"],
        app=names["app"],
        stream=names["stream"],
        template_id=r.integer(m, p, "template_id", minimum=0, default=None),
        stream_type=stream_type,
    )
    return options, lead


@dataclass(frozen=True)
class StreamWindows:
    """One live recording's windows, for the per-stream overlap check."""

    path: Path  # the recording's key path, for the located error
    stream: str  # provider + stream path
    one_off: tuple[datetime, timedelta] | None
    cron: str | None
    duration: timedelta


def overlap_problems(
    items: Iterable[StreamWindows], tz: ZoneInfo, now: datetime
) -> list[tuple[Path, str]]:
    """(path, message) for each stream whose windows would put more than 3 tasks on it at
    once (Tencent starts only 3), counted over the next `OVERLAP_SPAN` from `now`."""
    by_stream: dict[str, list[tuple[datetime, datetime, Path]]] = {}
    for item in items:
        spans = by_stream.setdefault(item.stream, [])
        if item.one_off is not None:
            start = item.one_off[0].astimezone(UTC)
            spans.append((start, start + item.duration, item.path))
        elif item.cron is not None:
            found, _ = cron.starts(item.cron, tz, now - item.duration, now + OVERLAP_SPAN)
            spans.extend((s, s + item.duration, item.path) for s in found)
    problems: list[tuple[Path, str]] = []
    for stream, spans in by_stream.items():
        events = sorted([(s, 1, p) for s, _, p in spans] + [(e, -1, p) for _, e, p in spans])
        running = 0
        for at, step, path in events:
            running += step
            if running > MAX_OVERLAPPING:
                message = (
                    f"{stream} would have more than {MAX_OVERLAPPING} overlapping recording "
                    f"tasks at {at:%Y-%m-%d %H:%M} UTC: Tencent starts only {MAX_OVERLAPPING}"
                )
                problems.append((path, message))
                break
    return problems


def mixing_warnings(
    live: Iterable[tuple[Path, str]], legacy_channels: Iterable[str]
) -> list[tuple[Path, str]]:
    """(path, message) for each live recording whose stream an `lvb` recording also records:
    Tencent says not to mix these tasks with the older API's on one stream. [C]"""
    legacy = set(legacy_channels)
    return [
        (path, f"stream {stream!r} is also recorded through the legacy API (an lvb "
         "recording's channel_id): Tencent advises against mixing CreateRecordTask with "
         "CreateLiveRecord / Live_Tape_* on one stream")
        for path, stream in live
        if stream in legacy
    ]  # fmt: skip
