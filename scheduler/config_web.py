"""Configuration of the web-page recording function (`type: web` providers and recordings).

Facts from the function's doc (tencentcloud.com/document/product/583/44887) and source: `Start`
takes RecordURL, Width/Height (0-2560), ManualStart, MaxDurationLimit (seconds, 0-36000; the
hosted default is 21600), StorageType (cos | cfs), CallbackURL and Output {Cos, Vod, Video}.
`Start` is slow (> 7 s cold) so the timeout defaults to 30 s. Output keys are written in
snake_case in the YAML and sent in the API's CamelCase; every key is checked so a typo never
silently drops an option.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.config_reader import Reader
from scheduler.parsing import parse_rate
from scheduler.providers.apigw import ALGORITHMS
from scheduler.secrets import Secret
from scheduler.yamlstrict import Path

#: MaxDurationLimit's documented range is 0-36000 s. [C]
MAX_DURATION_LIMIT = timedelta(hours=10)
#: The hosted function's default MaxDurationLimit (the open-source one uses 10 h). [C/S]
DEFAULT_MAX_DURATION = timedelta(hours=6)
#: MaxDurationLimit is the task's length plus this, so a late Start is not cut short by the
#: service before recsched's own Stop. [I]
DURATION_MARGIN = timedelta(minutes=5)
#: Cold starts take > 7 s and the gateway allows 90 s. [S]
DEFAULT_WEB_TIMEOUT = timedelta(seconds=30)
#: The function answers "task not found" only after its Redis back-off (256+512+1024+2048 ms,
#: real common/redis.js:201; 4.0 s end to end when measured): a shorter timeout could never
#: see that answer and would take it for a lost request. [S]
MIN_WEB_TIMEOUT = timedelta(seconds=5)
#: List scans every task record the deployment ever stored (no paging, records never expire:
#: real record.js:737-782, common/redis.js:62), so it gets slower with age; it has its own
#: timeout, up to the gateway's 90 s service timeout. [S/I]
DEFAULT_LIST_TIMEOUT = timedelta(seconds=60)
GATEWAY_TIMEOUT = timedelta(seconds=90)
MAX_SIDE = 2560
STORAGE_TYPES = ("cfs", "cos")
MUXERS = ("mp4", "hls")

#: YAML key -> API key, per Output section; a nested dict maps a sub-section. [C 20]
_OUTPUT: dict[str, tuple[str, dict[str, object]]] = {
    "cos": (
        "Cos",
        {
            "domain": "Domain",
            "bucket": "Bucket",
            "region": "Region",
            "target_dir": "TargetDir",
            "target_name": "TargetName",
        },
    ),
    "vod": (
        "Vod",
        {
            "media_info": (
                "MediaInfo",
                {
                    "media_name": "MediaName",
                    "expire_time": "ExpireTime",
                    "storage_region": "StorageRegion",
                    "class_id": "ClassId",
                    "source_context": "SourceContext",
                },
            ),
            "procedure_info": (
                "ProcedureInfo",
                {"procedure": "Procedure", "session_context": "SessionContext"},
            ),
            "sub_app_id": "SubAppId",
        },
    ),
    "video": ("Video", {"muxer": "Muxer", "encrypt_key": "EncryptKey", "auth_url": "AuthUrl"}),
}
_NUMBERS = frozenset({"ClassId", "SubAppId"})


@dataclass(frozen=True)
class WebProvider:
    name: str
    endpoint: str  # https://service-…apigw.tencentcs.com/release/record
    app_key: Secret | None  # None only when loaded with resolve_secrets=False
    app_secret: Secret | None
    algorithm: str = "hmac-sha1"
    timeout: timedelta = DEFAULT_WEB_TIMEOUT
    max_attempts: int = 3
    retry_spacing: timedelta = timedelta(seconds=5)
    concurrency: int = 20
    rate: float | None = None
    #: The deployment answers the `List` action (the open-source function does): after a Start
    #: whose outcome is unknown, recsched looks for the task before starting another.
    list_tasks: bool = True
    list_timeout: timedelta = DEFAULT_LIST_TIMEOUT
    type: str = "web"

    def secret_values(self) -> list[str]:
        return [s.reveal() for s in (self.app_key, self.app_secret) if s is not None]


@dataclass(frozen=True)
class Pause:
    at: timedelta  # offset from the window's start
    length: timedelta


@dataclass(frozen=True)
class WebOptions:
    url: str
    width: int = 1280
    height: int = 720
    manual_start: bool = False
    max_duration: timedelta = DEFAULT_MAX_DURATION
    pauses: tuple[Pause, ...] = ()
    refresh_every: timedelta | None = None
    storage_type: str | None = None  # None: not sent, the deployment chooses cfs or cos
    output: str = ""  # Output as canonical JSON ("" = none), so the value stays hashable
    callback: bool = False

    def output_value(self) -> dict[str, object] | None:
        return json.loads(self.output) if self.output else None


WEB_RECORDING_KEYS = (
    "url width height manual_start max_duration pauses refresh_every storage_type output callback"
)


def web_provider(
    r: Reader,
    m: dict[str, object],
    p: Path,
    name: str,
    secret: Callable[[str], Secret | None],
    timeout_error: Callable[[timedelta], str | None],
) -> WebProvider:
    endpoint = r.text(m, p, "endpoint", required=True) or ""
    if endpoint and not re.match(r"https?://[^/\s]+/", endpoint):
        r.error(
            (*p, "endpoint"),
            f"{endpoint!r} is not the function's URL (https://service-…/release/record)",
        )
    timeout = r.duration(m, p, "timeout", default=DEFAULT_WEB_TIMEOUT)
    problem = timeout_error(timeout)
    if problem:
        r.error((*p, "timeout"), problem)
    elif timeout < MIN_WEB_TIMEOUT:
        r.error(
            (*p, "timeout"),
            "must be at least 5s: the function takes about 4 s to answer 'task not found'",
        )
    elif timeout < timedelta(seconds=10):
        r.warn((*p, "timeout"), "a cold Start takes more than 7 s; 30s is recommended")
    spacing = r.duration(m, p, "retry_spacing", default=timedelta(seconds=5))
    if spacing < timedelta(seconds=3):
        r.error((*p, "retry_spacing"), "must be at least 3s (the duplicate window)")
    list_timeout = r.duration(m, p, "list_timeout", default=max(DEFAULT_LIST_TIMEOUT, timeout))
    if not timeout <= list_timeout <= GATEWAY_TIMEOUT:
        r.error(
            (*p, "list_timeout"),
            "must be at least `timeout` and at most 90s (the gateway's service timeout)",
        )
    rate_text = r.text(m, p, "rate")
    rate = None
    if rate_text is not None:
        try:
            rate = parse_rate(rate_text)
        except ValueError as exc:
            r.error((*p, "rate"), str(exc))
    provider = WebProvider(
        name=name,
        endpoint=endpoint,
        app_key=secret("app_key"),
        app_secret=secret("app_secret"),
        algorithm=r.choice(m, p, "algorithm", tuple(ALGORITHMS), default="hmac-sha1")
        or "hmac-sha1",
        timeout=timeout,
        max_attempts=r.integer(m, p, "max_attempts", minimum=1, maximum=10, default=3) or 3,
        retry_spacing=spacing,
        concurrency=r.integer(m, p, "concurrency", minimum=1, maximum=1000, default=20) or 20,
        rate=rate,
        list_tasks=r.boolean(m, p, "list", default=True),
        list_timeout=list_timeout,
    )
    r.finish(
        m,
        p,
        "type endpoint app_key app_secret algorithm timeout max_attempts retry_spacing "
        "concurrency rate list list_timeout",
    )
    return provider


def _storage_type(r: Reader, m: dict[str, object], p: Path) -> str | None:
    value = r.text(m, p, "storage_type")
    if value is not None and value not in STORAGE_TYPES:
        r.error((*p, "storage_type"), f"{value!r} is not one of: {', '.join(STORAGE_TYPES)}")
        return None
    return value


def web_options(
    r: Reader, m: dict[str, object], p: Path, duration: timedelta | None, callbacks: str | None
) -> WebOptions:
    """The web fields of one recording; `callbacks` is why `callback: true` cannot work here
    (None when http.listen and http.public_url are set)."""
    url = r.text(m, p, "url", required=True) or ""
    if url and not re.match(r"https?://\S+$", url):
        r.error((*p, "url"), f"{url!r} is not an http:// or https:// URL")
    sides = {
        k: r.integer(m, p, k, minimum=1, maximum=MAX_SIDE, default=d) or d
        for k, d in (("width", 1280), ("height", 720))
    }
    max_duration = r.duration(m, p, "max_duration", default=DEFAULT_MAX_DURATION)
    if not timedelta(minutes=1) <= max_duration <= MAX_DURATION_LIMIT:
        r.error((*p, "max_duration"), "must be between 1m and 10h (MaxDurationLimit)")
        max_duration = DEFAULT_MAX_DURATION
    if max_duration > DEFAULT_MAX_DURATION:
        r.warn(
            (*p, "max_duration"),
            "more than 6h needs a permanent key configured in the function (hosted default 6h)",
        )
    refresh = r.duration(m, p, "refresh_every", default=None)
    if refresh is not None and refresh < timedelta(minutes=1):
        r.error((*p, "refresh_every"), "must be at least 1m")
    callback = r.boolean(m, p, "callback", default=False)
    if callback and callbacks:
        r.error((*p, "callback"), callbacks)
    return WebOptions(
        url=url,
        width=sides["width"],
        height=sides["height"],
        manual_start=r.boolean(m, p, "manual_start", default=False),
        max_duration=max_duration,
        pauses=_pauses(r, m, p, duration, max_duration),
        refresh_every=refresh,
        storage_type=_storage_type(r, m, p),
        output=_output(r, m, p),
        callback=callback,
    )


def _pauses(
    r: Reader, m: dict[str, object], p: Path, duration: timedelta | None, task: timedelta
) -> tuple[Pause, ...]:
    result: list[Pause] = []
    for index, raw in enumerate(r.sequence((*p, "pauses"), m.get("pauses"))):
        q = (*p, "pauses", index)
        item = r.mapping(q, raw)
        at = r.duration(item, q, "at", default=None)
        length = r.duration(item, q, "for", default=None)
        r.finish(item, q, "at for")
        if at is None or length is None:
            for key, value in (("at", at), ("for", length)):
                if value is None and key not in item:
                    r.error((*q, key), "is required")
            continue
        if at <= timedelta(0) or length <= timedelta(0):
            r.error(q, "at and for must be positive")
            continue
        if duration is not None and at + length >= duration:
            r.error(q, "the pause must end before the window does")
            continue
        if at // task != (at + length) // task:
            r.error(q, f"crosses a task boundary (the window is split every {_text(task)})")
            continue
        if result and at < result[-1].at + result[-1].length:
            r.error(q, "overlaps or comes before the previous pause (list them in order)")
            continue
        result.append(Pause(at, length))
    return tuple(result)


def _text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _output(r: Reader, m: dict[str, object], p: Path) -> str:
    if "output" not in m:
        return ""
    value = _section(r, (*p, "output"), m["output"], _OUTPUT)
    video = value.get("Video")
    if isinstance(video, dict):
        muxer = video.get("Muxer")
        if muxer is None:
            r.error((*p, "output", "video", "muxer"), "is required when output.video is given")
        elif muxer not in MUXERS:
            r.error((*p, "output", "video", "muxer"), f"{muxer!r} is not one of: mp4, hls")
        if "EncryptKey" in video and "AuthUrl" not in video:
            r.error((*p, "output", "video", "auth_url"), "is required with encrypt_key")
    media = value.get("Vod", {})
    expire = media.get("MediaInfo", {}).get("ExpireTime") if isinstance(media, dict) else None
    if isinstance(expire, str):
        try:
            datetime.fromisoformat(expire.replace("Z", "+00:00"))
        except ValueError:
            where = (*p, "output", "vod", "media_info", "expire_time")
            r.error(where, f"{expire!r} is not an ISO 8601 time (2026-12-31T00:00:00Z)")
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _section(r: Reader, p: Path, raw: object, keys: Mapping[str, object]) -> dict[str, object]:
    m = r.mapping(p, raw)
    result: dict[str, object] = {}
    for key, value in m.items():
        spec = keys.get(key)
        if spec is None:
            continue  # reported by finish() below
        if isinstance(spec, tuple):
            api_name, sub = spec
            result[api_name] = _section(r, (*p, key), value, sub)
            continue
        api = str(spec)
        if api in _NUMBERS:
            number = r.integer(m, p, key, minimum=0)
            if number is not None:
                result[api] = number
        else:
            text = r.text(m, p, key)  # blank strings are refused by the function, so here
            if text is not None:
                result[api] = text
    r.finish(m, p, " ".join(keys))
    return result
