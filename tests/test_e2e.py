"""The real daemon, as a process, against the fake provider: on time, in CST, exactly once.

The timing tests start it from tests/daemon_process.py's launchers (imports done ahead, so a
window 3-4 s away does not depend on how busy the machine is); the last test starts
`python -m scheduler run` cold, as an operator does, on a window no start-up can miss.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.config import CST
from scheduler.fakes.lvb import Delay, FakeLvb
from tests.conftest import LVB_KEY
from tests.daemon_process import DaemonProcess
from tests.output_sink import record_output

CHUNK = 3  # seconds; the smallest real-time chunk recsched allows (the duplicate window)


def _config(endpoint: str, start: datetime, chunks: int = 3, chunk: int = CHUNK) -> str:
    return f"""
providers:
  lvb:
    endpoint: {endpoint}
    appid: 1234
    key: ${{LVB_KEY}}
    timeout: 5s
recordings:
  - name: show
    channel_id: 8888_show
    mode: realtime
    start: {start.astimezone(CST):%Y-%m-%d %H:%M:%S}
    duration: {chunk * chunks}s
    chunk: {chunk}s
"""


async def _start_daemon(config: Path, tz: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "TZ": tz, "LVB_KEY": LVB_KEY}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scheduler",
        "run",
        "-c",
        str(config),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _stop(process: asyncio.subprocess.Process) -> tuple[int, list[dict[str, object]], str]:
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    record_output(out.decode() + err.decode())
    assert process.returncode is not None
    return (
        process.returncode,
        [json.loads(line) for line in out.decode().splitlines()],
        err.decode(),
    )


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
async def test_three_chunks_arrive_on_time_signed_in_cst(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path], tz: str
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    daemon = await DaemonProcess.start(write_config(_config(fake_lvb.url, start)), tz=tz)
    try:
        await fake_lvb.wait_for_requests(3, timeout=20)
    finally:
        code = await daemon.terminate()
    lines, err = daemon.lines, daemon.stderr
    assert code == 0, err
    assert len(fake_lvb.received) == 3 and all(r.ok for r in fake_lvb.received)  # signed right
    for index, received in enumerate(fake_lvb.received):
        instant = start + timedelta(seconds=CHUNK * index)
        # on time = never early, and inside its own chunk (precision is measured in bench/)
        assert 0 <= received.arrived_at - instant.timestamp() < CHUNK
        assert (
            received.params["Param.s.start_time"] == f"{instant.astimezone(CST):%Y-%m-%d %H:%M:%S}"
        )
        end = instant + timedelta(seconds=CHUNK)
        assert received.params["Param.s.end_time"] == f"{end.astimezone(CST):%Y-%m-%d %H:%M:%S}"
        assert received.params["Param.n.task_sub_type"] == "1"
    events = [line["event"] for line in lines]
    assert events[0] == "daemon.started" and events[-1] == "daemon.stopped"
    assert events.count("call.ok") == 3 and "daemon.stopping" in events
    output = json.dumps(lines) + err
    assert LVB_KEY not in output and "sign=" not in output


async def test_sigterm_lets_the_in_flight_call_finish_and_exits_0(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    fake_lvb.inject(Delay(2.0))  # the first call hangs at the provider for 2 s
    start = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    daemon = await DaemonProcess.start(write_config(_config(fake_lvb.url, start)))
    try:
        await fake_lvb.wait_for_requests(1, timeout=20)  # the request is now in flight
    finally:
        code = await daemon.terminate()
    lines, err = daemon.lines, daemon.stderr
    assert code == 0, err
    assert len(fake_lvb.received) == 1  # later chunks were not started after SIGTERM
    events = [line["event"] for line in lines]
    assert (
        events.index("daemon.stopping") < events.index("call.ok") < events.index("daemon.stopped")
    )
    ok = next(line for line in lines if line["event"] == "call.ok")
    assert ok["task_id"] == str(fake_lvb.received[0].task_id)


async def test_python_m_scheduler_run_from_cold_sends_the_running_chunk_and_stops_on_sigterm(
    fake_lvb: FakeLvb, write_config: Callable[[str], Path]
) -> None:
    """`python -m scheduler run -c FILE`, the interpreter started from nothing: a minute-long
    chunk that began 5 s ago is sent at once however long the start-up takes, then SIGTERM."""
    start = (datetime.now(UTC) - timedelta(seconds=5)).replace(microsecond=0)
    config = write_config(_config(fake_lvb.url, start, chunks=2, chunk=60))
    process = await _start_daemon(config, "America/New_York")
    try:
        await fake_lvb.wait_for_requests(1, timeout=60)
    finally:
        code, lines, err = await _stop(process)
    assert code == 0, err
    (received,) = fake_lvb.received
    assert received.ok
    assert received.params["Param.s.start_time"] == f"{start.astimezone(CST):%Y-%m-%d %H:%M:%S}"
    events = [line["event"] for line in lines]
    assert events[0] == "daemon.started" and events[-1] == "daemon.stopped"
    assert events.count("call.ok") == 1 and "daemon.stopping" in events
    output = json.dumps(lines) + err
    assert LVB_KEY not in output and "sign=" not in output
