"""Loading and validating the YAML schedule: right values, and every mistake located precisely."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.config import DEFAULT_LVB_ENDPOINT, Config, load_config
from scheduler.errors import ConfigError, Problem
from tests.conftest import LVB_KEY

WriteConfig = Callable[..., Path]
ENV = {"LVB_KEY": LVB_KEY}
M = timedelta(minutes=1)

VALID = """\
timezone: {timezone}
providers:
  lvb:
    appid: 1234
    key: ${{LVB_KEY}}
recordings:
  - name: evening-news
    channel_id: news_1
    cron: "0 20 * * 1-5"
    duration: 1h30m
  - name: gala
    channel_id: gala_2
    mode: scheduled
    start: 2026-12-01 10:00:00
    end: 2026-12-01 13:00
    file_format: mp4
"""


def _load(write_config: WriteConfig, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write_config(text), env=ENV if env is None else env)


def _problems(
    write_config: WriteConfig, text: str, env: dict[str, str] | None = None
) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        _load(write_config, text, env)
    return info.value.problems


# -- a valid file ----------------------------------------------------------------------------


def test_valid_config_values(write_config: WriteConfig) -> None:
    config = _load(write_config, VALID.format(timezone="Asia/Shanghai"))

    assert config.timezone == ZoneInfo("Asia/Shanghai")
    assert config.warnings == ()
    assert config.file.endswith("recsched.yaml")
    assert len(config.config_hash) == 64

    provider = config.providers["lvb"]
    assert provider.type == "lvb"
    assert provider.endpoint == DEFAULT_LVB_ENDPOINT == "http://fcgi.video.qcloud.com/common_access"
    assert provider.appid == 1234
    assert provider.key is not None and provider.key.reveal() == LVB_KEY
    assert provider.timeout == timedelta(seconds=10)
    assert provider.retry_spacing == timedelta(seconds=5)
    assert provider.max_attempts == 3

    news, gala = config.recordings
    assert news.name == "evening-news"
    assert news.provider == "lvb"  # defaulted: only one provider exists
    assert news.channel_id == "news_1"
    assert news.mode == "realtime"
    assert news.cron == "0 20 * * 1-5"
    assert news.start is None
    assert news.duration == 90 * M
    assert news.chunk == 30 * M  # the real-time limit
    assert news.lead == timedelta(0)
    assert (news.file_format, news.record_type) == ("flv", "video")
    assert news.line == 7

    assert gala.provider == "lvb"
    assert gala.mode == "scheduled"
    assert gala.cron is None
    assert gala.start == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 CST
    assert gala.start is not None and gala.start.utcoffset() == timedelta(hours=8)
    assert gala.duration == 3 * 60 * M  # end - start
    assert gala.chunk == timedelta(hours=24)
    assert gala.lead == 1 * M
    assert gala.file_format == "mp4"
    assert gala.line == 11


@pytest.mark.parametrize(
    ("timezone", "utc_hour"),
    [("Asia/Shanghai", 2), ("UTC", 10), ("America/New_York", 15), ("Asia/Tokyo", 1)],
)
def test_start_is_read_in_the_configured_timezone(
    write_config: WriteConfig, timezone: str, utc_hour: int
) -> None:
    config = _load(write_config, VALID.format(timezone=timezone))
    assert config.timezone == ZoneInfo(timezone)
    assert config.recordings[1].start == datetime(2026, 12, 1, utc_hour, 0, tzinfo=UTC)


def test_timezone_defaults_to_china(write_config: WriteConfig) -> None:
    text = VALID.format(timezone="Asia/Shanghai").replace("timezone: Asia/Shanghai\n", "")
    config = _load(write_config, text)
    assert config.timezone == ZoneInfo("Asia/Shanghai")
    assert config.recordings[1].start == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_explicit_values_override_defaults(write_config: WriteConfig) -> None:
    text = """\
providers:
  lvb:
    appid: 1234
    key: ${LVB_KEY}
    endpoint: https://lvb.example.test/common_access
    timeout: 20s
    retry_spacing: 10s
    max_attempts: 5
recordings:
  - name: radio
    channel_id: radio_1
    cron: "30 6 * * *"
    duration: 2h
    chunk: 20m
    record_type: audio
    file_format: aac
    skip_dates: [2026-12-25, 2027-01-01]
  - name: launch
    channel_id: launch_1
    mode: scheduled
    start: 2026-12-01 10:00
    duration: 30h
    chunk: 12h
    lead: 5m
"""
    config = _load(write_config, text)
    provider = config.providers["lvb"]
    assert provider.endpoint == "https://lvb.example.test/common_access"
    assert provider.timeout == timedelta(seconds=20)
    assert provider.retry_spacing == timedelta(seconds=10)
    assert provider.max_attempts == 5
    radio, launch = config.recordings
    assert radio.chunk == 20 * M
    assert (radio.record_type, radio.file_format) == ("audio", "aac")
    assert radio.skip_dates == {date(2026, 12, 25), date(2027, 1, 1)}
    assert launch.duration == timedelta(hours=30)
    assert launch.chunk == timedelta(hours=12)
    assert launch.lead == 5 * M


def test_disabled_recording_is_left_out(write_config: WriteConfig) -> None:
    text = VALID.format(timezone="UTC") + "    enabled: false\n"
    config = _load(write_config, text)
    assert [r.name for r in config.recordings] == ["evening-news"]


@pytest.mark.parametrize(
    ("written", "channel_id"),
    [
        ("12345", "12345"),  # an int becomes text
        ("0123", "0123"),  # not octal 83, not 123
        ('"0123"', "0123"),
        ("news_1", "news_1"),
    ],
)
def test_channel_id_is_text(write_config: WriteConfig, written: str, channel_id: str) -> None:
    text = VALID.format(timezone="UTC").replace("channel_id: news_1", f"channel_id: {written}")
    assert _load(write_config, text).recordings[0].channel_id == channel_id


# -- every kind of mistake, located ----------------------------------------------------------

# Lines 1-6; the first recording starts on line 7.
HEAD = """\
timezone: Asia/Shanghai
providers:
  lvb:
    appid: 1234
    key: ${LVB_KEY}
recordings:
"""
NEWS = """\
  - name: news
    channel_id: news_1
    cron: "0 20 * * 1-5"
    duration: 1h30m
"""  # lines 7-10 when it is the first recording
GALA = """\
  - name: gala
    channel_id: gala_2
    mode: scheduled
    start: 2026-12-01 10:00
"""  # lines 7-10; needs end or duration after it


def _provider(line: str) -> str:
    """HEAD + NEWS with `line` added to the provider, as line 6."""
    return HEAD.replace("recordings:\n", f"    {line}\nrecordings:\n") + NEWS


# (id, YAML text, line, key path, message fragment)
BAD = [
    ("syntax", HEAD + "  - name: news\n    channel_id: a: b\n", 8, "", "YAML syntax error"),
    (
        "duplicate-key",
        HEAD + NEWS + "    duration: 2h\n",
        11,
        "recordings[0].duration",
        "duplicate key (first given on line 10)",
    ),
    (
        "unknown-top-key",
        HEAD.replace("timezone:", "timezon:") + NEWS,
        1,
        "timezon",
        "unknown key; did you mean 'timezone'?",
    ),
    (
        "unknown-provider-key",
        _provider("region: ap-shanghai"),
        6,
        "providers.lvb.region",
        "unknown key (allowed: type, endpoint, appid, key",
    ),
    (
        "unknown-recording-key",
        HEAD + NEWS.replace("duration:", "duraton:"),
        10,
        "recordings[0].duraton",
        "unknown key; did you mean 'duration'?",
    ),
    (
        "realtime-chunk-45m",
        HEAD + NEWS + "    chunk: 45m\n",
        11,
        "recordings[0].chunk",
        "45m exceeds the 30m real-time limit",
    ),
    (
        "realtime-chunk-2s",
        HEAD + NEWS + "    chunk: 2s\n",
        11,
        "recordings[0].chunk",
        "must be at least 3s",
    ),
    (
        "scheduled-chunk-25h",
        HEAD + GALA + "    duration: 2h\n    chunk: 25h\n",
        12,
        "recordings[0].chunk",
        "25h exceeds the 24h scheduled-task limit",
    ),
    (
        "min-chunk-not-shorter",
        HEAD + NEWS + "    chunk: 10m\n    min_chunk: 10m\n",
        12,
        "recordings[0].min_chunk",
        "must be shorter than chunk",
    ),
    (
        "timeout-3s",
        _provider("timeout: 3s"),
        6,
        "providers.lvb.timeout",
        "must be longer than 3s",
    ),
    (
        "retry-spacing-2s",
        _provider("retry_spacing: 2s"),
        6,
        "providers.lvb.retry_spacing",
        "must be at least 3s",
    ),
    (
        "max-attempts-0",
        _provider("max_attempts: 0"),
        6,
        "providers.lvb.max_attempts",
        "0 is out of range (must be at least 1 and at most 10)",
    ),
    (
        "endpoint-not-url",
        _provider("endpoint: fcgi.video.qcloud.com"),
        6,
        "providers.lvb.endpoint",
        "is not an http:// or https:// URL",
    ),
    (
        "start-time-only",
        HEAD + GALA.replace("2026-12-01 10:00", "10:30") + "    duration: 2h\n",
        10,
        "recordings[0].start",
        "'10:30' is not a date and time",
    ),
    (
        "duration-clock-time",
        HEAD + NEWS.replace("1h30m", "10:30"),
        10,
        "recordings[0].duration",
        "'10:30' is not a duration",
    ),
    (
        "cron-4-fields",
        HEAD + NEWS.replace("0 20 * * 1-5", "0 20 * *"),
        9,
        "recordings[0].cron",
        "has 4 fields; cron needs 5",
    ),
    (
        "cron-hour-25",
        HEAD + NEWS.replace("0 20 * * 1-5", "0 25 * * 1-5"),
        9,
        "recordings[0].cron",
        "'0 25 * * 1-5' is not a valid cron expression",
    ),
    (
        "cron-weekday-8",
        HEAD + NEWS.replace("0 20 * * 1-5", "0 20 * * 8"),
        9,
        "recordings[0].cron",
        "'8' is not a weekday",
    ),
    (
        "cron-and-start",
        HEAD + NEWS + "    start: 2026-12-01 20:00\n",
        9,
        "recordings[0].cron",
        "give either cron (recurring) or start (one-off), not both",
    ),
    (
        "cron-without-duration",
        HEAD + NEWS.replace("    duration: 1h30m\n", ""),
        7,
        "recordings[0]",
        "a cron recording needs a duration",
    ),
    (
        "no-window",
        HEAD + "  - name: news\n    channel_id: news_1\n    duration: 1h\n",
        7,
        "recordings[0]",
        "needs a window",
    ),
    (
        "one-off-without-end",
        HEAD + GALA,
        7,
        "recordings[0]",
        "a one-off recording needs end or duration",
    ),
    (
        "end-and-duration",
        HEAD + GALA + "    end: 2026-12-01 12:00\n    duration: 2h\n",
        11,
        "recordings[0].end",
        "give either end or duration, not both",
    ),
    (
        "end-before-start",
        HEAD + GALA + "    end: 2026-12-01 09:00\n",
        11,
        "recordings[0].end",
        "must be after start",
    ),
    (
        "end-equals-start",
        HEAD + GALA + "    end: 2026-12-01 10:00:00\n",
        11,
        "recordings[0].end",
        "must be after start",
    ),
    (
        "unknown-provider",
        HEAD + NEWS + "    provider: tencent\n",
        11,
        "recordings[0].provider",
        "unknown provider 'tencent' (providers: lvb)",
    ),
    (
        "provider-ambiguous",
        "providers:\n"
        '  a: {type: lvb, appid: 1, key: "${LVB_KEY}"}\n'
        '  b: {type: lvb, appid: 2, key: "${LVB_KEY}"}\n'
        "recordings:\n" + NEWS,
        5,
        "recordings[0].provider",
        "is required",
    ),
    (
        "duplicate-name",
        HEAD + NEWS + NEWS,
        11,
        "recordings[1].name",
        "'news' is already used by recordings[0]",
    ),
    (
        "bad-name-characters",
        HEAD + NEWS.replace("name: news", "name: Evening News"),
        7,
        "recordings[0].name",
        "'Evening News' may use only a-z, 0-9, '_' and '-'",
    ),
    (
        "missing-channel",
        HEAD + NEWS.replace("    channel_id: news_1\n", ""),
        7,
        "recordings[0].channel_id",
        "is required",
    ),
    (
        "mode-typo",
        HEAD + NEWS + "    mode: realtme\n",
        11,
        "recordings[0].mode",
        "'realtme' is not one of: realtime, scheduled",
    ),
    (
        "video-aac",
        HEAD + NEWS + "    file_format: aac\n",
        11,
        "recordings[0].file_format",
        "aac cannot be used with record_type video (allowed: flv, hls, mp4)",
    ),
    (
        "lead-on-realtime",
        HEAD + NEWS + "    lead: 2m\n",
        11,
        "recordings[0].lead",
        "applies to mode: scheduled only",
    ),
    (
        "skip-dates-on-one-off",
        HEAD + GALA + "    duration: 2h\n    skip_dates: [2026-12-01]\n",
        12,
        "recordings[0].skip_dates",
        "applies to recurring (cron) recordings only",
    ),
    (
        "bad-skip-date",
        HEAD + NEWS + "    skip_dates:\n      - 2026-12-24\n      - 2026-13-01\n",
        13,
        "recordings[0].skip_dates[1]",
        "'2026-13-01' is not a date (YYYY-MM-DD)",
    ),
    (
        "until-before-from",
        HEAD + NEWS + "    from: 2027-01-01\n    until: 2026-12-01\n",
        12,
        "recordings[0].until",
        "is before 'from'",
    ),
    (
        "enabled-no",  # YAML 1.1 would read `no` as false and silently disable the recording
        HEAD + NEWS + "    enabled: no\n",
        11,
        "recordings[0].enabled",
        "must be true or false, not str 'no'",
    ),
    (
        "missing-env-var",
        HEAD.replace("${LVB_KEY}", "${RECSCHED_TEST_UNSET}") + NEWS,
        5,
        "providers.lvb.key",
        "environment variable RECSCHED_TEST_UNSET is not set",
    ),
    (
        "missing-key",
        HEAD.replace("    key: ${LVB_KEY}\n", "") + NEWS,
        3,
        "providers.lvb.key",
        "is required",
    ),
    (
        "missing-appid",
        HEAD.replace("    appid: 1234\n", "") + NEWS,
        3,
        "providers.lvb.appid",
        "is required",
    ),
    (
        "appid-text",
        HEAD.replace("appid: 1234", "appid: abc") + NEWS,
        4,
        "providers.lvb.appid",
        "must be a whole number, not str 'abc'",
    ),
    (
        "unknown-timezone",
        HEAD.replace("Asia/Shanghai", "Mars/Olympus") + NEWS,
        1,
        "timezone",
        "unknown time zone 'Mars/Olympus'",
    ),
    (
        "providers-not-mapping",
        "providers: lvb\nrecordings:\n" + NEWS,
        1,
        "providers",
        "must be a mapping of key: value, not str 'lvb'",
    ),
    (
        "recordings-not-list",
        HEAD + "  name: news\n  channel_id: news_1\n",
        6,
        "recordings",
        "must be a list (items starting with '- '), not a mapping",
    ),
    (
        "recordings-missing",
        HEAD.replace("recordings:\n", ""),
        1,  # a missing top-level key is located at the start of the file
        "recordings",
        "is required",
    ),
    (
        "daemon-replan-not-shorter",
        HEAD + NEWS + "daemon:\n  horizon: 1h\n  replan_every: 1h\n",
        13,
        "daemon.replan_every",
        "must be shorter than daemon.horizon",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "path", "fragment"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_config_is_located(
    write_config: WriteConfig, text: str, line: int, path: str, fragment: str
) -> None:
    problems = _problems(write_config, text)
    found = [(p.line, p.path) for p in problems]
    assert (line, path) in found, f"expected {line}:{path}, got {problems}"
    problem = problems[found.index((line, path))]
    assert fragment in problem.message
    assert problem.file.endswith("recsched.yaml")
    assert all(p.file == problem.file for p in problems)


@pytest.mark.parametrize(
    ("text", "line", "column", "path"),
    [
        (HEAD + NEWS + "    chunk: 45m\n", 11, 5, "recordings[0].chunk"),  # the key, 1-based
        (HEAD + NEWS + "    skip_dates: [2026-12-24, 2026-13-01]\n", 11, 30, None),  # the item
        (HEAD + NEWS + NEWS, 11, 5, "recordings[1].name"),  # the key, not its value
        (HEAD.replace("Asia/Shanghai", "Mars/Olympus") + NEWS, 1, 1, "timezone"),
    ],
)
def test_problem_column(
    write_config: WriteConfig, text: str, line: int, column: int, path: str | None
) -> None:
    [problem] = _problems(write_config, text)
    assert (problem.line, problem.column) == (line, column)
    if path is not None:
        assert problem.path == path


def test_problem_str_is_file_line_column_path_message(write_config: WriteConfig) -> None:
    path = write_config(HEAD + NEWS + "    chunk: 45m\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    line = f"{path}:11:5: recordings[0].chunk: 45m exceeds the 30m real-time limit"
    assert str(info.value) == line


@pytest.mark.parametrize(
    "text",
    [
        HEAD + NEWS.replace("0 20 * * 1-5", "0 25 * * 1-5"),
        HEAD + GALA + "    end: 13:00\n",
    ],
    ids=["bad-cron", "bad-end"],
)
def test_a_bad_window_value_is_reported_once(write_config: WriteConfig, text: str) -> None:
    problems = _problems(write_config, text)
    assert len(problems) == 1, problems


def test_every_problem_is_reported_sorted_by_line(write_config: WriteConfig) -> None:
    text = """\
timezon: Asia/Shanghai
providers:
  lvb:
    appid: 1234
    key: ${LVB_KEY}
    timeout: 2s
recordings:
  - name: news
    channel_id: news_1
    cron: "0 20 * * 1-5"
    duration: 1h30m
    chunk: 45m
  - name: gala
    channel_id: gala_2
    mode: scheduled
    start: 2026-12-01 10:00
    end: 2026-12-01 09:00
    enabled: no
daemon:
  horizon: 1h
  replan_every: 2h
"""
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    problems = info.value.problems
    assert [(p.line, p.path) for p in problems] == [
        (1, "timezon"),  # found last (top-level keys are checked at the end), listed first
        (6, "providers.lvb.timeout"),
        (12, "recordings[0].chunk"),
        (17, "recordings[1].end"),
        (18, "recordings[1].enabled"),
        (21, "daemon.replan_every"),
    ]
    lines = str(info.value).splitlines()
    assert len(lines) == 6
    assert all(line.startswith(f"{path}:") for line in lines)


# -- secrets ---------------------------------------------------------------------------------


def test_literal_secret_loads_with_a_warning(write_config: WriteConfig) -> None:
    literal = "literal-key-5d2e91"
    config = _load(write_config, HEAD.replace("${LVB_KEY}", literal) + NEWS, env={})
    key = config.providers["lvb"].key
    assert key is not None and key.reveal() == literal
    [warning] = config.warnings
    assert ":5:5: providers.lvb.key: holds a literal secret" in warning
    assert "${ENV_VAR}" in warning
    assert literal not in warning
    assert literal not in repr(config)


def test_reference_gives_no_warning(write_config: WriteConfig) -> None:
    assert _load(write_config, HEAD + NEWS).warnings == ()


def test_file_secret_is_read_and_stripped(write_config: WriteConfig, tmp_path: Path) -> None:
    secret_file = tmp_path / "lvb.key"
    secret_file.write_text("  key-from-file-77\n\n", encoding="utf-8")
    secret_file.chmod(0o600)  # a private key file: no warning
    config = _load(write_config, HEAD.replace("${LVB_KEY}", f"${{file:{secret_file}}}") + NEWS)
    key = config.providers["lvb"].key
    assert key is not None and key.reveal() == "key-from-file-77"
    assert key.source == f"${{file:{secret_file}}}"
    assert config.warnings == ()


def test_credential_secret_reads_credentials_directory(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "lvb_key").write_text("key-from-systemd\n", encoding="utf-8")
    text = HEAD.replace("${LVB_KEY}", "${cred:lvb_key}") + NEWS
    config = _load(write_config, text, env={"CREDENTIALS_DIRECTORY": str(creds)})
    key = config.providers["lvb"].key
    assert key is not None and key.reveal() == "key-from-systemd"


@pytest.mark.parametrize(
    ("reference", "env", "fragment"),
    [
        ("${file:{missing}}", {}, "cannot read secret file {missing}: No such file"),
        ("${file:{empty}}", {}, "secret file {empty} is empty"),
        ("${cred:lvb_key}", {}, "${cred:lvb_key} needs $CREDENTIALS_DIRECTORY"),
        ("${cred:lvb_key}", {"CREDENTIALS_DIRECTORY": "{dir}"}, "cannot read secret file {dir}"),
        ("${LVB_KEY}", {"LVB_KEY": ""}, "environment variable LVB_KEY is not set (or is empty)"),
    ],
)
def test_unreadable_secret_is_a_problem(
    write_config: WriteConfig,
    tmp_path: Path,
    reference: str,
    env: dict[str, str],
    fragment: str,
) -> None:
    names = {
        "missing": str(tmp_path / "no-such.key"),
        "empty": str(tmp_path / "empty.key"),
        "dir": str(tmp_path),
    }
    (tmp_path / "empty.key").write_text("\n", encoding="utf-8")

    def fill(text: str) -> str:
        for name, value in names.items():
            text = text.replace(f"{{{name}}}", value)
        return text

    text = HEAD.replace("${LVB_KEY}", fill(reference)) + NEWS
    [problem] = _problems(write_config, text, env={k: fill(v) for k, v in env.items()})
    assert (problem.line, problem.path) == (5, "providers.lvb.key")
    assert fill(fragment) in problem.message


def test_resolved_key_never_printed(write_config: WriteConfig) -> None:
    config = _load(write_config, HEAD + NEWS)
    assert LVB_KEY not in repr(config)
    assert LVB_KEY not in str(config)
    assert LVB_KEY not in repr(config.providers["lvb"])
    assert repr(config.providers["lvb"].key) == "Secret('${LVB_KEY}')"

    # errors right next to a key that resolved fine
    text = """\
providers:
  lvb:
    appid: 0
    key: ${LVB_KEY}
    sign_ttl: ${LVB_KEY}
    timeout: 1s
    secret: ${LVB_KEY}
  second:
    type: lvb
    appid: 1
    key: ${LVB_KEY}
    endpoint: ${LVB_KEY}
recordings:
  - name: news
    provider: lvb
    channel_id: news_1
    cron: "0 20 * * 1-5"
    duration: ${LVB_KEY}
"""
    problems = _problems(write_config, text)
    assert len(problems) >= 6
    for problem in problems:
        assert LVB_KEY not in str(problem)
    with pytest.raises(ConfigError) as info:
        _load(write_config, text)
    assert LVB_KEY not in str(info.value)
    assert LVB_KEY not in repr(info.value)


def test_secrets_not_resolved_when_not_needed(write_config: WriteConfig) -> None:
    path = write_config(HEAD + NEWS)
    with pytest.raises(ConfigError, match="LVB_KEY is not set"):
        load_config(path, env={})
    config = load_config(path, env={}, resolve_secrets=False)
    assert config.providers["lvb"].key is None
    assert [r.name for r in config.recordings] == ["news"]


def test_unreadable_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, env=ENV)
    [problem] = info.value.problems
    assert problem.file == str(missing)
    assert "cannot read: No such file or directory" in problem.message


def test_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((HEAD + NEWS).replace("news_1", "caf\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path, env=ENV)


def test_a_config_file_readable_by_every_user_is_warned_about(
    write_config: Callable[[str], Path], lvb_env: dict[str, str]
) -> None:
    path = write_config(HEAD + NEWS)
    path.chmod(0o644)
    (warning,) = load_config(path).warnings
    assert str(path) in warning and "readable by every user" in warning and "0644" in warning
    path.chmod(0o640)
    assert load_config(path).warnings == ()


def test_a_secret_file_readable_by_every_user_is_warned_about(
    write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    key_file = tmp_path / "lvb_key"
    key_file.write_text("from-a-file\n")
    key_file.chmod(0o644)
    text = (HEAD + NEWS).replace("${LVB_KEY}", f"${{file:{key_file}}}")
    (warning,) = load_config(write_config(text)).warnings
    assert "providers.lvb.key" in warning and str(key_file) in warning
    key_file.chmod(0o600)
    assert load_config(write_config(text)).warnings == ()
