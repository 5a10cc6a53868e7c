"""A reload never stalls the daemon and always ends: the file is read and planned off the event
loop, any failure (a located problem or a bug) is `config.rejected`, and systemd hears READY=1
after every RELOADING=1. Issue 14."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler import reload
from scheduler.clock import wall_clock
from scheduler.config import CST, load_config
from scheduler.fakes.lvb import FakeLvb
from scheduler.ledger import MemoryLedger
from scheduler.service import Service
from tests.conftest import LogCapture
from tests.daemon_process import DaemonProcess
from tests.test_bad_yaml import BOMB
from tests.test_systemd_e2e import FakeSystemd

pytestmark = pytest.mark.usefixtures("lvb_env")


def _yaml(fake: FakeLvb, start: datetime, chunks: int = 1, chunk_s: int = 60) -> str:
    return (
        f"providers:\n  lvb: {{endpoint: '{fake.url}', appid: 1234, key: '${{LVB_KEY}}'}}\n"
        "recordings:\n"
        f"  - {{name: live, channel_id: live, start: '{start.astimezone(CST):%Y-%m-%d %H:%M:%S}',"
        f" duration: {chunks * chunk_s}s, chunk: {chunk_s}s}}\n"
    )


@pytest.fixture
async def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = FakeSystemd(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    yield fake
    fake.close()


async def test_the_event_loop_runs_while_a_reload_reads_and_plans(
    fake_lvb: FakeLvb,
    write_config: Callable[[str], Path],
    systemd: FakeSystemd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    path = write_config(_yaml(fake_lvb, later))
    service = Service(load_config(path), MemoryLedger(), dry_run=True, clock=wall_clock)
    await service.start()
    await systemd.receive("READY")
    reading, release = threading.Event(), threading.Event()
    real = reload._read_and_plan

    def slow(file: str, now: datetime) -> Any:
        reading.set()
        release.wait(timeout=30)  # a huge file: the worker thread is busy
        return real(file, now)

    monkeypatch.setattr(reload, "_read_and_plan", slow)
    path.write_text(_yaml(fake_lvb, later, chunks=2))
    outcome = service.reloader.request()
    await systemd.receive("RELOADING")
    await asyncio.to_thread(reading.wait, 10)
    # the worker is stuck in the file, yet the loop answers: a timer would fire, /healthz too
    await asyncio.sleep(0.01)
    assert service.health() == (True, "ok") and not outcome.done()
    release.set()
    assert (await outcome).ok
    await systemd.receive("READY")
    assert service.engine.pending() == 2
    await service.stop(None)


async def test_a_bug_while_reloading_is_rejected_and_systemd_still_hears_ready(
    fake_lvb: FakeLvb,
    write_config: Callable[[str], Path],
    systemd: FakeSystemd,
    captured_logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_config(_yaml(fake_lvb, datetime.now(UTC) + timedelta(hours=1)))
    service = Service(load_config(path), MemoryLedger(), dry_run=True, clock=wall_clock)
    await service.start()
    await systemd.receive("READY")

    def broken(file: str, now: datetime) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(reload, "_read_and_plan", broken)
    outcome = await service.reloader.request()
    assert not outcome.ok and "RecursionError" in outcome.lines[0]
    await systemd.receive("RELOADING")
    ready = await systemd.receive("READY")
    assert ready["STATUS"].startswith("reload rejected, old schedule kept")
    (rejected,) = captured_logs.events("config.rejected")
    assert "RecursionError" in rejected["problems"][0]
    assert service.engine.pending() == 1  # the schedule it had
    await service.stop(None)


async def test_sighup_with_an_alias_bomb_is_rejected_and_the_next_chunk_is_sent(
    fake_lvb: FakeLvb, tmp_path: Path
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    path = tmp_path / "recsched.yaml"
    path.write_text(_yaml(fake_lvb, start, chunks=3, chunk_s=3))
    path.chmod(0o600)
    daemon = await DaemonProcess.start(path)
    await daemon.wait_for("call.ok", lambda e: e["chunk"] == "1/3")
    path.write_text(
        path.read_text() + "bomb:\n" + "".join("  " + line for line in BOMB.splitlines(True))
    )
    daemon.process.send_signal(1)  # SIGHUP
    rejected = await daemon.wait_for("config.rejected")
    assert any("aliases expand to more than" in p for p in rejected["problems"])
    ok = await daemon.wait_for("call.ok", lambda e: e["chunk"] == "2/3")
    assert ok["call_key"].startswith("live/")
    assert daemon.events("call.missed") == []
    assert await daemon.terminate() == 0, daemon.stderr
