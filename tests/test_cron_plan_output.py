"""`recsched plan` shows where a DST change put a window: its start in the file's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.cli import main
from scheduler.cron import fixed_offset

NEW_YORK = """timezone: America/New_York
providers:
  lvb: {appid: 1234, key: "${LVB_KEY}"}
recordings:
  - {name: gap, channel_id: c, cron: "30 2 * * *", duration: 30m}
  - {name: hourly, channel_id: c, cron: "30 * * * *", duration: 30m}
"""


def _plan(tmp_path: Path, text: str, now: str, hours: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    path.chmod(0o600)
    assert main(["plan", "-c", str(path), "--now", now, "--hours", hours]) == 0


def test_plan_shows_the_resolved_start_and_the_dst_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LVB_KEY", raising=False)
    _plan(tmp_path, NEW_YORK, "2027-03-14T01:00:00-05:00", "3")
    lines = capsys.readouterr().out.splitlines()
    assert "WINDOW START (America/New_York)" in lines[1]
    gap = next(line for line in lines if " gap " in line)
    assert "2027-03-14 03:00-0400 (DST: 02:30 does not exist on 2027-03-14" in gap
    assert any("2027-03-14 01:30-0500" in line for line in lines)

    _plan(tmp_path, NEW_YORK, "2027-11-07T01:00:00-04:00", "2")
    hourly = [line for line in capsys.readouterr().out.splitlines() if " hourly " in line]
    assert "2027-11-07 01:30-0400 (DST: 01:30 occurs twice, first pass)" in hourly[0]
    assert "2027-11-07 01:30-0500 (DST: 01:30 occurs twice, second pass)" in hourly[1]


def test_a_zone_offset_is_fixed_only_away_from_its_changes() -> None:
    """The table skips DST notes only where no change is within a day of a window start."""
    ny, shanghai = ZoneInfo("America/New_York"), ZoneInfo("Asia/Shanghai")
    march = datetime(2027, 3, 12, tzinfo=UTC)
    assert fixed_offset(shanghai, march, march + timedelta(days=30)) == timedelta(hours=8)
    assert fixed_offset(ny, march, march + timedelta(days=1, hours=8)) is None  # 03-14 07:00Z
    assert fixed_offset(ny, march + timedelta(days=3), march + timedelta(days=3)) is None
    summer = datetime(2027, 7, 1, tzinfo=UTC)
    assert fixed_offset(ny, summer, summer + timedelta(days=2)) == timedelta(hours=-4)
