"""`type: live` (LIVE API 3.0): its keys, its documented limits as located errors, and its plan:
24 h tasks, created `lead` ahead within the forward limits, exact parameters in `plan --json`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST, Config, load_config
from scheduler.config_live import LiveProvider
from scheduler.errors import ConfigError
from scheduler.planner import plan
from scheduler.providers import live

WriteConfig = Callable[[str], Path]
ENV = {"TC_ID": "AKIDtestlive", "TC_KEY": "live-secret-93ab"}
PROVIDER = """
providers:
  tencent:
    type: live
    secret_id: ${TC_ID}
    secret_key: ${TC_KEY}
    region: ap-shanghai
{extra}
recordings:
"""
STREAM = "domain: push.example.com, app: live, stream: news"


def _load(write_config: WriteConfig, recordings: str, extra: str = "") -> Config:
    return load_config(write_config(PROVIDER.replace("{extra}", extra) + recordings), env=ENV)


def _problems(write_config: WriteConfig, recordings: str, extra: str = "") -> str:
    with pytest.raises(ConfigError) as caught:
        _load(write_config, recordings, extra)
    return str(caught.value)


def test_defaults_and_secrets_never_shown(write_config: WriteConfig) -> None:
    config = _load(
        write_config, f"  - {{name: a, start: '2030-01-01 08:00:00', {STREAM}, duration: 1h}}\n"
    )
    provider = config.providers["tencent"]
    assert isinstance(provider, LiveProvider)
    assert provider.endpoint == "https://live.tencentcloudapi.com"
    assert provider.host == "live.tencentcloudapi.com"
    assert provider.rate == 10.0 and provider.region == "ap-shanghai"
    assert "live-secret-93ab" not in repr(provider)
    assert config.recordings[0].lead == timedelta(minutes=1)


def test_a_30h_window_is_two_back_to_back_tasks_with_exact_parameters(
    write_config: WriteConfig,
) -> None:
    config = _load(
        write_config,
        f"  - {{name: a, start: '2030-01-01 08:00:00', duration: 30h, {STREAM}, "
        "template_id: 7, stream_type: 0, lead: 2m}\n",
    )
    start = datetime(2030, 1, 1, 8, tzinfo=CST)
    calls = plan(config, start - timedelta(hours=1), timedelta(days=3))
    assert [c.action for c in calls] == [live.CREATE, live.CREATE]
    first, second = (c.to_json()["params"]["Data"] for c in calls)
    t0 = int(start.timestamp())
    assert first == {
        "DomainName": "push.example.com",
        "AppName": "live",
        "StreamName": "news",
        "StartTime": t0,
        "EndTime": t0 + 86400,
        "TemplateId": 7,
        "StreamType": 0,
    }
    assert (second["StartTime"], second["EndTime"]) == (t0 + 86400, t0 + 30 * 3600)
    assert [c.at for c in calls] == [
        start - timedelta(minutes=2),
        start + timedelta(hours=24, minutes=-2),
    ]
    assert json.loads(json.dumps(calls[0].to_json()))["action"] == "CreateRecordTask"


def test_a_task_beyond_the_forward_limit_is_created_once_in_range(
    write_config: WriteConfig,
) -> None:
    config = _load(
        write_config,
        f"  - {{name: a, start: '2030-01-10 08:00:00', duration: 20h, lead: 6d12h, {STREAM}}}\n",
    )
    now = datetime(2030, 1, 1, 0, tzinfo=CST)
    (call,) = plan(config, now, timedelta(days=12))
    end = datetime(2030, 1, 11, 4, tzinfo=CST)
    # EndTime < now + 7 days [C] and StartTime <= now + 6 days [I], each less 1 h
    assert call.at == max(end - timedelta(days=7), call.start - timedelta(days=6)) + timedelta(
        hours=1
    )
    assert call.at > now and call.at == call.start - timedelta(days=6, hours=-1)


def test_a_window_running_at_start_up_is_sent_at_once_without_a_past_start(
    write_config: WriteConfig,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    begun = (now - timedelta(minutes=10)).astimezone(CST)
    config = _load(
        write_config,
        f"  - {{name: a, start: '{begun:%Y-%m-%d %H:%M:%S}', duration: 1h, {STREAM}}}\n",
    )
    (call,) = plan(config, now, timedelta(hours=1))
    assert call.at < now < call.deadline  # due: the dispatcher sends it at once
    body = live.for_send(json.loads(call.data), now)
    assert "StartTime" not in body  # "empty = start now" [C]: the remaining time
    assert body["EndTime"] == int(call.deadline.timestamp())


def test_documented_limits_are_located_errors(write_config: WriteConfig) -> None:
    four = "".join(
        f"  - {{name: r{i}, start: '2030-01-01 08:00:00', duration: 2h, {STREAM}}}\n"
        for i in range(4)
    )
    text = _problems(write_config, four)
    assert "recordings[3]: tencent:push.example.com/live/news would have more than 3" in text
    assert ":15:" in text or "recordings[3]" in text
    three = "".join(
        f"  - {{name: r{i}, start: '2030-01-01 08:00:00', duration: 2h, {STREAM}}}\n"
        for i in range(3)
    )
    _load(write_config, three)
    lead = _problems(
        write_config, f"  - {{name: a, cron: '0 8 * * *', duration: 1h, lead: 8d, {STREAM}}}\n"
    )
    assert "recordings[0].lead: must be between 0s and 7d" in lead
    rate = _problems(
        write_config,
        f"  - {{name: a, cron: '0 8 * * *', duration: 1h, {STREAM}}}\n",
        "    rate: 30/s",
    )
    assert "providers.tencent.rate: must be at most 20/s" in rate
    missing = _problems(write_config, "  - {name: a, cron: '0 8 * * *', duration: 1h}\n")
    for key in ("domain", "app", "stream"):
        assert f"recordings[0].{key}: is required" in missing
    typo = _problems(
        write_config, f"  - {{name: a, cron: '0 8 * * *', duration: 1h, chunk: 1h, {STREAM}}}\n"
    )
    assert "chunk" in typo


def test_mixing_with_the_legacy_api_on_one_stream_is_a_warning(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = PROVIDER.replace("{extra}", "") + (
        f"  - {{name: a, provider: tencent, cron: '0 8 * * *', duration: 1h, {STREAM}}}\n"
        "  - {name: b, provider: old, channel_id: news, cron: '0 9 * * *', duration: 1h}\n"
    )
    text = text.replace(
        "recordings:", "  old: {type: lvb, appid: 1, key: '${TC_KEY}'}\nrecordings:"
    )
    config = load_config(write_config(text), env=ENV)
    (warning,) = [w for w in config.warnings if "legacy API" in w]
    assert "recordings[0]" in warning and "CreateLiveRecord" in warning


def test_plan_shows_a_live_task_s_stream_and_span(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recsched plan` names the stream and the task's span, not an empty column."""
    from scheduler.cli import main

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### LIVE API 3.0 recordings") :]
    example = section[
        section.index("```yaml\n") + 8 : section.index("```", section.index("```yaml\n") + 8)
    ]
    path = tmp_path / "live.yaml"
    path.write_text(example)
    path.chmod(0o600)
    assert (
        main(["plan", "-c", str(path), "--now", "2026-12-01T12:00:00+08:00", "--hours", "30"]) == 0
    )
    row = next(line for line in capsys.readouterr().out.splitlines() if "CreateRecordTask" in line)
    assert "news" in row and "2026-12-01 19:00:00 → 20:00:00" in row
