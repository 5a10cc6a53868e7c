"""`type: web` providers and web recordings in the YAML: values, defaults and located errors."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from scheduler.config import parse_config
from scheduler.config_web import WebProvider
from scheduler.errors import ConfigError, Problem

ENV = {"WEB_APP_KEY": "APIDkey", "WEB_APP_SECRET": "web-secret-value"}
HEAD = """\
providers:
  web:
    endpoint: https://service-x-1250000000.gz.apigw.tencentcs.com/release/record
    app_key: ${WEB_APP_KEY}
    app_secret: ${WEB_APP_SECRET}
"""
ISSUE_EXAMPLE = (
    HEAD
    + """\
    algorithm: hmac-sha1
    timeout: 30s
http:
  listen: 127.0.0.1:8080
  public_url: https://rec.example.com/
recordings:
  - name: physics-class
    provider: web
    url: https://school.example.com/room/42
    cron: "0 9 * * 1-5"
    duration: 45m
    width: 1280
    height: 720
    manual_start: false
    max_duration: 6h
    pauses:
      - {at: 20m, for: 5m}
    refresh_every: 15m
    storage_type: cfs
    output: {cos: {bucket: b-1250000000, region: ap-guangzhou, target_dir: physics},
             vod: {media_info: {media_name: physics, class_id: 3}, sub_app_id: 1400},
             video: {muxer: hls}}
    callback: true
"""
)


def _problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "r.yaml", env=ENV)
    return info.value.problems


def test_the_issue_example_loads_with_every_field() -> None:
    config = parse_config(ISSUE_EXAMPLE, "r.yaml", env=ENV)
    provider = config.providers["web"]
    assert isinstance(provider, WebProvider)
    assert provider.timeout == timedelta(seconds=30) and provider.algorithm == "hmac-sha1"
    assert provider.app_secret is not None and provider.app_secret.reveal() == "web-secret-value"
    assert "web-secret-value" not in repr(provider)
    assert config.http.public_url == "https://rec.example.com"  # trailing slash dropped
    (rec,) = config.recordings
    assert rec.web is not None
    assert rec.web.url == "https://school.example.com/room/42"
    assert rec.web.pauses[0].at == timedelta(minutes=20)
    assert rec.web.pauses[0].length == timedelta(minutes=5)
    assert rec.web.refresh_every == timedelta(minutes=15) and rec.web.callback
    assert json.loads(rec.web.output) == {
        "Cos": {"Bucket": "b-1250000000", "Region": "ap-guangzhou", "TargetDir": "physics"},
        "Vod": {"MediaInfo": {"MediaName": "physics", "ClassId": 3}, "SubAppId": 1400},
        "Video": {"Muxer": "hls"},
    }


def test_a_provider_of_any_name_with_type_web_and_one_of_lvb_coexist() -> None:
    text = """\
providers:
  guangzhou-web:
    type: web
    endpoint: https://service-a.gz.apigw.tencentcs.com/release/record
    app_key: ${WEB_APP_KEY}
    app_secret: ${WEB_APP_SECRET}
    algorithm: hmac-sha256
  lvb: {appid: 1234, key: "${LVB_KEY}"}
recordings:
  - {name: page, provider: guangzhou-web, url: "https://a.example.com/",
     start: 2026-12-01 10:00, duration: 1h}
  - {name: stream, provider: lvb, channel_id: c, start: 2026-12-01 10:00, duration: 1h}
"""
    config = parse_config(text, "r.yaml", env={**ENV, "LVB_KEY": "k"})
    assert config.providers["guangzhou-web"].type == "web"
    assert config.providers["lvb"].type == "lvb"
    assert [r.web is not None for r in config.recordings] == [True, False]


@pytest.mark.parametrize(
    ("provider_extra", "recording_extra", "line", "path", "message"),
    [
        ("    timeout: 3s\n", "", 6, "providers.web.timeout", "longer than 3s"),
        ("    algorithm: md5\n", "", 6, "providers.web.algorithm", "not one of"),
        ("    retry_spacing: 1s\n", "", 6, "providers.web.retry_spacing", "at least 3s"),
        ("", "    width: 4000\n", 11, "recordings[0].width", "at most 2560"),
        ("", "    max_duration: 11h\n", 11, "recordings[0].max_duration", "between 1m and 10h"),
        ("", "    storage_type: s3\n", 11, "recordings[0].storage_type", "not one of"),
        ("", "    channel_id: c\n", 11, "recordings[0].channel_id", "unknown key"),
        ("", "    callback: true\n", 11, "recordings[0].callback", "needs http.listen"),
        ("", "    pauses: [{at: 50m, for: 5m}]\n", 11, "recordings[0].pauses[0]", "before the"),
        ("", "    pauses: [{at: 5m}]\n", 11, "recordings[0].pauses[0].for", "is required"),
        ("", "    output: {video: {}}\n", 11, "recordings[0].output.video.muxer", "required"),
        ("", "    output: {video: {muxer: flv}}\n", 11, "recordings[0].output.video.muxer", ""),
        ("", "    output: {cos: {bukket: b}}\n", 11, "recordings[0].output.cos.bukket", "bucket"),
        ("", "    output: {vod: {media_info: {media_name: ' '}}}\n", 11, "", "non-empty"),
    ],
)
def test_mistakes_name_line_and_key_path(
    provider_extra: str, recording_extra: str, line: int, path: str, message: str
) -> None:
    text = (
        HEAD
        + provider_extra
        + "recordings:\n  - name: page\n    url: https://a.example.com/\n"
        + "    start: 2026-12-01 10:00\n    duration: 45m\n"
        + recording_extra
    )
    problems = _problems(text)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert path in problem.path and message in problem.message
    assert problem.line == line


def test_a_pause_may_not_straddle_a_task_boundary() -> None:
    text = HEAD + (
        "recordings:\n  - name: page\n    url: https://a.example.com/\n"
        "    start: 2026-12-01 10:00\n    duration: 5h\n    max_duration: 2h\n"
        "    pauses: [{at: 110m, for: 20m}]\n"
    )
    (problem,) = _problems(text)
    assert "crosses a task boundary" in problem.message and "2h00m" in problem.message


def test_web_provider_needs_its_endpoint_and_both_secrets() -> None:
    text = 'providers:\n  web: {app_key: "${WEB_APP_KEY}"}\nrecordings: []\n'
    paths = {p.path for p in _problems(text)}
    assert paths == {"providers.web.endpoint", "providers.web.app_secret"}
