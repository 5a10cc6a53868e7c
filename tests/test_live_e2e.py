"""The real daemon drives the fake LIVE API 3.0: tasks created on time with their exact
parameters, a window already running gets its task at once, and after a SIGKILL while a
create was in flight the restarted daemon adopts the task (DescribeRecordTask) instead of
creating a second one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST
from scheduler.fakes.live import Delay, FakeLive
from tests.daemon_process import DaemonProcess

SECRET_ID, SECRET_KEY = "AKIDliveE2E0001", "live-e2e-secret-77d0"
#: Never early, and sent well within its lead (2 s); precision itself is measured in bench/.
LEAD_S = 2


@pytest.fixture
async def fake_live(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLive]:
    monkeypatch.setenv("TC_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TC_SECRET_KEY", SECRET_KEY)
    fake = FakeLive(SECRET_ID, SECRET_KEY)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def _config(
    write_config: Callable[[str], Path], fake: FakeLive, tmp_path: Path, recordings: str
) -> Path:
    return write_config(f"""
providers:
  tencent:
    type: live
    endpoint: {fake.url}
    secret_id: ${{TC_SECRET_ID}}
    secret_key: ${{TC_SECRET_KEY}}
    timeout: 4s
    retry_spacing: 3s
state: {{url: "sqlite:///{tmp_path}/state/recsched.db"}}
recordings:
{recordings}
""")


def _at(moment: datetime) -> str:
    return f"{moment.astimezone(CST):%Y-%m-%d %H:%M:%S}"


async def test_tasks_are_created_lead_ahead_and_a_running_window_at_once(
    fake_live: FakeLive, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon, begun = now + timedelta(seconds=4), now - timedelta(minutes=5)
    config = _config(
        write_config,
        fake_live,
        tmp_path,
        f"""  - {{name: soon, start: '{_at(soon)}', duration: 1h, lead: {LEAD_S}s,
       domain: push.example.com, app: live, stream: soon, stream_type: 0}}
  - {{name: begun, start: '{_at(begun)}', duration: 1h, domain: push.example.com,
       app: live, stream: begun}}""",
    )
    daemon = await DaemonProcess.start(config, tz="America/New_York")
    try:
        await daemon.wait_for("call.ok", lambda e: e["recording"] == "soon", timeout=20)
        await daemon.wait_for("call.ok", lambda e: e["recording"] == "begun", timeout=5)
    finally:
        assert await daemon.terminate() == 0, daemon.stderr
    by_stream = {r.body["StreamName"]: r for r in fake_live.creates()}
    assert set(by_stream) == {"soon", "begun"} and len(fake_live.creates()) == 2
    first = by_stream["soon"]
    assert first.body == {
        "DomainName": "push.example.com",
        "AppName": "live",
        "StreamName": "soon",
        "StartTime": int(soon.timestamp()),
        "EndTime": int(soon.timestamp()) + 3600,
        "StreamType": 0,
    }
    assert soon.timestamp() - LEAD_S <= first.at < soon.timestamp()  # never early, ahead
    running = by_stream["begun"]
    assert "StartTime" not in running.body  # the remaining time, from now
    assert running.body["EndTime"] == int(begun.timestamp()) + 3600
    assert SECRET_KEY not in "".join(str(line) for line in daemon.lines)


async def test_killed_during_a_create_then_restarted_adopts_the_task(
    fake_live: FakeLive, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    config = _config(
        write_config,
        fake_live,
        tmp_path,
        f"""  - {{name: news, start: '{_at(start)}', duration: 1h, lead: 1s,
       domain: push.example.com, app: live, stream: news}}""",
    )
    fake_live.inject(Delay(30, action="CreateRecordTask"))  # created; the answer comes late
    daemon = await DaemonProcess.start(config)
    await daemon.wait_for("call.sent", lambda e: e["action"] == "CreateRecordTask")
    await fake_live.wait_for_tasks(1)  # the create has reached the API and acted
    await daemon.kill()
    daemon = await DaemonProcess.start(config)
    try:
        adopted = await daemon.wait_for("call.adopted", timeout=20)
    finally:
        assert await daemon.terminate() == 0, daemon.stderr
    (task,) = fake_live.live_tasks()  # one task, never a second
    assert adopted["adopted_task_id"] == task.task_id and adopted["resent"] is False
    assert len(fake_live.creates()) == 1
    assert [r.action for r in fake_live.received] == ["CreateRecordTask", "DescribeRecordTask"]
