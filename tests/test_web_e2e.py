"""The real daemon drives the fake web function: every action on time, the result reported
through the callback, and after a SIGKILL neither a second recorder nor a lost TaskID."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST
from scheduler.fakes.web import Delay, FakeWeb
from tests.daemon_process import DaemonProcess
from tests.ports import free_port

pytestmark = pytest.mark.usefixtures("web_env")
#: On time = never early and well before the next planned action (2 s apart at the closest); the
#: precision itself is measured in bench/, not asserted on a shared machine.
LATE_MAX_S = 1.0


def _config(
    write_config: Callable[[str], Path],
    fake: FakeWeb,
    tmp_path: Path,
    start: datetime,
    *,
    seconds: int,
    extra: str = "",
) -> Path:
    port = free_port()
    return write_config(f"""
providers:
  web:
    endpoint: {fake.url}
    app_key: ${{WEB_APP_KEY}}
    app_secret: ${{WEB_APP_SECRET}}
    timeout: 5s
    retry_spacing: 3s
http: {{listen: "127.0.0.1:{port}", public_url: "http://127.0.0.1:{port}"}}
state: {{url: "sqlite:///{tmp_path}/state/recsched.db"}}
recordings:
  - name: class
    url: https://school.example.com/room/42
    start: {start.astimezone(CST):%Y-%m-%d %H:%M:%S}
    duration: {seconds}s
{extra}
""")


@pytest.mark.parametrize("host_tz", ["America/New_York"])
async def test_start_pause_resume_stop_on_time_and_the_result_through_the_callback(
    fake_web: FakeWeb, write_config: Callable[[str], Path], tmp_path: Path, host_tz: str
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    extra = "    pauses: [{at: 3s, for: 2s}]\n    callback: true"
    config = _config(write_config, fake_web, tmp_path, start, seconds=8, extra=extra)
    daemon = await DaemonProcess.start(config, tz=host_tz)
    try:
        finished = await daemon.wait_for("recording.finished", timeout=30)
    finally:
        assert await daemon.terminate() == 0, daemon.stderr
    (task_id,) = fake_web.tasks
    expected = {"Start": 0, "Pause": 3, "Resume": 5, "Stop": 8}
    received = [r for r in fake_web.received if r.action in expected]
    assert [r.action for r in received] == list(expected)
    for r in received:
        late = r.at - (start.timestamp() + expected[r.action])
        assert 0 <= late <= LATE_MAX_S, (r.action, late)
        assert r.action == "Start" or r.data == {"TaskID": task_id}
    assert fake_web.tasks[task_id].history[-1] == "finished"
    assert finished["via"] == "callback" and finished["task_id"] == task_id
    (video,) = finished["videos"]
    assert video["FileDuration"] >= 5 and video["FileURL"]  # 8 s recorded, 2 s of it paused
    assert fake_web.callbacks and fake_web.callbacks[0].status == 200


async def test_killed_during_a_slow_start_then_restarted_adopts_the_task_and_stops_it(
    fake_web: FakeWeb, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    config = _config(write_config, fake_web, tmp_path, start, seconds=14)
    fake_web.inject(Delay(30, action="Start"))  # the cold start outlives the daemon
    daemon = await DaemonProcess.start(config)
    await daemon.wait_for("call.sent", lambda e: e["action"] == "Start")
    await fake_web.wait_for(lambda: len(fake_web.tasks) == 1, timeout=10)
    await daemon.kill()
    daemon = await DaemonProcess.start(config)
    try:
        adopted = await daemon.wait_for("call.uncertain", lambda e: e["action"] == "Start")
        await daemon.wait_for("call.ok", lambda e: e["action"] == "Stop", timeout=30)
    finally:
        assert await daemon.terminate() == 0, daemon.stderr
    (task_id,) = fake_web.tasks  # one recorder, never a second
    assert adopted["adopted_task_id"] == task_id and adopted["resent"] is False
    assert len(fake_web.starts()) == 1
    (stop,) = [r for r in fake_web.received if r.action == "Stop"]
    assert stop.data == {"TaskID": task_id}


async def test_a_restart_between_start_and_stop_keeps_the_task_id(
    fake_web: FakeWeb, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    config = _config(write_config, fake_web, tmp_path, start, seconds=8)
    daemon = await DaemonProcess.start(config)
    await daemon.wait_for("call.ok", lambda e: e["action"] == "Start")
    await daemon.kill()
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for("call.ok", lambda e: e["action"] == "Stop", timeout=30)
    finally:
        assert await daemon.terminate() == 0, daemon.stderr
    (task_id,) = fake_web.tasks
    assert len(fake_web.starts()) == 1  # the restart did not start it again
    (stop,) = [r for r in fake_web.received if r.action == "Stop"]
    assert stop.data == {"TaskID": task_id}
