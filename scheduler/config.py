"""The YAML configuration: frozen dataclasses plus a validator that reports every problem.

`load_config(path)` reads, validates and returns a `Config`, or raises `ConfigError` whose
problems each name the file, line, column and key path. Unknown keys are errors: a typo must
never silently disable a recording.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler import secrets
from scheduler.config_live import (
    LIVE_RECORDING_KEYS,
    LiveOptions,
    LiveProvider,
    StreamWindows,
    live_options,
    live_provider,
    mixing_warnings,
    overlap_problems,
)
from scheduler.config_reader import Reader
from scheduler.config_reuse import Shortened, Source, source
from scheduler.config_web import (
    WEB_RECORDING_KEYS,
    WebOptions,
    WebProvider,
    web_options,
    web_provider,
)
from scheduler.domain import CST as CST
from scheduler.domain import DUPLICATE_WINDOW as DUPLICATE_WINDOW
from scheduler.domain import REALTIME_MAX_CHUNK as REALTIME_MAX_CHUNK
from scheduler.domain import SCHEDULED_MAX_CHUNK as SCHEDULED_MAX_CHUNK
from scheduler.errors import ConfigError, Problem
from scheduler.parsing import parse_listen, parse_rate
from scheduler.paths import state_directory
from scheduler.secrets import Secret
from scheduler.yamlstrict import format_path
from scheduler.yamlstrict import load as load_yaml

#: Allowed Param.s.file_format values per Param.s.record_type. [C]
FORMATS = {"video": ("flv", "hls", "mp4"), "audio": ("aac", "flv", "hls", "mp4")}
DEFAULT_LVB_ENDPOINT = "http://fcgi.video.qcloud.com/common_access"
PROVIDER_TYPES = ("lvb", "web", "live")
_NAME = re.compile(r"[a-z0-9_-]+")
#: A recording's `lead` when it gives none: a scheduled task is created a minute ahead.
_SCHEDULED_LEAD, _NO_LEAD = timedelta(minutes=1), timedelta(0)


@dataclass(frozen=True)
class LvbProvider:
    name: str
    endpoint: str
    appid: int
    key: Secret | None  # None only when loaded with resolve_secrets=False
    sign_ttl: timedelta = timedelta(seconds=60)
    timeout: timedelta = timedelta(seconds=10)
    max_attempts: int = 3
    retry_spacing: timedelta = timedelta(seconds=5)
    #: After a crash, a call found `sent` with no answer most likely created its task (the
    #: daemon died, not the provider). False: record it `uncertain` and alert, never re-send.
    #: True: re-send once the 3 s duplicate window has passed (no gap, possible duplicate).
    resend_after_crash: bool = False
    concurrency: int = 100  # requests in flight to this provider at most
    rate: float | None = None  # requests per second at most (token bucket); None = no limit
    type: str = "lvb"

    def secret_values(self) -> list[str]:
        return [self.key.reveal()] if self.key is not None else []


Provider = LvbProvider | WebProvider | LiveProvider


@dataclass(frozen=True)
class Recording:
    name: str
    provider: str
    channel_id: str
    mode: str  # "realtime" | "scheduled"
    duration: timedelta
    chunk: timedelta
    min_chunk: timedelta = timedelta(seconds=1)
    cron: str | None = None
    start: datetime | None = None  # one-off window start (aware)
    lead: timedelta = timedelta(0)
    file_format: str = "flv"
    record_type: str = "video"
    skip_dates: frozenset[date] = frozenset()
    extra_dates: frozenset[date] = frozenset()
    from_date: date | None = None
    until_date: date | None = None
    path: str | None = None
    domain: str | None = None
    line: int = 0
    web: WebOptions | None = None  # set for recordings of a `type: web` provider
    live: LiveOptions | None = None  # set for recordings of a `type: live` provider


@dataclass(frozen=True)
class DaemonSettings:
    horizon: timedelta = timedelta(hours=48)  # how far ahead calls are scheduled
    replan_every: timedelta = timedelta(hours=1)  # how often the rolling horizon is extended
    shutdown_timeout: timedelta = timedelta(seconds=30)  # bound on draining in-flight calls
    watch: bool = False  # reload when the file changes (as well as on SIGHUP)


@dataclass(frozen=True)
class HttpSettings:
    listen: str | None = None  # "HOST:PORT" for /healthz and /metrics; None = no HTTP server
    #: How the web function reaches `listen` from the internet (https://rec.example.com): the
    #: base of the CallbackURL recsched passes with `callback: true`.
    public_url: str | None = None


@dataclass(frozen=True)
class StateSettings:
    url: str  # sqlite:///PATH (default under $STATE_DIRECTORY or the XDG state dir)
    retention: timedelta = timedelta(days=30)  # ledger rows older than this are pruned
    lease: timedelta = timedelta(seconds=10)  # PostgreSQL: a peer may take over after this
    instance: str = ""  # PostgreSQL: this instance's id (default host:pid)

    @property
    def shared(self) -> bool:
        """True for a PostgreSQL ledger that several instances share."""
        return self.url.startswith("postgresql")


def default_state_url(env: Mapping[str, str]) -> str:
    """recsched.db in the state directory (scheduler/paths.py)."""
    return f"sqlite:///{state_directory(env) / 'recsched.db'}"


@dataclass(frozen=True)
class Config:
    file: str
    config_hash: str
    timezone: ZoneInfo
    providers: Mapping[str, Provider]
    recordings: tuple[Recording, ...]
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    state: StateSettings = field(default_factory=lambda: StateSettings(url="sqlite://"))
    http: HttpSettings = field(default_factory=HttpSettings)
    warnings: tuple[str, ...] = ()
    #: What a reload may reuse of this read (config_reuse.py); not part of the value.
    source: Source | None = field(default=None, compare=False, repr=False)


#: A schedule file this size is refused before parsing: the bench's 10,000 recordings take
#: 1.2 MB, so 2 MiB leaves room for about 17,000, and checking a file of this size (even a
#: malformed one) takes about 2 s here. Raise it if a real schedule needs more. [I]
MAX_CONFIG_BYTES = 2 * 2**20


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    resolve_secrets: bool = True,
    previous: Config | None = None,
    reusable: bool = False,
) -> Config:
    """Read and validate the YAML file at `path`. `reusable`: keep what a later read may
    reuse; `previous`: a read of the same file that did (only the recordings whose text
    changed are read again; the result is the same)."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([Problem(filename, 0, 0, "", f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_CONFIG_BYTES:
        limit = f"{MAX_CONFIG_BYTES // 2**20} MiB"
        message = f"larger than {limit} (about 17,000 recordings); split the schedule"
        raise ConfigError([Problem(filename, 0, 0, "", message)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[data.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode(errors="replace"))
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} (save the file as UTF-8)"
        raise ConfigError([Problem(filename, line, col + 1, "", message)]) from None
    config = parse_config(
        text,
        filename,
        env=os.environ if env is None else env,
        resolve_secrets=resolve_secrets,
        config_hash=hashlib.sha256(data).hexdigest(),
        previous=previous.source if previous is not None else None,
        reusable=reusable or previous is not None,
    )
    exposed = [w for w in (_world_readable(filename, "the config file"),) if w]
    return replace(config, warnings=(*config.warnings, *exposed)) if exposed else config


def _world_readable(path: str, what: str) -> str | None:
    """A warning when `path` can be read by every user on the host."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if mode & stat.S_IROTH:
        return (
            f"{path}: {what} is readable by every user (mode {stat.S_IMODE(mode):04o}); "
            f"chmod o-r it"
        )
    return None


def parse_config(
    text: str,
    filename: str,
    *,
    env: Mapping[str, str],
    resolve_secrets: bool = True,
    config_hash: str = "",
    previous: Source | None = None,
    reusable: bool = False,
) -> Config:
    config_hash = config_hash or hashlib.sha256(text.encode()).hexdigest()
    short = previous.shorten(text) if previous is not None else None
    if short is not None:
        try:
            return _read(short.text, filename, env, resolve_secrets, config_hash, short, reusable)
        except Exception:  # a problem, a mismatch, or a bug in the shortcut itself
            pass  # read it whole: its problems are worded and placed as a full read does
    return _read(text, filename, env, resolve_secrets, config_hash, None, reusable)


class _Unusable(Exception):
    """The shortened read cannot stand for the full one (config_reuse.py)."""


def _read(
    text: str,
    filename: str,
    env: Mapping[str, str],
    resolve_secrets: bool,
    config_hash: str,
    short: Shortened | None,
    reusable: bool,
) -> Config:
    value, marks, problems = load_yaml(text, filename)
    if problems:
        raise ConfigError(problems)
    if short is not None and not short.layout.matches(value, marks):
        raise _Unusable
    r = Reader(filename, marks)
    top = r.mapping((), value)
    tz_name = r.text(top, (), "timezone") or "Asia/Shanghai"
    timezone = CST
    try:
        timezone = ZoneInfo(tz_name)
    except (ValueError, KeyError, OSError):
        r.error(("timezone",), f"unknown time zone {tz_name!r} (e.g. Asia/Shanghai)")
    providers = _providers(r, top, env, resolve_secrets)
    http = _http(r, top)
    # What reading one recording depends on, besides its own text.
    context = (timezone, tuple((name, p.type) for name, p in providers.items()), http)
    if short is not None and context != short.context:
        raise _Unusable
    clean: dict[int, Recording | None] = {}
    reused = _rebased(short) if short is not None else {}
    recordings = _recordings(r, top, timezone, providers, http, reused, clean)
    daemon = _daemon(r, top)
    state = _state(r, top, env)
    r.finish(top, (), "timezone providers recordings daemon state http")
    if r.problems:
        raise ConfigError(r.problems)
    kept = None
    if short is not None:
        kept = short.source(clean)
    elif reusable:
        kept = source(text, value, marks, context, clean)
    return Config(
        file=filename,
        config_hash=config_hash,
        timezone=timezone,
        providers=providers,
        recordings=tuple(recordings),
        daemon=daemon,
        state=state,
        http=http,
        warnings=tuple(r.warnings),
        source=kept,
    )


def _rebased(short: Shortened) -> dict[int, Recording | None]:
    """The reused recordings by index, each with the line its item starts on now."""
    reused: dict[int, Recording | None] = {}
    for index, kept in short.reused.items():
        rec = kept.recording
        line = short.layout.lines[index] + kept.offset
        reused[index] = rec if rec is None or rec.line == line else replace(rec, line=line)
    return reused


def _timeout_error(timeout: timedelta) -> str | None:
    if timeout <= DUPLICATE_WINDOW:
        return (
            "must be longer than 3s: the provider may create a duplicate task "
            "when a call is retried within 3 seconds"
        )
    return None


def _providers(
    r: Reader, top: dict[str, object], env: Mapping[str, str], resolve: bool
) -> dict[str, Provider]:
    result: dict[str, Provider] = {}
    section = r.mapping(("providers",), top.get("providers"), required=True)
    for name, raw in section.items():
        p = ("providers", name)
        m = r.mapping(p, raw)
        kind = r.choice(
            m, p, "type", PROVIDER_TYPES, default=name if name in PROVIDER_TYPES else None
        )
        if kind == "web":
            result[name] = web_provider(
                r,
                m,
                p,
                name,
                lambda key, m=m, p=p: _secret(r, m, p, key, env, resolve),  # type: ignore[misc]
                _timeout_error,
            )
            continue
        if kind == "live":
            result[name] = live_provider(
                r,
                m,
                p,
                name,
                lambda key, m=m, p=p: _secret(r, m, p, key, env, resolve),  # type: ignore[misc]
                lambda key, m=m, p=p: (  # type: ignore[misc]
                    _secret(r, m, p, key, env, resolve) if key in m else None
                ),
                _timeout_error,
            )
            continue
        endpoint = r.text(m, p, "endpoint") or DEFAULT_LVB_ENDPOINT
        if not re.match(r"https?://[^/\s]+", endpoint):
            r.error((*p, "endpoint"), f"{endpoint!r} is not an http:// or https:// URL")
        appid = r.integer(m, p, "appid", minimum=1, required=True)
        key = _secret(r, m, p, "key", env, resolve)
        timeout = r.duration(m, p, "timeout", default=timedelta(seconds=10))
        problem = _timeout_error(timeout)
        if problem:
            r.error((*p, "timeout"), problem)
        sign_ttl = r.duration(m, p, "sign_ttl", default=timedelta(seconds=60))
        if not timedelta(seconds=10) <= sign_ttl <= timedelta(days=1):
            r.error((*p, "sign_ttl"), "must be between 10s and 1d (t = now + sign_ttl)")
        spacing = r.duration(m, p, "retry_spacing", default=timedelta(seconds=5))
        if spacing < DUPLICATE_WINDOW:
            r.error((*p, "retry_spacing"), "must be at least 3s (the duplicate window)")
        result[name] = LvbProvider(
            name=name,
            type=kind or "lvb",
            endpoint=endpoint,
            appid=appid or 0,
            key=key,
            sign_ttl=sign_ttl,
            timeout=timeout,
            max_attempts=r.integer(m, p, "max_attempts", minimum=1, maximum=10, default=3) or 3,
            retry_spacing=spacing,
            resend_after_crash=r.boolean(m, p, "resend_after_crash", default=False),
            concurrency=r.integer(m, p, "concurrency", minimum=1, maximum=10000, default=100)
            or 100,
            rate=_rate(r, m, p),
        )
        r.finish(
            m,
            p,
            "type endpoint appid key sign_ttl timeout max_attempts retry_spacing "
            "resend_after_crash concurrency rate",
        )
    return result


def _rate(r: Reader, m: dict[str, object], p: tuple[str | int, ...]) -> float | None:
    text = r.text(m, p, "rate")
    if text is None:
        return None
    try:
        return parse_rate(text)
    except ValueError as exc:
        r.error((*p, "rate"), str(exc))
        return None


def _secret(
    r: Reader,
    m: dict[str, object],
    p: tuple[str | int, ...],
    key: str,
    env: Mapping[str, str],
    resolve: bool,
) -> Secret | None:
    text = r.text(m, p, key, required=True)
    if not text:
        return None
    if not secrets.is_reference(text):
        r.warn(
            (*p, key),
            "holds a literal secret; use ${ENV_VAR}, ${file:/path} or ${cred:NAME} instead",
        )
    if not resolve:
        return None
    try:
        secret = secrets.resolve(text, env)
    except ValueError as exc:
        r.error((*p, key), str(exc))
        return None
    if secret.path is not None:
        warning = _world_readable(str(secret.path), f"the secret file of {format_path((*p, key))}")
        if warning:
            r.warnings.append(warning)
    return secret


def _daemon(r: Reader, top: dict[str, object]) -> DaemonSettings:
    p: tuple[str | int, ...] = ("daemon",)
    m = r.mapping(p, top.get("daemon", {}))
    settings = DaemonSettings(
        horizon=r.duration(m, p, "horizon", default=timedelta(hours=48)),
        replan_every=r.duration(m, p, "replan_every", default=timedelta(hours=1)),
        shutdown_timeout=r.duration(m, p, "shutdown_timeout", default=timedelta(seconds=30)),
        watch=r.boolean(m, p, "watch", default=False),
    )
    if settings.replan_every >= settings.horizon:
        r.error((*p, "replan_every"), "must be shorter than daemon.horizon")
    r.finish(m, p, "horizon replan_every shutdown_timeout watch")
    return settings


def _state(r: Reader, top: dict[str, object], env: Mapping[str, str]) -> StateSettings:
    p: tuple[str | int, ...] = ("state",)
    m = r.mapping(p, top.get("state", {}))
    url = r.text(m, p, "url") or default_state_url(env)
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+asyncpg://")):
        r.error(
            (*p, "url"),
            f"{url!r} is not supported (use sqlite:///PATH or postgresql://USER@HOST/DB)",
        )
    lease = r.duration(m, p, "lease", default=timedelta(seconds=10))
    if lease < timedelta(seconds=1):
        r.error((*p, "lease"), "must be at least 1s")
    settings = StateSettings(
        url=url,
        retention=r.duration(m, p, "retention", default=timedelta(days=30)),
        lease=lease,
        instance=r.text(m, p, "instance") or "",
    )
    r.finish(m, p, "url retention lease instance")
    return settings


def _http(r: Reader, top: dict[str, object]) -> HttpSettings:
    p: tuple[str | int, ...] = ("http",)
    m = r.mapping(p, top.get("http", {}))
    listen = r.text(m, p, "listen")
    public_url = r.text(m, p, "public_url")
    if public_url is not None and not re.match(r"https?://[^/\s]+(/\S*)?$", public_url):
        r.error((*p, "public_url"), f"{public_url!r} is not an http:// or https:// URL")
    if listen is not None:
        try:
            parse_listen(listen)
        except ValueError as exc:
            r.error((*p, "listen"), str(exc))
    r.finish(m, p, "listen public_url")
    return HttpSettings(listen=listen, public_url=public_url.rstrip("/") if public_url else None)


def _recordings(
    r: Reader,
    top: dict[str, object],
    tz: ZoneInfo,
    providers: Mapping[str, Provider],
    http: HttpSettings,
    reused: Mapping[int, Recording | None],
    clean: dict[int, Recording | None],
) -> list[Recording]:
    """The recordings, with those in `reused` (by index) taken as they are; `clean` gets
    each recording read here that gave no problem or warning (and is not live)."""
    result: list[Recording] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(r.sequence(("recordings",), top.get("recordings"), required=True)):
        if index in reused:
            rec = reused[index]
        else:
            before = len(r.problems) + len(r.warnings)
            rec = _recording(r, ("recordings", index), raw, tz, providers, http)
            if len(r.problems) + len(r.warnings) == before and (rec is None or rec.live is None):
                clean[index] = rec
        if rec is None:
            continue
        if rec.name in seen:
            r.error(
                ("recordings", index, "name"),
                f"{rec.name!r} is already used by recordings[{seen[rec.name]}]",
            )
        seen.setdefault(rec.name, index)
        result.append(rec)
    _live_limits(r, result, tz)
    return result


def _live_limits(r: Reader, recordings: list[Recording], tz: ZoneInfo) -> None:
    """No more than 3 overlapping LIVE API 3.0 tasks on one stream (config_live.py)."""
    items = [
        StreamWindows(
            ("recordings", index),
            f"{rec.provider}:{rec.live.stream_path}",
            (rec.start, rec.duration) if rec.start else None,
            rec.cron,
            rec.duration,
        )
        for index, rec in enumerate(recordings)
        if rec.live is not None
    ]
    for path, message in overlap_problems(items, tz, datetime.now(UTC)):
        r.error(path, message)
    live = [(("recordings", i), x.live.stream) for i, x in enumerate(recordings) if x.live]
    legacy = [x.channel_id for x in recordings if x.live is None and x.web is None]
    for path, message in mixing_warnings(live, legacy):
        r.warn(path, message)


def _recording(
    r: Reader,
    p: tuple[str | int, ...],
    raw: object,
    tz: ZoneInfo,
    providers: Mapping[str, Provider],
    http: HttpSettings,
) -> Recording | None:
    m = r.mapping(p, raw)
    if not m:
        return None
    name = r.text(m, p, "name", required=True)
    if name and not _NAME.fullmatch(name):
        r.error((*p, "name"), f"{name!r} may use only a-z, 0-9, '_' and '-'")
    default_provider = next(iter(providers)) if len(providers) == 1 else None
    provider = r.text(m, p, "provider", default=default_provider, required=default_provider is None)
    if provider and provider not in providers:
        known = ", ".join(providers) or "none defined"
        r.error((*p, "provider"), f"unknown provider {provider!r} (providers: {known})")
    if provider and provider in providers and providers[provider].type == "web":
        return _web_recording(r, p, m, name or "", provider, tz, http)
    if provider and provider in providers and providers[provider].type == "live":
        return _live_recording(r, p, m, name or "", provider, tz)
    channel = m.get("channel_id")
    channel_id = (
        str(channel)
        if isinstance(channel, int) and not isinstance(channel, bool)
        else (r.text(m, p, "channel_id", required=True))
    )
    mode = r.choice(m, p, "mode", ("realtime", "scheduled"), default="realtime") or "realtime"
    limit = REALTIME_MAX_CHUNK if mode == "realtime" else SCHEDULED_MAX_CHUNK
    chunk = r.duration(m, p, "chunk", default=limit)
    if chunk > limit:
        kind = "30m real-time" if mode == "realtime" else "24h scheduled-task"
        r.error((*p, "chunk"), f"{r.raw(m, 'chunk')} exceeds the {kind} limit")
    if mode == "realtime" and chunk < DUPLICATE_WINDOW:
        r.error(
            (*p, "chunk"),
            "must be at least 3s: calls to one channel closer than 3s may create duplicate tasks",
        )
    min_chunk = r.duration(m, p, "min_chunk", default=timedelta(seconds=1))
    if min_chunk >= chunk:
        r.error((*p, "min_chunk"), "must be shorter than chunk")
    lead = r.duration(m, p, "lead", default=None)
    if lead is not None and mode == "realtime":
        r.error((*p, "lead"), "applies to mode: scheduled only (a real-time task starts when sent)")
    cron, start, duration = _window_shape(r, m, p, tz)
    record_type = r.choice(m, p, "record_type", tuple(FORMATS), default="video") or "video"
    file_format = (
        r.choice(m, p, "file_format", ("flv", "hls", "mp4", "aac"), default="flv") or "flv"
    )
    if file_format not in FORMATS[record_type]:
        allowed = ", ".join(FORMATS[record_type])
        r.error(
            (*p, "file_format"),
            f"{file_format} cannot be used with record_type {record_type} (allowed: {allowed})",
        )
    dates, bounds = _calendar(r, m, p, cron)
    enabled = r.boolean(m, p, "enabled", default=True)
    r.finish(
        m,
        p,
        "name provider channel_id mode cron start end duration chunk min_chunk lead "
        "file_format record_type skip_dates extra_dates from until path domain enabled",
    )
    if not enabled or duration is None:
        return None
    return Recording(
        name=name or "",
        provider=provider or "",
        channel_id=channel_id or "",
        mode=mode,
        duration=duration,
        chunk=min(chunk, limit),
        min_chunk=min_chunk,
        cron=cron,
        start=start,
        lead=lead or (_SCHEDULED_LEAD if mode == "scheduled" else _NO_LEAD),
        file_format=file_format,
        record_type=record_type,
        skip_dates=frozenset(dates["skip_dates"]),
        extra_dates=frozenset(dates["extra_dates"]),
        from_date=bounds["from"],
        until_date=bounds["until"],
        path=r.text(m, p, "path", default=None),
        domain=r.text(m, p, "domain", default=None),
        line=r.line(p),
    )


_CALENDAR_KEYS = frozenset({"skip_dates", "extra_dates", "from", "until"})


def _calendar(
    r: Reader, m: dict[str, object], p: tuple[str | int, ...], cron: str | None
) -> tuple[dict[str, list[date]], dict[str, date | None]]:
    """skip_dates / extra_dates and from / until of a cron recording."""
    if not _CALENDAR_KEYS.intersection(m):  # most recordings: nothing to read or report
        return {"skip_dates": [], "extra_dates": []}, {"from": None, "until": None}
    dates = {k: r.days(m, p, k) for k in ("skip_dates", "extra_dates")}
    bounds = {k: r.day(m, p, k) for k in ("from", "until")}
    for both in sorted(set(dates["skip_dates"]) & set(dates["extra_dates"])):
        r.warn((*p, "extra_dates"), f"{both} is in skip_dates too; extra_dates wins")
    if cron is None:
        for k in ("skip_dates", "extra_dates", "from", "until"):
            if k in m:
                r.error((*p, k), "applies to recurring (cron) recordings only")
    if bounds["from"] and bounds["until"] and bounds["until"] < bounds["from"]:
        r.error((*p, "until"), "is before 'from'")
    return dates, bounds


def _live_recording(
    r: Reader,
    p: tuple[str | int, ...],
    m: dict[str, object],
    name: str,
    provider: str,
    tz: ZoneInfo,
) -> Recording | None:
    """A LIVE API 3.0 recording: a stream; windows become tasks of at most 24 h."""
    cron, start, duration = _window_shape(r, m, p, tz)
    dates, bounds = _calendar(r, m, p, cron)
    live, lead = live_options(r, m, p)
    enabled = r.boolean(m, p, "enabled", default=True)
    r.finish(
        m,
        p,
        "name provider cron start end duration skip_dates extra_dates from until enabled "
        + LIVE_RECORDING_KEYS,
    )
    if not enabled or duration is None:
        return None
    return Recording(
        name=name,
        provider=provider,
        channel_id="",
        mode="scheduled",
        duration=duration,
        chunk=SCHEDULED_MAX_CHUNK,
        cron=cron,
        start=start,
        lead=lead,
        skip_dates=frozenset(dates["skip_dates"]),
        extra_dates=frozenset(dates["extra_dates"]),
        from_date=bounds["from"],
        until_date=bounds["until"],
        line=r.line(p),
        live=live,
    )


def _web_recording(
    r: Reader,
    p: tuple[str | int, ...],
    m: dict[str, object],
    name: str,
    provider: str,
    tz: ZoneInfo,
    http: HttpSettings,
) -> Recording | None:
    """A recording of a web page (a `type: web` provider): no channel, chunk or mode."""
    cron, start, duration = _window_shape(r, m, p, tz)
    dates, bounds = _calendar(r, m, p, cron)
    missing = [k for k in ("listen", "public_url") if getattr(http, k) is None]
    callbacks = f"needs http.{' and http.'.join(missing)}" if missing else None
    web = web_options(r, m, p, duration, callbacks)
    enabled = r.boolean(m, p, "enabled", default=True)
    r.finish(
        m,
        p,
        "name provider cron start end duration skip_dates extra_dates from until enabled "
        + WEB_RECORDING_KEYS,
    )
    if not enabled or duration is None:
        return None
    return Recording(
        name=name,
        provider=provider,
        channel_id="",
        mode="realtime",
        duration=duration,
        chunk=web.max_duration,
        cron=cron,
        start=start,
        skip_dates=frozenset(dates["skip_dates"]),
        extra_dates=frozenset(dates["extra_dates"]),
        from_date=bounds["from"],
        until_date=bounds["until"],
        line=r.line(p),
        web=web,
    )


def _window_shape(
    r: Reader, m: dict[str, object], p: tuple[str | int, ...], tz: ZoneInfo
) -> tuple[str | None, datetime | None, timedelta | None]:
    """Validate cron+duration or start+(end|duration); return (cron, start, duration)."""
    cron = r.cron(m, p, tz)
    start = r.moment(m, p, "start", tz)
    end = r.moment(m, p, "end", tz)
    duration = r.duration(m, p, "duration", default=None)
    if "cron" in m and ("start" in m or "end" in m):
        r.error((*p, "cron"), "give either cron (recurring) or start (one-off), not both")
        return None, None, None
    if "cron" in m and cron is None:
        return None, None, None  # the bad cron value is already reported
    if cron is None and "start" not in m:
        r.error(p, "needs a window: cron + duration (recurring) or start + end|duration (one-off)")
        return None, None, None
    if cron is not None:
        if duration is None and "duration" not in m:
            r.error(p, "a cron recording needs a duration")
        return cron, None, duration
    if "end" in m and "duration" in m:
        r.error((*p, "end"), "give either end or duration, not both")
        return None, None, None
    if start is None or ("end" in m and end is None):
        return None, None, None  # the bad value is already reported
    if end is not None:
        if end <= start:
            r.error((*p, "end"), "must be after start")
            return None, None, None
        duration = end - start
    elif "duration" not in m:
        r.error(p, "a one-off recording needs end or duration")
    return None, start, duration
