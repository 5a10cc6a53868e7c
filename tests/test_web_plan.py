"""Planning web recordings: the lifecycle of each window, long windows split, `plan --json`."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.cli import main
from scheduler.config import Config, parse_config
from scheduler.planner import plan
from scheduler.web_plan import tasks
from tests.test_web_config import ENV, ISSUE_EXAMPLE

CST = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=CST)
M = timedelta(minutes=1)


def _web(recording: str) -> Config:
    head = ISSUE_EXAMPLE[: ISSUE_EXAMPLE.index("recordings:")]
    return parse_config(head + "recordings:\n" + recording, "r.yaml", env=ENV)


def _row(call: object) -> tuple[str, str]:
    at = call.at.astimezone(CST).strftime("%H:%M:%S")  # type: ignore[attr-defined]
    return at, call.action  # type: ignore[attr-defined]


def test_a_class_window_is_start_pause_resume_refresh_stop_describe() -> None:
    config = parse_config(ISSUE_EXAMPLE, "r.yaml", env=ENV)
    calls = plan(config, MONDAY, timedelta(hours=3))
    assert [_row(c) for c in calls] == [
        ("09:00:00", "Start"),
        ("09:15:00", "Refresh"),
        ("09:20:00", "Pause"),
        ("09:25:00", "Resume"),
        ("09:30:00", "Refresh"),
        ("09:45:00", "Stop"),
        ("09:45:10", "Describe"),
    ]
    start = calls[0]
    data = json.loads(start.data)
    assert data["RecordURL"] == "https://school.example.com/room/42"
    assert data["MaxDurationLimit"] == 50 * 60  # 45 minutes + the 5-minute margin
    assert data["CallbackURL"] == "{callback_url}"  # the secret token is added when sent
    assert {c.needs for c in calls[1:]} == {start.key}  # every later call acts on its task
    assert len({c.key for c in calls}) == len(calls)


def test_a_window_longer_than_max_duration_becomes_back_to_back_tasks() -> None:
    config = _web(
        "  - {name: long, url: 'https://x.example.com/', start: 2026-11-30 08:00,"
        " duration: 8h, max_duration: 3h}\n"
    )
    calls = plan(config, MONDAY - M, timedelta(hours=9))
    starts = [c for c in calls if c.action == "Start"]
    stops = [c for c in calls if c.action == "Stop"]
    assert [(_row(c)[0], _row(s)[0]) for c, s in zip(starts, stops, strict=True)] == [
        ("08:00:00", "11:00:00"),
        ("11:00:00", "14:00:00"),
        ("14:00:00", "16:00:00"),
    ]
    # the next task starts at the very instant the previous one is stopped
    assert all(a.at == b.at for a, b in zip(stops, starts[1:], strict=False))
    limits = [json.loads(c.data)["MaxDurationLimit"] for c in starts]
    assert limits == [3 * 3600, 3 * 3600, 2 * 3600 + 300]  # capped by max_duration
    assert [c.needs for c in stops] == [c.key for c in starts]


@given(
    length=st.integers(min_value=60, max_value=3 * 86400),
    longest=st.integers(min_value=60, max_value=36000),
)
def test_tasks_tile_the_window_and_none_is_longer_than_max_duration(
    length: int, longest: int
) -> None:
    start = MONDAY
    end = start + timedelta(seconds=length)
    pieces = tasks(start, end, timedelta(seconds=longest))
    assert pieces[0][0] == start and pieces[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(timedelta(0) < e - s <= timedelta(seconds=longest) for s, e in pieces)
    assert len(pieces) == -(-length // longest)


def test_plan_json_shows_every_web_action_with_params_and_no_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "r.yaml"
    path.write_text(ISSUE_EXAMPLE)
    path.chmod(0o600)
    now = "2026-11-30T08:00:00+08:00"
    assert main(["plan", "-c", str(path), "--now", now, "--hours", "3", "--json"]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["action"] for r in rows] == [
        "Start",
        "Refresh",
        "Pause",
        "Resume",
        "Refresh",
        "Stop",
        "Describe",
    ]
    assert rows[0]["params"]["Action"] == "Start"
    assert rows[0]["params"]["Data"]["Output"]["Video"] == {"Muxer": "hls"}
    assert rows[3]["params"] == {"Action": "Resume", "Data": {"TaskID": "{task_id}"}}
    assert rows[3]["task_of"] == rows[0]["key"]
    for secret in ENV.values():
        assert secret not in out


def test_web_windows_plan_the_same_in_any_host_zone(host_tz: str) -> None:
    config = parse_config(ISSUE_EXAMPLE, "r.yaml", env=ENV)
    (start, *_) = plan(config, MONDAY, timedelta(hours=3))
    assert start.to_json()["at"] == "2026-11-30T09:00:00+08:00"
